from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from messaging import delivery, handovers, outbox
from messaging.backends.sms import locmem
from messaging.delivery import deliver
from messaging.models import Category, Channel, Handover, Message, Reason, Status, new_handover_id
from tests import factories

pytestmark = pytest.mark.django_db
STALE = timedelta(minutes=2)


def a_message(key="m", **fields):
    message = outbox.enqueue(
        customer=factories.customer(),
        channel=Channel.EMAIL,
        content=factories.email_template(slug=f"t-{key}"),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=key,
    )
    Message.objects.filter(pk=message.pk).update(**fields)
    return message


def test_queued_messages_nobody_picked_up_are_published_again_once_stale():
    a_message("fresh")
    stale = a_message("stale")
    now = timezone.now()
    Message.objects.filter(pk=stale.pk).update(updated_at=now - timedelta(minutes=5))

    result = outbox.sweep(stale_after=STALE, now=now)

    assert result["republished"] == 1
    stale.refresh_from_db()
    assert stale.updated_at == now  # touched, so the next sweep leaves it alone for a while
    assert outbox.sweep(stale_after=STALE, now=now)["republished"] == 0


def test_deferred_and_scheduled_messages_whose_time_came_are_released():
    now = timezone.now()
    a_message("deferred", status=Status.DEFERRED, send_after=now - timedelta(seconds=1))
    a_message("scheduled", status=Status.SCHEDULED, send_after=now - timedelta(seconds=1))
    later = a_message("later", status=Status.SCHEDULED, send_after=now + timedelta(hours=1))

    assert outbox.sweep(stale_after=STALE, now=now)["released"] == 2

    assert set(Message.objects.filter(status=Status.QUEUED).values_list("dedupe_key", flat=True)) == {
        "deferred",
        "scheduled",
    }
    later.refresh_from_db()
    assert later.status == Status.SCHEDULED


def test_a_message_whose_worker_died_after_committing_its_send_becomes_unknown_and_is_not_resent(mailoutbox):
    now = timezone.now()
    message = a_message(
        "lost",
        status=Status.SENDING,
        lease_expires_at=now - timedelta(seconds=1),
        attempts=1,
        sent_at=now - timedelta(minutes=6),  # written in a commit just before the send
    )

    assert outbox.sweep(stale_after=STALE, now=now)["unknown"] == 1

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.UNKNOWN, Reason.LEASE_EXPIRED)
    assert message.events.last().status == Status.UNKNOWN
    assert deliver(message.pk) is None
    assert mailoutbox == []


def test_a_message_whose_worker_died_before_handing_it_over_goes_back_to_the_queue_and_out_once(mailoutbox):
    now = timezone.now()
    message = a_message("claimed", status=Status.SENDING, lease_expires_at=now - timedelta(seconds=1), attempts=1)

    assert outbox.sweep(stale_after=STALE, now=now) | {"released": 0, "republished": 0} == {
        "taken": 0,
        "unknown": 0,
        "returned": 1,
        "released": 0,
        "republished": 0,
    }

    message.refresh_from_db()
    assert (message.status, message.sent_at) == (Status.QUEUED, None)
    assert message.attempts == 1  # the lost claim counts: a message that kills its worker each time stops
    assert deliver(message.pk) == Status.SENT
    assert len(mailoutbox) == 1


def test_a_message_claimed_again_and_again_by_dying_workers_fails_after_the_last_attempt(settings):
    settings.TRIGGERHUB_MAX_SEND_ATTEMPTS = 3
    now = timezone.now()
    message = a_message("cursed", status=Status.SENDING, lease_expires_at=now - timedelta(seconds=1), attempts=3)

    outbox.sweep(stale_after=STALE, now=now)

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.FAILED, Reason.LEASE_EXPIRED)


def test_a_dead_workers_batch_is_settled_by_how_far_it_got(mailoutbox):
    """Sent before the position, unknown at it, back in the queue after it."""
    now = timezone.now()
    handover = new_handover_id()
    batch = [a_message(f"batch:{n}", status=Status.SENDING, attempts=1, handover_id=handover) for n in range(5)]
    ids = [m.pk for m in batch]
    handovers.begin(handover, ids, now - timedelta(minutes=10))
    handovers.starting(handover, 2)  # the third message's request was under way
    Handover.objects.filter(pk=handover).update(lease_expires_at=now - timedelta(seconds=1))

    assert outbox.sweep(stale_after=STALE, now=now)["unknown"] == 1

    assert [Message.objects.get(pk=pk).status for pk in ids] == [
        Status.SENT,
        Status.SENT,
        Status.UNKNOWN,
        Status.QUEUED,
        Status.QUEUED,
    ]
    assert Message.objects.get(pk=ids[0]).detail == handovers.TAKEN
    assert not Handover.objects.exists()
    assert deliver(ids[3]) == Status.SENT and deliver(ids[4]) == Status.SENT
    assert deliver(ids[2]) is None  # unknown: never resent blindly
    assert len(mailoutbox) == 2


def test_a_live_batch_is_left_alone_though_its_messages_leases_have_passed():
    now = timezone.now()
    handover = new_handover_id()
    message = a_message(
        "slow",
        status=Status.SENDING,
        attempts=1,
        lease_expires_at=now - timedelta(seconds=1),
        handover_id=handover,
    )
    handovers.begin(handover, [message.pk], now)
    handovers.starting(handover, 0)  # renewed: the worker is still sending

    assert outbox.sweep(stale_after=STALE, now=now)["unknown"] == 0

    assert Message.objects.get(pk=message.pk).status == Status.SENDING


def test_a_worker_silent_past_its_lease_sends_no_more_of_a_batch_the_sweeper_settled(
    settings,
    monkeypatch,
    mailoutbox,
):
    """A worker paused longer than the lease is taken for dead; when it wakes, the rest of its
    batch belongs to the queue, and another drain sends it: once."""
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 4
    template = factories.email_template(slug="paused")
    batch = [
        outbox.enqueue(
            customer=factories.customer(),
            channel=Channel.EMAIL,
            content=template,
            category=Category.TRANSACTIONAL,
            source="test",
            dedupe_key=f"paused:{n}",
        )
        for n in range(4)
    ]
    hand_to_backend = delivery._hand_to_backend
    pauses = []

    def send_then_pause(email):
        provider_id = hand_to_backend(email)
        if not pauses:  # after the first send, the worker stalls past its lease
            pauses.append(email.to)
            later = timezone.now() + timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS + 1)
            outbox.expire_leases(now=later)
        return provider_id

    monkeypatch.setattr(delivery, "_hand_to_backend", send_then_pause)
    delivery.drain_emails()

    assert len(mailoutbox) == 1  # it stopped after the sweeper settled its batch
    statuses = [Message.objects.get(pk=m.pk).status for m in batch]
    assert statuses == [Status.SENT, Status.QUEUED, Status.QUEUED, Status.QUEUED]

    monkeypatch.setattr(delivery, "_hand_to_backend", hand_to_backend)
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS + 2)):
        delivery.drain_emails()
    assert sorted(m.to[0] for m in mailoutbox) == sorted(m.customer.email for m in batch)


def test_an_sms_whose_claim_the_sweeper_settled_before_its_send_is_not_sent_by_the_late_worker(monkeypatch, settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    customer = factories.customer(phone="+12125550100")
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="late-sms",
    )
    render = delivery._render

    def render_then_stall(message, values):
        render(message, values)
        outbox.expire_leases(now=timezone.now() + timedelta(hours=1))  # taken for dead meanwhile

    monkeypatch.setattr(delivery, "_render", render_then_stall)
    locmem.outbox.clear()

    assert deliver(message.pk) is None

    assert locmem.outbox == []
    message.refresh_from_db()
    assert (message.status, message.sent_at) == (Status.QUEUED, None)


def test_a_dead_batch_does_not_settle_a_message_another_batch_has_claimed_since(mailoutbox):
    """Retried after a 429 and claimed by batch B, it is B's: A's death changes nothing about it."""
    now = timezone.now()
    dead, alive = new_handover_id(), new_handover_id()
    retried = a_message("retried", status=Status.SENDING, attempts=2, handover_id=alive)
    handovers.begin(dead, [retried.pk], now - timedelta(minutes=10))
    handovers.starting(dead, 0)
    Handover.objects.filter(pk=dead).update(lease_expires_at=now - timedelta(seconds=1))
    handovers.begin(alive, [retried.pk], now)

    outbox.sweep(stale_after=STALE, now=now)

    assert Message.objects.get(pk=retried.pk).status == Status.SENDING
    assert not Handover.objects.filter(pk=dead).exists()


def test_a_batch_whose_hand_over_vanished_with_a_database_restart_is_unknown_not_resent(mailoutbox):
    now = timezone.now()
    message = a_message(
        "vanished",
        status=Status.SENDING,
        attempts=1,
        handover_id=new_handover_id(),
        lease_expires_at=now - timedelta(seconds=1),
    )  # its hand-over row is gone: the unlogged table was emptied by a crash

    assert outbox.sweep(stale_after=STALE, now=now)["unknown"] == 1

    assert Message.objects.get(pk=message.pk).status == Status.UNKNOWN
    assert mailoutbox == []


def test_a_late_worker_records_nothing_on_a_message_claimed_again_since():
    message = a_message("claimed-twice", status=Status.SENDING, attempts=1)
    stale = Message.objects.get(pk=message.pk)
    Message.objects.filter(pk=message.pk).update(attempts=2, to_address="b@example.com")  # another worker's claim
    stale.customer = message.customer

    assert delivery._record_sent([(stale, "esp-id-from-the-late-worker")]) == {message.pk: None}
    assert delivery.record(stale, Status.QUEUED, reason=Reason.TRANSIENT_ERROR) is None

    current = Message.objects.get(pk=message.pk)
    assert (current.status, current.provider_message_id, current.to_address) == (Status.SENDING, "", "b@example.com")
