"""Prepaid SMS credits: cost per part by country, a ledger, and holding what cannot be paid for."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from messaging import credits, outbox
from messaging.delivery import deliver
from messaging.exceptions import OutcomeUnknown, PermanentDeliveryError
from messaging.models import Category, Channel, CreditEntry, CreditEntryKind, Reason, SmsRate, Status
from tests import factories

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture(autouse=True)
def metered(settings):
    from messaging.backends.sms import locmem

    settings.TRIGGERHUB_SMS_CREDITS_ENFORCED = True
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    SmsRate.objects.create(country="US", credits_per_part=Decimal("1.5"))
    SmsRate.objects.create(country="", credits_per_part=Decimal("4"))
    with time_machine.travel(NOON, tick=False):
        yield locmem.outbox


def enqueue_sms(key, phone="+12125550100", text="Your order shipped", publish_on_commit=None):
    return outbox.enqueue(
        customer=factories.customer(phone=phone),
        channel=Channel.SMS,
        content=factories.sms_content(slug=key, text=text),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=key,
    )


def test_an_sms_with_no_credits_is_held_with_reason_no_credits():
    message = enqueue_sms("held")
    assert (message.status, message.reason) == (Status.DEFERRED, Reason.NO_CREDITS)
    assert "needs 1.5 credits, 0 left" in message.detail


def test_held_messages_go_out_when_credits_are_added(metered, django_capture_on_commit_callbacks):
    message = enqueue_sms("held")
    outbox.sweep(stale_after=timedelta(minutes=2), now=NOON + timedelta(hours=1))
    message.refresh_from_db()
    assert message.status == Status.DEFERRED  # the clock does not release it; credits do

    with django_capture_on_commit_callbacks(execute=True):
        credits.add(Decimal("10"), note="top-up")
    message.refresh_from_db()
    assert message.status == Status.QUEUED

    assert deliver(message.pk) == Status.SENT
    assert [sms.to for sms in metered] == ["+12125550100"]
    assert credits.balance() == Decimal("8.5")


def test_each_send_is_a_ledger_line_with_the_balance_after_it():
    credits.add(Decimal("10"))
    deliver(enqueue_sms("one").pk)
    deliver(enqueue_sms("two", phone="+393471234567").pk)  # Italy: the default rate

    lines = list(CreditEntry.objects.order_by("pk").values_list("kind", "amount", "balance_after"))
    assert lines == [
        (CreditEntryKind.PURCHASE, Decimal("10"), Decimal("10")),
        (CreditEntryKind.SEND, Decimal("-1.5"), Decimal("8.5")),
        (CreditEntryKind.SEND, Decimal("-4"), Decimal("4.5")),
    ]


def test_a_long_sms_costs_one_rate_per_part():
    credits.add(Decimal("10"))
    message = enqueue_sms("long", text="a" * 200)  # two GSM-7 parts
    assert deliver(message.pk) == Status.SENT
    message.refresh_from_db()
    assert message.parts == 2
    assert credits.balance() == Decimal("7")


def test_a_message_that_costs_more_than_is_left_is_held_at_send_time():
    credits.add(Decimal("2"))
    message = enqueue_sms("long", text="a" * 200)  # 2 parts = 3 credits; one part looked affordable
    assert message.status == Status.QUEUED
    assert deliver(message.pk) == Status.DEFERRED
    message.refresh_from_db()
    assert (message.reason, credits.balance()) == (Reason.NO_CREDITS, Decimal("2"))


def test_a_country_without_a_rate_and_no_default_is_held_saying_so():
    SmsRate.objects.filter(country="").delete()
    credits.add(Decimal("10"))
    message = enqueue_sms("italy", phone="+393471234567")
    assert (message.status, message.reason) == (Status.DEFERRED, Reason.NO_CREDITS)
    assert message.detail == "no SMS rate for IT and no default rate"


def test_a_refused_sms_is_refunded(monkeypatch):
    from messaging.backends.sms import locmem

    def refuse(self, sms):
        raise PermanentDeliveryError("invalid number", code="21211")

    monkeypatch.setattr(locmem.SmsBackend, "send", refuse)
    credits.add(Decimal("10"))
    message = enqueue_sms("refused")
    assert deliver(message.pk) == Status.FAILED
    assert credits.balance() == Decimal("10")
    kinds = list(CreditEntry.objects.filter(message=message).order_by("pk").values_list("kind", flat=True))
    assert kinds == [CreditEntryKind.SEND, CreditEntryKind.REFUND]


def test_an_sms_whose_answer_was_lost_stays_paid_for_and_counted_by_caps(monkeypatch):
    """It probably went: its credits are not given back, and frequency caps keep counting it."""
    from messaging.backends.sms import locmem

    def lose_the_answer(self, sms):
        raise OutcomeUnknown("Twilio's answer was lost")

    monkeypatch.setattr(locmem.SmsBackend, "send", lose_the_answer)
    credits.add(Decimal("10"))
    message = enqueue_sms("lost-answer")

    assert deliver(message.pk) == Status.UNKNOWN

    assert credits.balance() == Decimal("8.5")
    message.refresh_from_db()
    assert message.sent_at is not None


def test_credits_are_not_touched_when_metering_is_off(settings):
    settings.TRIGGERHUB_SMS_CREDITS_ENFORCED = False
    message = enqueue_sms("free")
    assert deliver(message.pk) == Status.SENT
    assert not CreditEntry.objects.exists()
