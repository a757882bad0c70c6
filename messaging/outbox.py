"""The outbox: messages are rows first, and only then nudges on the broker.

``enqueue()`` writes the message in the caller's transaction and publishes its
delivery when that commits. ``sweep()`` (run by beat) publishes again whatever the
broker lost or never took, releases deferred messages whose time came, and marks
messages whose worker died mid-send as unknown.

An SMS is published as a task of its own (``deliver_sms``). E-mail is published as a
*drain* (``drain_email``): a task that delivers whatever e-mail is due, in batches,
until the queue is short. A burst of 20,000 e-mails is then a few dozen tasks, not
20,000, and one drain pending is enough: a flag in the cache says so, set by the
publisher (``request_email_drain``) and cleared by the drain as it starts. A message
committed while the flag is up is committed before that drain starts looking, so it
finds it.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router, transaction
from django.utils import timezone

from triggerhub.db import insert_or_get_existing
from triggerhub.queueing import after_commit, publish, publish_on_commit

from . import handovers, policy
from .models import PENDING_STATUSES, Channel, Message, MessageEvent, Reason, Status

log = logging.getLogger(__name__)

#: How long a drain may stay pending before another is published anyway: the flag
#: outlives a lost task by no more than this (and the sweeper republishes stale rows).
DRAIN_PENDING_SECONDS = 60


def delivery_task(channel):
    from . import tasks  # tasks import the delivery code, which imports this module

    return tasks.deliver_email if channel == Channel.EMAIL else tasks.deliver_sms


def publish_delivery_on_commit(channel, message_id: int) -> None:
    """Once the caller commits, publish the delivery of queued message ``message_id``."""
    if channel == Channel.EMAIL:
        after_commit(request_email_drain)
    else:
        publish_on_commit(delivery_task(channel), message_id)


def request_email_drain() -> bool:
    """Publish a drain of the due e-mail unless one is pending already; False if the broker refused it."""
    try:
        if not cache.add(_drain_pending_key(), True, timeout=DRAIN_PENDING_SECONDS):
            return True
    except Exception as exc:  # the cache is down: a drain too many costs one empty search
        log.warning("drain flag unreadable (%s); publishing a drain anyway", exc)
    if publish_email_drain():
        return True
    _forget_pending_drain()  # none is coming: the next message must publish one
    return False


def publish_email_drain() -> bool:
    """Publish a drain of the due e-mail now, pending or not (a drain's helper, the sweeper)."""
    from . import tasks

    return publish(tasks.drain_email)


def email_drain_started() -> None:
    """Called by a drain before it looks for due e-mail: messages committed from now on publish another."""
    _forget_pending_drain()


def _forget_pending_drain() -> None:
    try:
        cache.delete(_drain_pending_key())
    except Exception as exc:
        log.warning("drain flag not cleared (%s); it expires in %ss", exc, DRAIN_PENDING_SECONDS)


def _drain_pending_key() -> str:
    # Per database: two sites (or test runs) sharing one Redis must not silence each other.
    database = connections[router.db_for_write(Message)].settings_dict["NAME"]
    return f"triggerhub:email-drain-pending:{database}"


def enqueue(
    *,
    customer,
    channel: Channel,
    content,
    category,
    source: str,
    dedupe_key: str,
    send_after: datetime | None = None,
    expires_at: datetime | None = None,
    context: dict | None = None,
    rules: dict | None = None,
    now: datetime | None = None,
) -> Message:
    """Write a message for ``customer`` and publish its delivery once the caller commits.

    ``content`` is an ``EmailTemplate`` for e-mail, an ``SmsContent`` for SMS. A
    repeated ``dedupe_key`` returns the message written the first time. The send
    policy is asked now: a message it blocks is kept with its reason, never sent;
    one it defers waits for its moment. ``rules`` are the sender's overrides of the
    site's send rules (see ``policy.SendRules.problems_in``); past ``expires_at`` a
    message still waiting is blocked rather than sent late. ``now`` is the moment the
    policy decides at: the clock's, unless the caller runs at another (a dry run).
    """
    now = now or timezone.now()
    send_after = max(send_after or now, now)
    message = Message(
        customer=customer,
        channel=channel,
        category=category,
        email_template=content if channel == Channel.EMAIL else None,
        sms_content=content if channel == Channel.SMS else None,
        context=context or {},
        source=source,
        dedupe_key=dedupe_key,
        send_after=send_after,
        expires_at=expires_at,
        rules=rules or {},
        status=Status.QUEUED if send_after <= now else Status.SCHEDULED,
    )
    decision = policy.decide(customer, channel, category, send_after, rules=rules, expires_at=expires_at)
    if decision.action == policy.Action.BLOCK:
        message.status, message.reason, message.detail = Status.BLOCKED, decision.reason, decision.detail
    elif decision.action == policy.Action.DEFER:
        assert decision.until is not None  # Decision.defer always says until when
        message.status, message.reason, message.detail, message.send_after = (
            Status.DEFERRED,
            decision.reason,
            decision.detail,
            decision.until,
        )
    message, created = insert_or_get_existing(message, dedupe_key=dedupe_key)
    if not created:
        return message
    MessageEvent.objects.create(message=message, status=message.status, reason=message.reason, detail=message.detail)
    if message.status == Status.QUEUED:
        publish_delivery_on_commit(channel, message.pk)
    return message


def sweep(*, stale_after: timedelta, now: datetime | None = None, limit: int = 1000) -> dict:
    """One pass of the clock over the outbox. Safe to run twice at once."""
    now = now or timezone.now()
    return {
        **expire_leases(now=now),
        "released": _publish_pending(
            # Held for credits or a paused activity: released by credits.add() or release(),
            # not by the clock.
            Message.objects.filter(status__in=(Status.SCHEDULED, Status.DEFERRED), send_after__lte=now).exclude(
                reason__in=(Reason.NO_CREDITS, Reason.ACTIVITY_PAUSED)
            ),
            now=now,
            limit=limit,
        ),
        "republished": _publish_pending(
            Message.objects.filter(status=Status.QUEUED, send_after__lte=now, updated_at__lt=now - stale_after),
            now=now,
            limit=limit,
        ),
    }


def _publish_pending(queryset, *, now, limit) -> int:
    """Mark due messages queued as of ``now`` and publish their delivery.

    The rows are claimed with SKIP LOCKED where the database has it, so two sweepers
    at once publish each message once; a twin publish would be harmless anyway
    (delivery claims the row before sending).
    """
    with transaction.atomic():
        due = list(
            queryset.select_for_update(skip_locked=True).order_by("send_after").values_list("pk", "channel")[:limit]
        )
        Message.objects.filter(pk__in=[pk for pk, _ in due]).update(status=Status.QUEUED, updated_at=now)
    published = sum(publish(delivery_task(channel), pk) for pk, channel in due if channel != Channel.EMAIL)
    emails = sum(channel == Channel.EMAIL for _, channel in due)
    return published + (emails if emails and publish_email_drain() else 0)


def expire_leases(*, now) -> dict[str, int]:
    """Settle the messages whose worker died mid-send: how many were taken, unknown, returned.

    A batch of e-mail is settled by its hand-over (``handovers.settle_abandoned``): the
    ones the provider took are sent, the one under way is unknown, the rest go back to
    the queue. A message left in "sending" past its lease outside any live hand-over:

    * claimed by a batch whose hand-over is gone (a database restart emptied the
      unlogged table): it may have left, so unknown;
    * otherwise (an SMS, an e-mail sent on its own) it was handed over if its
      ``sent_at`` was committed (written just before the send): unknown, never resent
      blindly. Without it, it never left: queued again, up to TRIGGERHUB_MAX_SEND_ATTEMPTS
      claims, then failed.
    """
    settled = handovers.settle_abandoned(now=now)
    with transaction.atomic():
        expired = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Status.SENDING, lease_expires_at__lt=now)
            .exclude(handover_id__in=handovers.live_ids())
            .values_list("pk", "sent_at", "attempts", "handover_id")
        )
        maybe_sent = [pk for pk, sent_at, _, handover in expired if sent_at is not None or handover is not None]
        never_left = [
            pk
            for pk, sent_at, attempts, handover in expired
            if sent_at is None and handover is None and attempts < settings.TRIGGERHUB_MAX_SEND_ATTEMPTS
        ]
        given_up = [pk for pk, *_ in expired if pk not in never_left and pk not in maybe_sent]
        _move(maybe_sent, Status.UNKNOWN, Reason.LEASE_EXPIRED, now=now)
        _move(given_up, Status.FAILED, Reason.LEASE_EXPIRED, now=now)
        handovers.return_to_queue(never_left, now=now)
    returned = settled["returned"] + never_left
    _publish_returned(returned)
    unknown = settled["unknown"] + maybe_sent
    if unknown:
        log.warning("%d message(s) lost their worker mid-send and are now unknown", len(unknown))
    return {"taken": len(settled["taken"]), "unknown": len(unknown), "returned": len(returned)}


def _move(pks, status, reason, *, now) -> None:
    Message.objects.filter(pk__in=pks).update(
        status=status,
        reason=reason,
        detail="",
        lease_expires_at=None,
        updated_at=now,
    )
    _log_events(pks, status, reason)


def _publish_returned(pks) -> None:
    """Publish the delivery of messages put back in the queue: one drain for the e-mails."""
    channels = dict(Message.objects.filter(pk__in=pks).values_list("pk", "channel"))
    for pk, channel in channels.items():
        if channel != Channel.EMAIL:
            publish(delivery_task(channel), pk)
    if Channel.EMAIL in channels.values():
        publish_email_drain()


def hold(*, source_prefix: str) -> int:
    """Hold the unsent messages whose source starts with ``source_prefix`` (a paused activity)."""
    now = timezone.now()
    with transaction.atomic():
        pending = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(source__startswith=source_prefix, status__in=PENDING_STATUSES)
            .values_list("pk", flat=True)
        )
        Message.objects.filter(pk__in=pending).update(
            status=Status.DEFERRED, reason=Reason.ACTIVITY_PAUSED, updated_at=now
        )
        _log_events(pending, Status.DEFERRED, Reason.ACTIVITY_PAUSED)
    return len(pending)


def release(*, source_prefix: str) -> int:
    """Let held messages of ``source_prefix`` go: each is decided again when delivered."""
    now = timezone.now()
    with transaction.atomic():
        held = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(source__startswith=source_prefix, status=Status.DEFERRED, reason=Reason.ACTIVITY_PAUSED)
            .values_list("pk", "channel", "send_after")
        )
        for pk, channel, send_after in held:
            due = send_after <= now
            Message.objects.filter(pk=pk).update(
                status=Status.QUEUED if due else Status.SCHEDULED, reason="", updated_at=now
            )
            if due:
                publish_delivery_on_commit(channel, pk)
        _log_events([pk for pk, _, _ in held], Status.QUEUED, "")
    return len(held)


def cancel(*, source_prefix: str, reason=Reason.ENROLLMENT_ENDED) -> int:
    """Block the unsent messages of ``source_prefix`` for good (their enrollment ended)."""
    now = timezone.now()
    with transaction.atomic():
        pending = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(source__startswith=source_prefix, status__in=PENDING_STATUSES)
            .values_list("pk", flat=True)
        )
        Message.objects.filter(pk__in=pending).update(status=Status.BLOCKED, reason=reason, updated_at=now)
        _log_events(pending, Status.BLOCKED, reason)
    return len(pending)


def _log_events(pks, status, reason) -> None:
    MessageEvent.objects.bulk_create(MessageEvent(message_id=pk, status=status, reason=reason) for pk in pks)
