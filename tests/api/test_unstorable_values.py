"""Values no JSON column stores (NaN, Infinity, 1e400, 5,000 digits, a lone surrogate) get a 422 by field.

Bodies are raw bytes: json.dumps writes no lone surrogate and no 1e400, and what a
storefront that is not Python sends is text like this.
"""

import pytest

from customers import api_keys
from customers.models import Event

pytestmark = pytest.mark.django_db

HUGE_INTEGER = "9" * 5_000


@pytest.fixture
def post(client, settings):
    settings.DEBUG = False  # as in production: a 500 would be an error page, not a traceback
    _, key = api_keys.create("shop-api")

    def post(path, body: str):
        return client.post(
            f"/api/v1/{path}",
            body.encode("utf-8"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    return post


def event_with(properties_text: str) -> str:
    return '{"name": "order_placed", "customer": {"external_id": "u-1"}, "properties": %s}' % properties_text


def errors_of(response) -> dict:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("properties", "field", "message"),
    [
        ('{"price": NaN}', "properties.price", "NaN is not a JSON number; send a finite number or a string."),
        ('{"price": Infinity}', "properties.price", "Infinity is not a JSON number; send a finite number or a string."),
        (
            '{"items": [{"price": -Infinity}]}',
            "properties.items[0].price",
            "-Infinity is not a JSON number; send a finite number or a string.",
        ),
        (
            '{"price": 1e400}',
            "properties.price",
            "1e400 is beyond the largest number that can be stored (about 1.8e308); send it as a string.",
        ),
        (
            '{"order": {"id": %s}}' % HUGE_INTEGER,
            "properties.order.id",
            "A number of more than 4,300 digits cannot be stored; send it as a string.",
        ),
        (
            '{"note": "caf\\ud800"}',
            "properties.note",
            "Contains \\ud800, half of a UTF-16 surrogate pair without its other half: "
            "it is not a character and cannot be stored.",
        ),
        (
            '{"tags": {"\\udc00x": 1}}',
            "properties.tags.\\udc00x",
            "The name of this field contains \\udc00, half of a UTF-16 surrogate pair without its other half: "
            "it is not a character and cannot be stored.",
        ),
    ],
)
def test_a_value_no_json_column_stores_is_422_naming_its_field(post, properties, field, message):
    response = post("events", event_with(properties))

    assert response.status_code == 422
    assert errors_of(response) == {field: message}
    assert not Event.objects.exists()


def test_a_batch_accepts_its_valid_events_and_names_the_bad_one_by_index(post):
    good = event_with('{"price": 12.5}')
    response = post(
        "events/batch",
        '{"events": [%s, %s, %s, %s]}'
        % (
            good,
            good,
            event_with('{"price": NaN}'),
            event_with('{"\\ud800": 1, "n": 1e400}'),
        ),
    )

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["results"][2] == {
        "index": 2,
        "status": "rejected",
        "id": None,
        "errors": [
            {
                "field": "events[2].properties.price",
                "message": "NaN is not a JSON number; send a finite number or a string.",
            }
        ],
    }
    assert [error["field"] for error in body["results"][3]["errors"]] == [
        "events[3].properties.\\ud800",
        "events[3].properties.n",
    ]
    assert Event.objects.count() == 2


def test_a_lone_surrogate_outside_properties_is_named_once_by_its_field(post):
    response = post(
        "events",
        ('{"name": "a\\ud800", "customer": {"external_id": "u\\udfff"}, "idempotency_key": "k\\ud800", "\\ud800": 1}'),
    )

    assert response.status_code == 422
    assert set(errors_of(response)) == {"name", "customer.external_id", "idempotency_key", "\\ud800"}
    assert all("surrogate pair" in message for message in errors_of(response).values())


def test_other_bad_fields_are_named_beside_an_unstorable_value(post):
    response = post(
        "events",
        ('{"name": "order placed", "customer": {"external_id": NaN, "email": "nope"}, "properties": {"p": NaN}}'),
    )

    assert errors_of(response) == {
        "customer.external_id": "NaN is not a JSON number; send a finite number or a string.",
        "properties.p": "NaN is not a JSON number; send a finite number or a string.",
        "name": "String should match pattern '^[A-Za-z0-9_.:-]+$'",
        "customer.email": "'nope' is not an e-mail address.",
    }


def test_properties_nested_past_100_levels_are_refused_not_a_500(post):
    # json.loads reads some 900 levels; writing them back overflows the stack.
    response = post("events", event_with('{"a": %s}' % ("[" * 900 + "]" * 900)))

    assert response.status_code == 422
    [(field, message)] = errors_of(response).items()
    assert field == "properties.a" + "[0]" * 98  # the event is the first level
    assert message == "Nested more than 100 levels deep; flatten it."


def test_a_well_formed_date_that_does_not_exist_beside_another_error_is_422(post):
    response = post(
        "events",
        ('{"name": "a", "customer": {"external_id": "u-1"}, "occurred_at": "2026-13-01T00:00:00Z", "propertes": {}}'),
    )

    assert response.status_code == 422
    assert set(errors_of(response)) == {"occurred_at", "propertes"}


def test_a_surrogate_pair_and_a_4300_digit_number_are_accepted(post):
    response = post("events", event_with('{"note": "\\ud83d\\ude00 \\u00e9", "long": %s}' % ("9" * 4_300)))

    assert response.status_code == 202
    properties = Event.objects.get().properties
    assert (properties["note"], properties["long"]) == ("\U0001f600 é", int("9" * 4_300))
