"""The SMS counter also counts the text rendered for a chosen customer; the messages list shows each
message's time in its customer's zone."""

from datetime import UTC, datetime
from functools import partial

import pytest
from django.urls import reverse

from messaging.admin import find_customer
from messaging.models import Category, Channel, Message
from tests import factories

pytestmark = pytest.mark.django_db

SEGMENTS_URL = "/admin/messaging/smscontent/segments/"
SOURCE = "Hi {{ customer.first_name }}, your offer is waiting"


staff_with = partial(factories.staff_with, username="marketer")


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_with("view_smscontent", "change_smscontent", "view_customer"))
    return client


def counted_for(client, wanted, text=SOURCE):
    response = client.get(SEGMENTS_URL, {"text": text, "customer": wanted})
    assert response.status_code == 200
    return response.json()


def test_the_counter_renders_the_typed_text_for_a_customer_found_by_email_and_names_what_forced_ucs2(marketer_client):
    factories.customer(email="zoe@example.com", first_name="Zoë")

    report = counted_for(marketer_client, "ZOE@example.com")

    assert report["encoding"] == "GSM-7"  # the source is plain ASCII
    rendered = report["for_customer"]
    assert rendered["customer"] == "zoe@example.com"
    assert rendered["text"] == "Hi Zoë, your offer is waiting"
    assert (rendered["encoding"], rendered["parts"]) == ("UCS-2", 1)
    assert [forced["codepoint"] for forced in rendered["forced_by"]] == ["U+00EB"]
    assert rendered["summary"].endswith("forced by ë (U+00EB)")


def test_a_customer_is_found_by_id_and_by_phone(marketer_client):
    customer = factories.customer(first_name="Ann", phone="+61412345678", country="AU")

    assert counted_for(marketer_client, str(customer.pk))["for_customer"]["text"] == "Hi Ann, your offer is waiting"
    assert counted_for(marketer_client, "+61412345678")["for_customer"]["customer"] == str(customer)


def test_a_name_that_makes_the_text_longer_than_one_part_says_what_the_site_will_do(marketer_client, settings):
    settings.TRIGGERHUB_SMS_LONG_POLICY = "refuse"
    factories.customer(email="long@example.com", first_name="B" * 100)

    rendered = counted_for(marketer_client, "long@example.com", text=SOURCE + " " + "x" * 60)["for_customer"]

    assert rendered["parts"] == 2
    assert rendered["long_policy"].startswith("The site refuses SMS over one part")


def test_a_template_error_is_reported_not_a_500(marketer_client):
    factories.customer(email="ann@example.com")

    rendered = counted_for(marketer_client, "ann@example.com", text="Hi {% if %}")["for_customer"]

    assert rendered["error"].startswith("This cannot be rendered for ann@example.com: ")
    assert "text" not in rendered


def test_an_unknown_customer_is_said_so(marketer_client):
    rendered = counted_for(marketer_client, "nobody@example.com")["for_customer"]

    assert rendered == {
        "error": "No customer has e-mail 'nobody@example.com': give an id, an e-mail address or a phone number (E.164)."
    }


@pytest.mark.parametrize("wanted", ["ann\x00@example.com", "1\x00", "x" * 300, "99999999999999999999999"])
def test_a_nul_character_huge_text_or_huge_number_as_the_customer_is_an_answer_not_a_500(marketer_client, wanted):
    assert "error" in counted_for(marketer_client, wanted)["for_customer"]


def test_a_lone_surrogate_in_the_text_is_counted_not_a_500(marketer_client):
    customer = factories.customer(first_name="Ann")

    response = marketer_client.get(
        f"{SEGMENTS_URL}?text=Hi+%ED%A0%80+{{{{+customer.first_name+}}}}&customer={customer.pk}"
    )

    assert response.status_code == 200
    assert response.json()["for_customer"]["text"] == "Hi \ufffd\ufffd\ufffd Ann"


def test_without_the_view_customer_permission_rendering_for_a_customer_is_403_and_the_box_is_not_shown(client):
    client.force_login(staff_with("view_smscontent", "change_smscontent"))
    customer = factories.customer()
    content = factories.sms_content()

    assert client.get(SEGMENTS_URL, {"text": SOURCE, "customer": customer.email}).status_code == 403
    assert client.get(SEGMENTS_URL, {"text": SOURCE}).status_code == 200  # the source alone is still counted
    page = client.get(reverse("admin:messaging_smscontent_change", args=[content.pk])).content.decode()
    assert 'id="sms-counter-customer"' not in page


def test_without_the_view_permission_on_sms_content_the_counter_is_403(client):
    client.force_login(staff_with("view_customer"))

    assert client.get(SEGMENTS_URL, {"text": SOURCE, "customer": "1"}).status_code == 403


def test_the_change_page_has_the_customer_box_outside_the_fields_the_form_sends(marketer_client):
    content = factories.sms_content()

    page = marketer_client.get(reverse("admin:messaging_smscontent_change", args=[content.pk])).content.decode()

    assert '<input type="search" id="sms-counter-customer"' in page
    box = page[page.index('id="sms-counter-customer"') :]
    assert "name=" not in box[: box.index(">")]


def test_find_customer_takes_the_newest_of_two_customers_with_one_email():
    factories.customer(email="twin@example.com", first_name="Older")
    newer = factories.customer(email="twin@example.com", first_name="Newer")

    assert find_customer("twin@example.com") == (newer, "")


def test_the_messages_list_shows_each_message_in_its_customers_local_time(admin_client):
    sydney = factories.customer(phone="+61412345678", country="AU")
    content = factories.sms_content()
    Message.objects.create(
        customer=sydney,
        channel=Channel.SMS,
        sms_content=content,
        category=Category.MARKETING,
        dedupe_key="a",
        send_after=datetime(2026, 12, 2, 21, 0, tzinfo=UTC),
    )
    Message.objects.create(
        customer=sydney,
        channel=Channel.SMS,
        sms_content=content,
        category=Category.MARKETING,
        dedupe_key="b",
        send_after=datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
        sent_at=datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC),
    )

    page = admin_client.get(reverse("admin:messaging_message_changelist")).content.decode()

    assert "customer&#x27;s local time" in page.lower()
    assert "due 2026-12-03 08:00 Australia/Sydney" in page
    assert "sent 2026-12-01 11:00 Australia/Sydney" in page
