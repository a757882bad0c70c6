from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from messaging import outbox
from messaging.backends.sms import locmem
from messaging.delivery import deliver
from messaging.models import Category, Channel, Reason, Status
from tests import factories
from tests.email_backends import FlakyEmailBackend

pytestmark = pytest.mark.django_db


def queued_email(customer=None, **template_fields):
    return outbox.enqueue(
        customer=customer or factories.customer(first_name="Zoe", email="zoe@example.com"),
        channel=Channel.EMAIL,
        content=factories.email_template(**template_fields),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="test:1",
        context={"event": {"order_id": "1042"}},
    )


def test_delivering_renders_sends_and_marks_the_message_sent(mailoutbox):
    message = queued_email(
        subject="Hello {{ customer.first_name }}",
        html_body="<p>Order {{ event.order_id }} for {{ customer.first_name }}</p>",
    )

    assert deliver(message.pk) == Status.SENT

    message.refresh_from_db()
    assert (message.status, message.subject, message.to_address) == (Status.SENT, "Hello Zoe", "zoe@example.com")
    assert message.sent_at is not None and message.attempts == 1
    [email] = mailoutbox
    assert email.to == ["zoe@example.com"] and email.subject == "Hello Zoe"
    assert email.body == "Order 1042 for Zoe"  # the text part, derived from the HTML
    assert email.alternatives[0].content == "<p>Order 1042 for Zoe</p>"


def test_a_message_is_sent_once_however_many_times_delivery_runs(mailoutbox):
    message = queued_email()
    assert deliver(message.pk) == Status.SENT
    assert deliver(message.pk) is None
    assert len(mailoutbox) == 1


def test_html_in_customer_data_is_escaped_in_the_html_part(mailoutbox):
    customer = factories.customer(first_name="<script>x</script>")
    message = queued_email(customer)
    deliver(message.pk)
    assert "<script>" not in mailoutbox[0].alternatives[0].content
    assert "&lt;script&gt;" in mailoutbox[0].alternatives[0].content


def test_a_scheduled_message_is_not_sent_before_its_time(mailoutbox):
    later = timezone.now() + timedelta(hours=1)
    message = outbox.enqueue(
        customer=factories.customer(),
        channel=Channel.EMAIL,
        content=factories.email_template(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="later",
        send_after=later,
    )
    assert deliver(message.pk) is None
    with time_machine.travel(later + timedelta(seconds=1)):
        assert deliver(message.pk) == Status.SENT
    assert len(mailoutbox) == 1


def test_a_transient_error_queues_a_retry_with_backoff_then_the_message_goes(settings, mailoutbox):
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyEmailBackend"
    settings.TRIGGERHUB_RETRY_BACKOFF_SECONDS = 60
    FlakyEmailBackend.failures_left = 1
    message = queued_email()

    assert deliver(message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.reason == Reason.TRANSIENT_ERROR
    assert "Connection refused" in message.detail
    delay = (message.send_after - timezone.now()).total_seconds()
    assert 25 <= delay <= 61  # 60 s ceiling with jitter (at least half of it)
    assert deliver(message.pk) is None  # not before its retry time

    with time_machine.travel(message.send_after + timedelta(seconds=1)):
        assert deliver(message.pk) == Status.SENT
    assert len(mailoutbox) == 1


def test_transient_errors_fail_the_message_after_the_last_attempt(settings):
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyEmailBackend"
    settings.TRIGGERHUB_MAX_SEND_ATTEMPTS = 2
    FlakyEmailBackend.failures_left = 5
    message = queued_email()

    assert deliver(message.pk) == Status.QUEUED
    message.refresh_from_db()
    with time_machine.travel(message.send_after + timedelta(seconds=1)):
        assert deliver(message.pk) == Status.FAILED
    message.refresh_from_db()
    assert (message.attempts, message.reason) == (2, Reason.TRANSIENT_ERROR)
    FlakyEmailBackend.failures_left = 0


def test_a_permanent_refusal_fails_at_once(settings):
    settings.EMAIL_BACKEND = "tests.email_backends.RefusingEmailBackend"
    message = queued_email()
    assert deliver(message.pk) == Status.FAILED
    message.refresh_from_db()
    assert message.reason == Reason.PROVIDER_REJECTED
    assert "invalid mailbox" in message.detail


def test_the_policy_is_asked_again_at_send_time(mailoutbox):
    message = queued_email()
    message.customer.email = ""  # the address went away while the message waited
    message.customer.save()
    assert deliver(message.pk) == Status.BLOCKED
    message.refresh_from_db()
    assert message.reason == Reason.NO_ADDRESS
    assert mailoutbox == []


def test_an_sms_goes_through_the_configured_backend(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    customer = factories.customer(first_name="Zoe", phone="+12125550100")
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=factories.sms_content(text="Hi {{ customer.first_name }}!"),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="sms:1",
    )
    assert deliver(message.pk) == Status.SENT
    [sms] = locmem.outbox
    assert (sms.to, sms.body, sms.message_id) == ("+12125550100", "Hi Zoe!", message.pk)
    message.refresh_from_db()
    assert message.provider_message_id.startswith("locmem-")


def long_sms(settings, text):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    customer = factories.customer(phone="+12125550100")
    return outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=factories.sms_content(text=text),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="long",
    )


@pytest.mark.parametrize("policy, sent_body", [("split", "’" + "a" * 80), ("truncate", "’" + "a" * 69)])
def test_a_long_sms_is_split_or_truncated_by_the_site_policy(settings, policy, sent_body):
    settings.TRIGGERHUB_SMS_LONG_POLICY = policy
    message = long_sms(settings, "’" + "a" * 80)
    assert deliver(message.pk) == Status.SENT
    assert [sms.body for sms in locmem.outbox] == [sent_body]


def test_a_long_sms_is_blocked_under_refuse_and_the_reason_names_the_culprit(settings):
    settings.TRIGGERHUB_SMS_LONG_POLICY = "refuse"
    message = long_sms(settings, "It’s " + "a" * 80)
    assert deliver(message.pk) == Status.BLOCKED
    message.refresh_from_db()
    assert message.reason == Reason.TOO_LONG
    assert message.detail == "85 UCS-2 units make 2 parts; '’' forced UCS-2."
    assert locmem.outbox == []


def test_a_delivery_report_that_overtakes_the_send_is_not_moved_back_to_sent(settings, monkeypatch):
    from messaging import status as provider_status
    from messaging.models import Message

    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    message = outbox.enqueue(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="t",
        dedupe_key="race",
    )
    original_send = locmem.SmsBackend.send

    def send_and_report_delivered_at_once(self, sms):
        result = original_send(self, sms)
        provider_status.apply_provider_status(
            message=Message.objects.get(pk=sms.message_id), status=Status.DELIVERED, detail="fast carrier"
        )
        return result

    monkeypatch.setattr(locmem.SmsBackend, "send", send_and_report_delivered_at_once)
    assert deliver(message.pk) == Status.DELIVERED
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.provider_message_id.startswith("locmem-")
    assert list(message.events.values_list("status", flat=True)) == ["queued", "delivered", "sent"]
