"""Resending e-mail the ESP could not deliver: later, a limited number of times, never to a bad address."""

from datetime import timedelta

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent, tracking
from django.utils import timezone

from customers.models import Channel
from messaging import outbox, suppressions
from messaging.delivery import deliver
from messaging.models import Category, Message, Reason, Status, SuppressionReason
from messaging.status import apply_provider_status
from tests import factories

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def resend_twice_after_a_day(settings):
    settings.TRIGGERHUB_EMAIL_RESEND_ATTEMPTS = 2
    settings.TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS = 24


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def sent_email(provider_id="esp-1") -> Message:
    customer = factories.customer(email="zoe@example.com")
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=factories.email_template(),
        category=Category.TRANSACTIONAL,
        source="activity:1/enrollment:7/step:0",
        dedupe_key="order-confirmation:1042",
        context={"event": {"order_id": "1042"}},
    )
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENT, sent_at=NOW, to_address=customer.email, provider_message_id=provider_id
    )
    message.refresh_from_db()
    return message


def undelivered(message):
    apply_provider_status(message=message, status=Status.UNDELIVERED, detail="ESP gave up")
    return Message.objects.filter(resend_of=message).first()


def test_resending_is_off_by_default(settings):
    settings.TRIGGERHUB_EMAIL_RESEND_ATTEMPTS = 0
    assert undelivered(sent_email()) is None
    assert Message.objects.count() == 1


def test_an_undelivered_email_is_written_again_for_after_the_configured_hours():
    original = sent_email()

    resent = undelivered(original)

    assert resent.dedupe_key == "order-confirmation:1042:resend:1"
    assert (resent.status, resent.send_after) == (Status.SCHEDULED, NOW + timedelta(hours=24))
    assert (resent.email_template, resent.category, resent.context, resent.source) == (
        original.email_template,
        original.category,
        original.context,
        original.source,
    )


def test_the_resend_goes_out_when_its_time_comes(mailoutbox):
    resent = undelivered(sent_email())
    assert deliver(resent.pk) is None
    with time_machine.travel(resent.send_after + timedelta(seconds=1), tick=False):
        assert deliver(resent.pk) == Status.SENT
    [email] = mailoutbox
    assert email.to == ["zoe@example.com"]


def test_resends_stop_after_the_configured_number():
    original = sent_email()
    first = undelivered(original)
    second = undelivered(first)

    assert undelivered(second) is None
    assert (second.resend_of, second.dedupe_key) == (first, "order-confirmation:1042:resend:2")
    assert Message.objects.count() == 3


def test_the_same_failure_reported_twice_is_resent_once():
    original = sent_email()
    undelivered(original)
    undelivered(original)
    assert Message.objects.filter(resend_of=original).count() == 1


def test_a_resend_is_asked_the_send_policy_again():
    original = sent_email()
    suppressions.suppress(channel=Channel.EMAIL, address="zoe@example.com", reason=SuppressionReason.MANUAL)

    resent = undelivered(original)

    assert (resent.status, resent.reason) == (Status.BLOCKED, Reason.SUPPRESSED)


def test_an_undelivered_sms_is_not_resent():
    customer = factories.customer(phone="+12125550100")
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="sms:1",
    )
    Message.objects.filter(pk=message.pk).update(status=Status.SENT)
    assert undelivered(message) is None


def report(event_type, **fields):
    event = AnymailTrackingEvent(
        event_type=event_type,
        message_id="esp-1",
        recipient="zoe@example.com",
        timestamp=NOW,
        esp_event={"event": event_type},
        **fields,
    )
    tracking.send(sender=object, event=event, esp_name="SendGrid")


def test_an_esp_failed_event_resends_the_email():
    original = sent_email()
    report("failed", description="ESP could not relay the message")
    original.refresh_from_db()
    assert original.status == Status.UNDELIVERED
    assert Message.objects.filter(resend_of=original).count() == 1


@pytest.mark.parametrize("event_type", ["bounced", "complained", "rejected", "deferred"])
def test_hard_bounces_complaints_rejections_and_deferrals_are_not_resent(event_type):
    original = sent_email()
    report(event_type)
    assert not Message.objects.filter(resend_of=original).exists()
