from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import outbox
from messaging.delivery import deliver
from messaging.models import Category, Channel, Message, Reason, Status
from tests import factories

pytestmark = pytest.mark.django_db
STALE = timedelta(minutes=2)


def a_message(key="m", **fields):
    message = outbox.enqueue(
        customer=factories.customer(), channel=Channel.EMAIL,
        content=factories.email_template(slug=f"t-{key}"),
        category=Category.TRANSACTIONAL, source="test", dedupe_key=key,
    )
    Message.objects.filter(pk=message.pk).update(**fields)
    return message


def test_queued_messages_nobody_picked_up_are_published_again_once_stale():
    fresh = a_message("fresh")
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
        "deferred", "scheduled",
    }
    later.refresh_from_db()
    assert later.status == Status.SCHEDULED


def test_a_message_whose_worker_died_mid_send_becomes_unknown_and_is_not_resent(mailoutbox):
    now = timezone.now()
    message = a_message(
        "lost", status=Status.SENDING, lease_expires_at=now - timedelta(seconds=1), attempts=1
    )

    assert outbox.sweep(stale_after=STALE, now=now)["unknown"] == 1

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.UNKNOWN, Reason.LEASE_EXPIRED)
    assert message.events.last().status == Status.UNKNOWN
    assert deliver(message.pk) is None
    assert mailoutbox == []
