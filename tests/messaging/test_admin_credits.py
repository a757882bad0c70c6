"""The admin for SMS rates, the credit ledger and suppressions."""

from decimal import Decimal

import pytest
from django.urls import reverse

from messaging import credits, outbox
from messaging.models import (
    Category,
    Channel,
    CreditEntry,
    CreditEntryKind,
    Reason,
    SmsRate,
    Status,
    Suppression,
    SuppressionReason,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_adding_credits_in_the_admin_writes_the_ledger_and_releases_held_sms(
    admin_client, settings, django_capture_on_commit_callbacks
):
    settings.TRIGGERHUB_SMS_CREDITS_ENFORCED = True
    SmsRate.objects.create(country="", credits_per_part=Decimal("1"))
    held = outbox.enqueue(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="t",
        dedupe_key="held",
    )
    assert held.reason == Reason.NO_CREDITS

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:messaging_creditentry_add"),
            {"kind": CreditEntryKind.PURCHASE, "amount": "25", "note": "invoice 7"},
            follow=True,
        )

    assert response.status_code == 200
    assert "Balance now 25" in response.content.decode()
    assert list(CreditEntry.objects.values_list("kind", "amount", "note")) == [
        (CreditEntryKind.PURCHASE, Decimal("25"), "invoice 7")
    ]
    held.refresh_from_db()
    assert held.status == Status.QUEUED
    listing = admin_client.get(reverse("admin:messaging_creditentry_changelist")).content.decode()
    assert f"balance {credits.balance()}" in listing


def test_ledger_lines_cannot_be_edited_or_deleted(admin_client):
    entry = credits.add(Decimal("5"))
    change = admin_client.post(reverse("admin:messaging_creditentry_change", args=[entry.pk]), {"amount": "500"})
    delete = admin_client.post(reverse("admin:messaging_creditentry_delete", args=[entry.pk]), {"post": "yes"})
    assert change.status_code == 403 and delete.status_code == 403
    entry.refresh_from_db()
    assert entry.amount == Decimal("5")


def test_a_manual_suppression_is_stored_lower_case_and_blocks_email(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_suppression_add"),
        {
            "channel": Channel.EMAIL,
            "address": "Ann@Example.COM",
            "reason": SuppressionReason.MANUAL,
            "detail": "asked by phone",
        },
    )
    assert response.status_code == 302
    assert Suppression.objects.get().address == "ann@example.com"
    message = outbox.enqueue(
        customer=factories.customer(email="ann@example.com"),
        channel=Channel.EMAIL,
        content=factories.email_template(),
        category=Category.TRANSACTIONAL,
        source="t",
        dedupe_key="s",
    )
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.SUPPRESSED)


def test_the_rates_page_lists_rates(admin_client):
    SmsRate.objects.create(country="IT", credits_per_part=Decimal("0.8"))
    page = admin_client.get(reverse("admin:messaging_smsrate_changelist")).content.decode()
    assert "IT: 0.8000 per part" in page
