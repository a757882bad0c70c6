"""Recording consent from a customer's admin page: one appended record, evidence required, the
ledger never edited; and the customer's local time shown beside UTC where a customer is concerned."""

import html
from datetime import UTC, datetime
from functools import partial

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from customers import consent
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Event
from tests import factories

pytestmark = pytest.mark.django_db


staff_with = partial(factories.staff_with, username="marketer")


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_with("view_customer", "view_consentrecord", "add_consentrecord"))
    return client


def consent_url(customer):
    return reverse("admin:customers_customer_record_consent", args=[customer.pk])


def change_url(customer):
    return reverse("admin:customers_customer_change", args=[customer.pk])


def record(client, customer, **fields):
    return client.post(consent_url(customer), {"channel": "sms", "action": "granted", **fields})


def test_recording_sms_consent_appends_a_granted_admin_record_with_its_evidence(marketer_client):
    customer = factories.customer(phone="+61412345678", country="AU")

    response = record(marketer_client, customer, evidence="Phoned 2 Dec, asked for SMS offers; call ref 4411")

    assert response.status_code == 302 and response.url == change_url(customer)
    [stored] = ConsentRecord.objects.filter(customer=customer)
    assert (stored.channel, stored.action, stored.source, stored.evidence) == (
        Channel.SMS,
        ConsentAction.GRANTED,
        ConsentSource.ADMIN,
        "Phoned 2 Dec, asked for SMS offers; call ref 4411",
    )
    assert customer.has_consent(Channel.SMS)
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Recorded SMS consent granted (source admin)."]


def test_recording_goes_through_the_ledger_so_a_consent_changed_event_is_emitted(marketer_client):
    customer = factories.customer()
    record(marketer_client, customer, evidence="Signed the paper form at the shop")

    [event] = Event.objects.filter(customer=customer, name="consent_changed")
    assert event.properties == {"channel": "sms", "action": "granted", "source": "admin"}


def test_a_revocation_is_appended_after_the_grant_and_wins(marketer_client):
    customer = factories.customer()
    consent.grant(customer, Channel.SMS, ConsentSource.FORM, "Ticked the box")

    record(marketer_client, customer, action="revoked", evidence="Asked on the phone to stop SMS")

    assert ConsentRecord.objects.filter(customer=customer).count() == 2
    assert customer.has_consent(Channel.SMS) is False


@pytest.mark.parametrize("evidence", ["", "   ", "\n\t  \n"])
def test_empty_or_blank_evidence_is_a_form_error_on_the_evidence_field(marketer_client, evidence):
    customer = factories.customer()

    response = record(marketer_client, customer, evidence=evidence)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["evidence"]
    assert errors["evidence"][0].startswith("Evidence is required")
    assert "Evidence is required" in html.unescape(response.content.decode())
    assert not ConsentRecord.objects.exists()


def test_evidence_with_a_nul_character_is_a_form_error(marketer_client):
    customer = factories.customer()

    response = record(marketer_client, customer, evidence="yes\x00please")

    assert response.status_code == 200
    assert response.context["form"].errors["evidence"] == ["Null characters are not allowed."]
    assert not ConsentRecord.objects.exists()


def test_evidence_with_a_lone_surrogate_is_refused_not_a_500():
    from customers.admin import RecordConsentForm

    form = RecordConsentForm({"channel": "sms", "action": "granted", "evidence": "ok \ud800"})

    assert form.errors["evidence"] == [
        "Evidence holds a character that cannot be stored (U+D800 at character 4); remove it and save again."
    ]


def test_a_lone_surrogate_posted_as_invalid_utf8_is_stored_as_a_replacement_character(marketer_client):
    customer = factories.customer()

    # The bytes a careless client sends for "\ud800"; Django decodes them with replacement.
    response = marketer_client.post(
        consent_url(customer),
        b"channel=sms&action=granted&evidence=ok+%ED%A0%80",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 302
    assert ConsentRecord.objects.get().evidence.startswith("ok \ufffd")


def test_evidence_of_10000_characters_is_stored_whole_and_one_more_is_refused(marketer_client):
    customer = factories.customer()

    assert record(marketer_client, customer, evidence="é" * 10_000).status_code == 302
    assert ConsentRecord.objects.get().evidence == "é" * 10_000

    response = record(marketer_client, customer, evidence="x" * 10_001)
    assert (
        response.context["form"]
        .errors["evidence"][0]
        .startswith("Evidence is 10,001 characters; keep it within 10,000")
    )
    assert ConsentRecord.objects.count() == 1


def test_an_unknown_channel_is_a_form_error(marketer_client):
    customer = factories.customer()

    response = record(marketer_client, customer, channel="fax", evidence="Said yes")

    assert "channel" in response.context["form"].errors
    assert not ConsentRecord.objects.exists()


def test_without_the_add_consent_record_permission_the_view_answers_403_and_the_page_has_no_form(client):
    client.force_login(staff_with("view_customer", "view_consentrecord", "change_customer"))
    customer = factories.customer()

    assert record(client, customer, evidence="Said yes").status_code == 403
    assert client.get(consent_url(customer)).status_code == 403
    page = client.get(change_url(customer)).content.decode()
    assert 'id="record-consent"' not in page
    assert not ConsentRecord.objects.exists()


def test_with_the_permission_the_customer_page_shows_the_form_posting_to_the_consent_view(marketer_client):
    customer = factories.customer()

    page = marketer_client.get(change_url(customer)).content.decode()

    assert 'id="record-consent"' in page
    assert f'action="{consent_url(customer)}"' in page


def test_a_user_who_cannot_see_customers_cannot_record_consent(client):
    client.force_login(staff_with("add_consentrecord"))
    customer = factories.customer()

    assert record(client, customer, evidence="Said yes").status_code == 403


def test_an_unknown_customer_is_404(marketer_client):
    assert (
        marketer_client.post(
            reverse("admin:customers_customer_record_consent", args=[999999]),
            {"channel": "sms", "action": "granted", "evidence": "x"},
        ).status_code
        == 404
    )


def test_the_ledger_cannot_be_added_to_changed_or_deleted_through_its_own_admin(admin_client):
    customer = factories.customer()
    stored = consent.grant(customer, Channel.SMS, ConsentSource.FORM, "Ticked the box")

    assert admin_client.get(reverse("admin:customers_consentrecord_add")).status_code == 403
    change = reverse("admin:customers_consentrecord_change", args=[stored.pk])
    admin_client.post(change, {"evidence": "rewritten", "action": "revoked"})
    assert (
        admin_client.post(
            reverse("admin:customers_consentrecord_delete", args=[stored.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    stored.refresh_from_db()
    assert (stored.evidence, stored.action) == ("Ticked the box", ConsentAction.GRANTED)
    # The customer's page shows the ledger with no field to edit and no box to delete a record.
    page = admin_client.get(change_url(customer)).content.decode()
    assert 'name="consent_records-0-evidence"' not in page
    assert 'name="consent_records-0-DELETE"' not in page


def test_the_customer_page_shows_the_ledger_latest_first_with_utc_and_the_customers_local_time(marketer_client):
    customer = factories.customer(phone="+61412345678", country="AU", timezone="Australia/Sydney")
    consent.grant(
        customer,
        Channel.SMS,
        ConsentSource.FORM,
        "Ticked the box in March",
        recorded_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    )
    consent.revoke(
        customer,
        Channel.SMS,
        ConsentSource.KEYWORD,
        "Texted STOP in June",
        recorded_at=datetime(2026, 6, 1, 23, 30, tzinfo=UTC),
    )

    page = marketer_client.get(change_url(customer)).content.decode()

    assert page.index("Texted STOP in June") < page.index("Ticked the box in March")
    # 23:30 UTC on 1 June is 09:30 the next morning in Sydney (AEST, +10); 09:00 UTC on 1 March 20:00 (AEDT, +11).
    assert "2026-06-02 09:30 Australia/Sydney" in page
    assert "2026-03-01 20:00 Australia/Sydney" in page


@time_machine.travel(datetime(2026, 12, 2, 3, 3, tzinfo=UTC), tick=False)
def test_the_customer_page_shows_the_customers_local_time_now_beside_utc(marketer_client):
    customer = factories.customer(phone="+61412345678", country="AU")

    page = marketer_client.get(change_url(customer)).content.decode()

    assert "14:03 Australia/Sydney (03:03 UTC)" in page


@time_machine.travel(datetime(2026, 12, 2, 3, 3, tzinfo=UTC), tick=False)
def test_a_customer_of_whom_no_zone_is_known_is_shown_in_the_site_default_zone(marketer_client, settings):
    settings.TRIGGERHUB_DEFAULT_TIMEZONE = "Europe/Rome"
    customer = factories.customer(country="")

    page = marketer_client.get(change_url(customer)).content.decode()

    assert "04:03 Europe/Rome (03:03 UTC)" in page


def test_the_consent_ledger_list_shows_each_record_in_its_customers_local_time(admin_client):
    customer = factories.customer(timezone="America/New_York")
    consent.grant(
        customer, Channel.EMAIL, ConsentSource.FORM, "yes", recorded_at=datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    )

    page = admin_client.get(reverse("admin:customers_consentrecord_changelist")).content.decode()

    assert "customer&#x27;s local time" in page.lower()
    assert "2026-01-14 22:00 America/New_York" in page
