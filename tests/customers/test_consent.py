from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from customers import consent
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Customer, Event
from tests import factories

pytestmark = pytest.mark.django_db


def granted_record(customer=None):
    return consent.grant(
        customer or factories.customer(),
        Channel.EMAIL,
        ConsentSource.FORM,
        "Yes, send me offers",
        ip_address="203.0.113.7",
        user_agent="Firefox",
    )


def test_grant_records_who_what_how_and_when():
    customer = factories.customer()
    record = granted_record(customer)

    stored = ConsentRecord.objects.get(pk=record.pk)
    assert (stored.customer, stored.channel, stored.action, stored.source) == (
        customer,
        Channel.EMAIL,
        ConsentAction.GRANTED,
        ConsentSource.FORM,
    )
    assert (stored.evidence, stored.ip_address, stored.user_agent) == ("Yes, send me offers", "203.0.113.7", "Firefox")
    assert stored.recorded_at is not None


def test_grant_emits_a_consent_changed_event():
    customer = factories.customer()
    granted_record(customer)

    [event] = Event.objects.filter(customer=customer, name="consent_changed")
    assert event.properties == {"channel": "email", "action": "granted", "source": "form"}


def test_revoke_emits_a_consent_changed_event():
    customer = factories.customer()
    consent.revoke(customer, Channel.SMS, ConsentSource.KEYWORD, "STOP")

    [event] = Event.objects.filter(customer=customer, name="consent_changed")
    assert event.properties == {"channel": "sms", "action": "revoked", "source": "keyword"}


def test_a_customer_without_records_has_no_consent():
    customer = factories.customer()
    assert customer.has_consent(Channel.EMAIL) is False
    assert customer.consent_state(Channel.EMAIL) is None


def test_has_consent_follows_the_latest_record_grant_revoke_grant():
    customer = factories.customer()

    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    assert customer.has_consent(Channel.EMAIL) is True
    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM)
    assert customer.has_consent(Channel.EMAIL) is False
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    assert customer.has_consent(Channel.EMAIL) is True


def test_latest_means_latest_recorded_not_latest_written():
    customer = factories.customer()
    now = timezone.now()
    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM, recorded_at=now)
    consent.grant(customer, Channel.EMAIL, ConsentSource.IMPORT, recorded_at=now - timedelta(days=30))

    assert customer.consent_state(Channel.EMAIL) == ConsentAction.REVOKED


def test_consent_is_per_channel():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)

    assert customer.has_consent(Channel.EMAIL) is True
    assert customer.has_consent(Channel.SMS) is False


def test_the_ledger_refuses_queryset_update():
    record = granted_record()
    with pytest.raises(TypeError, match="append-only"):
        ConsentRecord.objects.filter(pk=record.pk).update(action=ConsentAction.REVOKED)
    assert ConsentRecord.objects.get(pk=record.pk).action == ConsentAction.GRANTED


def test_the_ledger_refuses_queryset_delete():
    record = granted_record()
    with pytest.raises(TypeError, match="append-only"):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    assert ConsentRecord.objects.filter(pk=record.pk).exists()


def test_the_ledger_refuses_updates_and_deletes_through_the_customer():
    customer = factories.customer()
    granted_record(customer)
    with pytest.raises(TypeError):
        customer.consent_records.update(action=ConsentAction.REVOKED)
    with pytest.raises(TypeError):
        customer.consent_records.all().delete()
    assert customer.has_consent(Channel.EMAIL) is True


def test_the_ledger_refuses_bulk_update():
    record = granted_record()
    record.action = ConsentAction.REVOKED
    # A savepoint: the refused bulk_update would otherwise leave the test's transaction unusable.
    with pytest.raises(TypeError), transaction.atomic():
        ConsentRecord.objects.bulk_update([record], ["action"])
    assert ConsentRecord.objects.get(pk=record.pk).action == ConsentAction.GRANTED


def test_a_record_cannot_be_saved_again_after_creation():
    record = granted_record()
    record.action = ConsentAction.REVOKED
    with pytest.raises(TypeError, match="append-only"):
        record.save()
    assert ConsentRecord.objects.get(pk=record.pk).action == ConsentAction.GRANTED


def test_a_record_loaded_from_the_database_cannot_be_saved():
    record = ConsentRecord.objects.get(pk=granted_record().pk)
    with pytest.raises(TypeError, match="append-only"):
        record.save()


def test_a_record_cannot_be_deleted():
    record = granted_record()
    with pytest.raises(TypeError, match="append-only"):
        record.delete()
    assert ConsentRecord.objects.filter(pk=record.pk).exists()


def test_a_customer_with_consent_history_cannot_be_deleted():
    customer = factories.customer()
    granted_record(customer)
    with pytest.raises(ProtectedError):
        customer.delete()
    assert Customer.objects.filter(pk=customer.pk).exists()


# The admin: the ledger is readable there, never written.


def test_the_admin_lists_consent_records(admin_client):
    granted_record()
    response = admin_client.get("/admin/customers/consentrecord/")
    assert response.status_code == 200
    assert b"/admin/customers/consentrecord/add/" not in response.content


def test_the_admin_has_no_page_to_add_a_consent_record(admin_client):
    assert admin_client.get("/admin/customers/consentrecord/add/").status_code == 403
    assert admin_client.post("/admin/customers/consentrecord/add/", {}).status_code == 403


def test_the_admin_shows_a_consent_record_without_a_save_button(admin_client):
    record = granted_record()
    response = admin_client.get(f"/admin/customers/consentrecord/{record.pk}/change/")
    assert response.status_code == 200
    assert b"Yes, send me offers" in response.content
    assert b'name="_save"' not in response.content
    assert b'name="_continue"' not in response.content
    assert b"/delete/" not in response.content


def test_posting_the_admin_change_form_does_not_change_a_consent_record(admin_client):
    record = granted_record()
    response = admin_client.post(
        f"/admin/customers/consentrecord/{record.pk}/change/",
        {
            "customer": record.customer_id,
            "channel": "email",
            "action": "revoked",
            "source": "admin",
            "recorded_at_0": "2026-01-01",
            "recorded_at_1": "12:00:00",
            "_save": "Save",
        },
    )
    assert response.status_code == 403
    assert ConsentRecord.objects.get(pk=record.pk).action == ConsentAction.GRANTED


def test_the_admin_cannot_delete_a_consent_record(admin_client):
    record = granted_record()
    url = f"/admin/customers/consentrecord/{record.pk}/delete/"
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert ConsentRecord.objects.filter(pk=record.pk).exists()


def test_the_customer_page_shows_consent_history_read_only(admin_client):
    customer = factories.customer()
    granted_record(customer)

    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    assert response.status_code == 200
    [history] = [
        inline for inline in response.context["inline_admin_formsets"] if inline.formset.model is ConsentRecord
    ]
    assert (history.has_add_permission, history.has_change_permission) == (False, False)
    assert history.formset.can_delete is False
    assert b"Yes, send me offers" in response.content


def test_a_forged_delete_in_the_customer_form_leaves_the_consent_history(admin_client):
    customer = factories.customer(email="ann@example.com", country="US")
    record = granted_record(customer)
    customer_events = Event.objects.filter(customer=customer).count()

    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "email": "ann@example.com",
            "first_name": customer.first_name,
            "country": "US",
            "attributes": "{}",
            "consent_records-TOTAL_FORMS": "1",
            "consent_records-INITIAL_FORMS": "1",
            "consent_records-MIN_NUM_FORMS": "0",
            "consent_records-MAX_NUM_FORMS": "0",
            "consent_records-0-id": str(record.pk),
            "consent_records-0-customer": str(customer.pk),
            "consent_records-0-DELETE": "on",
            "events-TOTAL_FORMS": str(customer_events),
            "events-INITIAL_FORMS": str(customer_events),
            "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "0",
            **{
                f"events-{index}-id": str(pk)
                for index, pk in enumerate(
                    Event.objects.filter(customer=customer).order_by("-occurred_at").values_list("pk", flat=True)
                )
            },
            **{f"events-{index}-customer": str(customer.pk) for index in range(customer_events)},
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    assert ConsentRecord.objects.filter(pk=record.pk).exists()
