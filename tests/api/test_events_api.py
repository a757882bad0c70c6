"""POST /api/v1/events and /api/v1/events/batch, as a storefront that is not Django uses them."""

import json

import pytest

from customers import api_keys
from customers.models import Customer, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    _, key = api_keys.create("shop-api")
    return key


@pytest.fixture
def api(client, key):
    def post(path, body, *, auth=f"Bearer {key}", raw=False):
        return client.post(
            f"/api/v1/{path}",
            body if raw else json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )

    return post


ORDER = {
    "name": "order_placed",
    "customer": {"external_id": "u-1", "email": "Ann@Example.com", "phone": "(212) 555-0100", "country": "us"},
    "properties": {"order_id": "1042", "total": 59.9},
    "occurred_at": "2026-05-01T12:00:00+02:00",
    "idempotency_key": "order-1042",
}


def errors_of(response):
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_a_valid_event_is_accepted_with_its_id_and_creates_the_customer(api):
    response = api("events", ORDER)

    assert response.status_code == 202
    event = Event.objects.get(pk=response.json()["id"])
    assert (event.name, event.source, event.properties) == ("order_placed", "shop-api", ORDER["properties"])
    assert event.occurred_at.isoformat() == "2026-05-01T10:00:00+00:00"
    customer = event.customer
    assert (customer.external_id, customer.email, customer.phone, customer.country) == (
        "u-1",
        "ann@example.com",
        "+12125550100",
        "US",
    )


def test_a_repeated_idempotency_key_returns_the_original_id_and_creates_nothing(api):
    first = api("events", ORDER)
    again = api("events", {**ORDER, "properties": {"changed": True}})

    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert Event.objects.count() == 1
    assert Customer.objects.count() == 1


def test_a_known_external_id_updates_that_customer_instead_of_creating_one(api):
    api("events", ORDER)
    api("events", {"name": "cart_updated", "customer": {"external_id": "u-1", "country": "IT"}})
    assert Customer.objects.count() == 1
    assert Customer.objects.get().country == "IT"
    assert Event.objects.filter(name="profile_updated").exists()


def test_a_customer_is_found_by_email_whatever_its_case(api):
    api("events", {"name": "a", "customer": {"email": "zoe@example.com"}})
    api("events", {"name": "b", "customer": {"email": "ZOE@example.COM"}})
    assert Customer.objects.count() == 1


def test_without_a_valid_key_the_answer_is_401_and_nothing_is_stored(api, key):
    assert api("events", ORDER, auth="").status_code == 401
    assert api("events", ORDER, auth="Bearer th_wrong").status_code == 401
    response = api("events", ORDER, auth=f"Basic {key}")
    assert response.status_code == 401
    assert "Authorization" in errors_of(response)
    assert Event.objects.count() == 0


def test_a_revoked_key_is_refused(api, key):
    api_keys.revoke(api_keys.ApiKey.objects.all())
    assert api("events", ORDER).status_code == 401


def test_every_invalid_field_is_named_in_one_answer(api):
    response = api(
        "events",
        {
            "name": "order placed",
            "customer": {"email": "not-an-address", "phone": "12", "country": "XX"},
            "occurred_at": "2026-05-01T12:00:00",
            "propertes": {},
        },
    )

    assert response.status_code == 422
    errors = errors_of(response)
    assert set(errors) == {"name", "customer.email", "customer.phone", "customer.country", "occurred_at", "propertes"}
    assert "is not an e-mail address" in errors["customer.email"]
    assert "national number" in errors["customer.phone"]
    assert "'XX' is not a country code" in errors["customer.country"]
    assert "time zone offset" in errors["occurred_at"]
    assert Event.objects.count() == 0


def test_an_invalid_phone_is_reported_by_name_with_the_reason(api):
    response = api("events", {"name": "a", "customer": {"phone": "+1 555", "email": "a@example.com"}})
    assert response.status_code == 422
    assert errors_of(response) == {"customer.phone": "'+1 555' is too short for a +1 number."}


def test_an_event_without_any_customer_identity_is_refused(api):
    response = api("events", {"name": "a", "customer": {"first_name": "Ann"}})
    assert errors_of(response) == {"customer": "Identify the customer with external_id, email or phone."}


def test_a_body_that_is_not_json_gets_400(api):
    response = api("events", "{not json", raw=True)
    assert response.status_code == 400
    assert "Cannot parse request body" in errors_of(response)["body"]


def test_an_oversized_body_gets_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api("events", {**ORDER, "properties": {"padding": "x" * 2000}})
    assert response.status_code == 413
    assert "send smaller batches" in errors_of(response)["body"]


def test_a_batch_accepts_the_valid_events_and_reports_the_bad_one_by_index(api):
    response = api(
        "events/batch",
        {
            "events": [
                {"name": "a", "customer": {"email": "one@example.com"}},
                {"name": "b", "customer": {"email": "two@example.com", "phone": "call me", "country": "US"}},
                {"name": "c", "customer": {"email": "three@example.com"}, "idempotency_key": "k"},
                {"name": "c", "customer": {"email": "three@example.com"}, "idempotency_key": "k"},
            ]
        },
    )

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    results = body["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "duplicate"]
    assert results[1]["errors"][0]["field"] == "events[1].customer.phone"
    assert "contains characters other than digits" in results[1]["errors"][0]["message"]
    assert results[3]["id"] == results[2]["id"]
    assert Event.objects.count() == 2


def test_a_repeated_batch_returns_200_with_the_same_ids(api):
    batch = {
        "events": [{"name": "a", "customer": {"external_id": f"c{i}"}, "idempotency_key": f"k{i}"} for i in range(3)]
    }
    first = api("events/batch", batch)
    again = api("events/batch", batch)
    assert again.status_code == 200
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first.json()["results"]]
    assert Event.objects.count() == 3


def test_a_batch_of_only_bad_events_is_422(api):
    response = api("events/batch", {"events": [5, {"name": "x"}]})
    assert response.status_code == 422
    assert response.json()["results"][0]["errors"] == [
        {"field": "events[0]", "message": "Each event must be a JSON object."}
    ]


def test_a_batch_over_1000_events_is_refused_as_a_whole(api):
    response = api("events/batch", {"events": [{"name": "a", "customer": {"external_id": "x"}}] * 1001})
    assert response.status_code == 422
    assert "at most 1000 events" in errors_of(response)["events"]
    assert Event.objects.count() == 0


def test_a_batch_of_1000_events_for_many_customers_is_accepted(api):
    response = api(
        "events/batch",
        {"events": [{"name": "page_viewed", "customer": {"external_id": f"c{i % 300}"}} for i in range(1000)]},
    )
    assert response.json()["accepted"] == 1000
    assert Customer.objects.count() == 300


def test_past_the_rate_limit_the_answer_is_429_with_retry_after(client):
    _, key = api_keys.create("slow-shop", rate_limit_per_minute=2)
    post = lambda: client.post(  # noqa: E731
        "/api/v1/events",
        json.dumps({"name": "a", "customer": {"external_id": "1"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert [post().status_code for _ in range(2)] == [202, 202]
    limited = post()
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_the_openapi_document_is_served(client):
    document = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/events", "/api/v1/events/batch"} <= set(document["paths"])
    body = document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"external_id", "email", "phone", "country"} <= set(body["properties"]["customer"]["properties"])


def test_a_nul_character_anywhere_is_refused_by_field_not_with_a_500(api):
    response = api(
        "events",
        {
            "name": "a",
            "customer": {"external_id": "x\u0000y"},
            "properties": {"items": [{"sku": "moka\u0000"}]},
            "idempotency_key": "k\u0000",
        },
    )
    assert response.status_code == 422
    assert set(errors_of(response)) == {"customer.external_id", "properties.items[0].sku", "idempotency_key"}
    assert Event.objects.count() == 0


def test_an_offset_no_time_zone_has_is_refused_by_field(api):
    response = api(
        "events", {"name": "a", "customer": {"external_id": "x"}, "occurred_at": "2026-01-14T00:59:28-17:55"}
    )
    assert response.status_code == 422
    assert "is not a real time zone offset" in errors_of(response)["occurred_at"]
