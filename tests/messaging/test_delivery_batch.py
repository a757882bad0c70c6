"""An e-mail delivery task sends its own message and other due queued e-mails with it."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from customers import consent
from customers.models import ConsentSource
from messaging import delivery, outbox, rendering, suppressions
from messaging.delivery import deliver, deliver_email_batch
from messaging.models import Category, Channel, Message, MessageEvent, Reason, Status, SuppressionReason
from tests import factories
from tests.email_backends import FlakyEmailBackend

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return factories.email_template(subject="Hello {{ customer.first_name }}")


def queued_email(template, customer=None, *, key, category=Category.TRANSACTIONAL, **fields):
    return outbox.enqueue(
        customer=customer or factories.customer(),
        channel=Channel.EMAIL,
        content=template,
        category=category,
        source="test",
        dedupe_key=key,
        **fields,
    )


def statuses(*messages):
    return [Message.objects.get(pk=message.pk).status for message in messages]


def test_one_task_delivers_a_batch_of_queued_emails(template, mailoutbox):
    messages = [queued_email(template, key=f"batch:{n}") for n in range(3)]

    assert deliver_email_batch(messages[1].pk) == Status.SENT

    assert statuses(*messages) == [Status.SENT] * 3
    assert sorted(email.to[0] for email in mailoutbox) == sorted(m.customer.email for m in messages)
    assert MessageEvent.objects.filter(status=Status.SENT).count() == 3
    assert all(Message.objects.get(pk=m.pk).sent_at is not None for m in messages)


def test_the_tasks_of_messages_a_batch_sent_find_nothing_to_do(template, mailoutbox):
    first, second = queued_email(template, key="a"), queued_email(template, key="b")
    deliver_email_batch(first.pk)

    assert deliver_email_batch(second.pk) is None
    assert deliver_email_batch(first.pk) is None
    assert deliver(second.pk) is None
    assert len(mailoutbox) == 2


def test_a_task_whose_message_was_taken_still_sends_what_is_due(template, mailoutbox):
    taken, waiting = queued_email(template, key="taken"), queued_email(template, key="waiting")
    Message.objects.filter(pk=taken.pk).update(status=Status.SENDING)

    assert deliver_email_batch(taken.pk) is None
    assert statuses(taken, waiting) == [Status.SENDING, Status.SENT]


def test_a_batch_takes_at_most_the_batch_size(template, settings, mailoutbox):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    messages = [queued_email(template, key=f"size:{n}") for n in range(3)]

    deliver_email_batch(messages[0].pk)

    assert statuses(*messages) == [Status.SENT, Status.SENT, Status.QUEUED]


def test_a_batch_size_of_one_sends_only_the_tasks_own_message(template, settings, mailoutbox):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 1
    first, second = queued_email(template, key="a"), queued_email(template, key="b")

    assert deliver_email_batch(second.pk) == Status.SENT
    assert statuses(first, second) == [Status.QUEUED, Status.SENT]


def test_a_batch_leaves_messages_not_due_held_blocked_or_claimed_alone(template, mailoutbox):
    own = queued_email(template, key="own")
    later = queued_email(template, key="later", send_after=timezone.now() + timedelta(hours=1))
    held = outbox.enqueue(
        customer=factories.customer(),
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source="activity:9/enrollment:1",
        dedupe_key="held",
    )
    outbox.hold(source_prefix="activity:9/")
    blocked = queued_email(template, factories.customer(email=""), key="blocked")
    claimed = queued_email(template, key="claimed")
    Message.objects.filter(pk=claimed.pk).update(status=Status.SENDING)

    deliver_email_batch(own.pk)

    assert statuses(own, later, held, blocked, claimed) == [
        Status.SENT,
        Status.SCHEDULED,
        Status.DEFERRED,
        Status.BLOCKED,
        Status.SENDING,
    ]
    assert [email.to for email in mailoutbox] == [[own.customer.email]]


def test_a_batch_does_not_take_sms(template, settings, mailoutbox):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    own = queued_email(template, key="own")
    sms = outbox.enqueue(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="sms",
    )
    deliver_email_batch(own.pk)
    assert statuses(own, sms) == [Status.SENT, Status.QUEUED]


def test_a_message_the_policy_blocks_in_a_batch_is_blocked_while_the_others_go(template, mailoutbox):
    first, gone, last = (queued_email(template, key=f"policy:{n}") for n in range(3))
    gone.customer.email = ""  # the address went away while the message waited
    gone.customer.save()

    deliver_email_batch(first.pk)

    assert statuses(first, gone, last) == [Status.SENT, Status.BLOCKED, Status.SENT]
    gone.refresh_from_db()
    # Claimed with the batch, then refused: not an attempt, and nothing counts it as sent.
    assert (gone.reason, gone.sent_at, gone.attempts, gone.lease_expires_at) == (Reason.NO_ADDRESS, None, 0, None)
    assert list(gone.events.values_list("status", flat=True)) == ["queued", "blocked"]
    assert len(mailoutbox) == 2


def test_a_suppressed_address_in_a_batch_is_blocked_while_the_others_go(template, mailoutbox):
    first, bounced, last = (queued_email(template, key=f"suppressed:{n}") for n in range(3))
    suppressions.suppress(
        channel=Channel.EMAIL,
        address=bounced.customer.email.upper(),
        reason=SuppressionReason.BOUNCE,
    )

    deliver_email_batch(first.pk)

    assert statuses(first, bounced, last) == [Status.SENT, Status.BLOCKED, Status.SENT]
    assert Message.objects.get(pk=bounced.pk).reason == Reason.SUPPRESSED


def test_a_frequency_cap_counts_a_message_sent_earlier_in_the_same_batch(template, settings, mailoutbox):
    settings.TRIGGERHUB_FREQUENCY_CAPS = "email:marketing:1/1d"
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    first = queued_email(template, customer, key="cap:1", category=Category.MARKETING)
    second = queued_email(template, customer, key="cap:2", category=Category.MARKETING)

    deliver_email_batch(first.pk)

    assert statuses(first, second) == [Status.SENT, Status.DEFERRED]
    assert Message.objects.get(pk=second.pk).reason == Reason.FREQUENCY_CAP
    assert len(mailoutbox) == 1


def test_a_capped_message_is_counted_as_handed_over_before_it_is_sent(template, settings, monkeypatch):
    """Caps read ``sent_at``: a capped message has it when its batch commits, before the send."""
    settings.TRIGGERHUB_FREQUENCY_CAPS = "email:marketing:5/1d"
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    capped = queued_email(template, customer, key="counted:capped", category=Category.MARKETING)
    plain = queued_email(template, key="counted:plain")
    stored_when_sending = {}
    send_emails = delivery._send_emails

    def look_then_send(messages, **kwargs):
        stored_when_sending.update(Message.objects.filter(pk__in=[capped.pk, plain.pk]).values_list("pk", "sent_at"))
        return send_emails(messages, **kwargs)

    monkeypatch.setattr(delivery, "_send_emails", look_then_send)
    deliver_email_batch(capped.pk)

    assert stored_when_sending[capped.pk] is not None
    assert stored_when_sending[plain.pk] is None  # no cap reads it: written with its hand-over
    assert statuses(capped, plain) == [Status.SENT, Status.SENT]
    assert Message.objects.get(pk=plain.pk).sent_at is not None


def test_a_transient_error_on_one_message_of_a_batch_retries_only_that_one(template, settings, mailoutbox):
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyEmailBackend"
    FlakyEmailBackend.failures_left = 1  # the batch's first send, the oldest message
    first, second, third = (queued_email(template, key=f"flaky:{n}") for n in range(3))

    assert deliver_email_batch(second.pk) == Status.SENT

    assert statuses(first, second, third) == [Status.QUEUED, Status.SENT, Status.SENT]
    first.refresh_from_db()
    assert (first.reason, first.sent_at, first.attempts) == (Reason.TRANSIENT_ERROR, None, 1)
    assert first.send_after > timezone.now()
    assert len(mail.outbox) == 2


def test_a_compiled_template_is_reused_for_the_same_source():
    source = "Hi {{ customer.first_name }} {{ event.order_id }}"
    assert rendering.compile_template(source) is rendering.compile_template(source)
    assert rendering.compile_template(source) is not rendering.compile_template(source + "!")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite runs one writer at a time")
def test_workers_draining_at_once_send_each_message_once(template, mailoutbox):
    messages = [queued_email(template, key=f"race:{n}") for n in range(40)]
    barrier = threading.Barrier(4)

    def drain(message):
        barrier.wait()
        try:
            deliver_email_batch(message.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain, args=(messages[n * 10],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses(*messages) == [Status.SENT] * 40
    assert sorted(email.to[0] for email in mailoutbox) == sorted(m.customer.email for m in messages)
    assert MessageEvent.objects.filter(status=Status.SENT).count() == 40


@pytest.mark.parametrize("category", [Category.TRANSACTIONAL, Category.MARKETING])
def test_a_batch_costs_the_same_statements_for_three_messages_as_for_six_but_one_commit_per_send(
    template,
    settings,
    mailoutbox,
    category,
):
    """No statement per message but the commit of its place in the hand-over before its
    send: a field a batch reads but did not load, or each marketing customer's consent,
    would cost one per customer."""
    from django.test.utils import CaptureQueriesContext

    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 6
    counts = []
    for size in (3, 6):
        customers = [factories.customer() for _ in range(size)]
        for customer in customers:
            consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
        messages = [
            queued_email(template, customer, key=f"statements:{size}:{n}", category=category)
            for n, customer in enumerate(customers)
        ]
        with CaptureQueriesContext(connection) as captured:
            deliver_email_batch(messages[0].pk)
        assert statuses(*messages) == [Status.SENT] * size
        positions = [q for q in captured.captured_queries if q["sql"].startswith('UPDATE "messaging_handover"')]
        assert len(positions) == size
        counts.append(len(captured) - len(positions))
    assert counts[0] == counts[1]


def test_consent_read_with_a_marketing_batch_blocks_the_customer_who_revoked_it_meanwhile(template, mailoutbox):
    customers = [factories.customer() for _ in range(3)]
    for customer in customers:
        consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    messages = [
        queued_email(template, customer, key=f"consent:{n}", category=Category.MARKETING)
        for n, customer in enumerate(customers)
    ]
    consent.revoke(customers[1], Channel.EMAIL, ConsentSource.UNSUBSCRIBE)  # after the enqueue's decision

    deliver_email_batch(messages[0].pk)

    assert statuses(*messages) == [Status.SENT, Status.BLOCKED, Status.SENT]
    assert Message.objects.get(pk=messages[1].pk).reason == Reason.OPTED_OUT
    assert sorted(m.to[0] for m in mailoutbox) == sorted([customers[0].email, customers[2].email])
