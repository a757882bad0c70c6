"""Delivering messages: claim, render, ask the policy again, hand over to the backend.

Many workers may receive the same message id (a redelivered task, a sweeper's
second nudge); the claim is one atomic UPDATE from a pending status to "sending",
so exactly one of them goes on to send.

E-mail goes in batches (``deliver_email_batch``): the task that claims its own message
also claims other due queued e-mails, up to TRIGGERHUB_DELIVERY_BATCH_SIZE, decides
them in one transaction, sends them over one connection and records them in one
write. The tasks of the messages it took then find nothing to claim.
"""

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from customers import consent
from customers.models import ConsentSource, Customer
from triggerhub.queueing import publish

from . import credits, policy, rendering, sms, suppressions, unsubscribe
from .backends import sms as sms_backends
from .backends.sms.base import OutgoingSms
from .email_errors import classify_email_error
from .exceptions import DeliveryError, OutcomeUnknown, RecipientOptedOut
from .models import PENDING_STATUSES, Channel, Message, MessageEvent, Reason, Status, Suppression
from .outbox import delivery_task

log = logging.getLogger(__name__)


def deliver(message_id: int) -> Status | None:
    """Send message ``message_id`` if it is due and nobody else is sending it.

    Returns the status it ended in, or None when there was nothing to do.
    """
    now = timezone.now()
    if not _claim(Message.objects.filter(pk=message_id), now):
        return None
    message = Message.objects.select_related("customer", "email_template", "sms_content").get(
        pk=message_id
    )
    values = rendering.values_for(
        message.customer, message.context, unsubscribe_url=unsubscribe.unsubscribe_url(message)
    )
    try:
        _render(message, values)
    except sms.TooLong as exc:
        return record(message, Status.BLOCKED, reason=Reason.TOO_LONG, detail=str(exc))

    decision = _approve(message, now)
    if decision.action != policy.Action.SEND:
        return _record_refusal(message, decision)
    try:
        if message.channel == Channel.EMAIL:
            provider_id = _send_email(message)
        else:
            provider_id = _send_sms(message)
    except DeliveryError as exc:
        return _after_failure(message, exc)
    return _record_sent([(message, provider_id or "")])[message.pk]


def deliver_email_batch(message_id: int) -> Status | None:
    """Send e-mail ``message_id`` and, in the same pass, other due queued e-mails.

    Up to TRIGGERHUB_DELIVERY_BATCH_SIZE messages, oldest first; each is decided,
    sent and recorded as ``deliver()`` would. A task whose own message another worker
    took still takes what is due: with one task per message in the queue, waiting for
    the task of the next unclaimed message would make batches run one after another.
    Returns the status ``message_id`` ended in, or None if another worker had it.
    """
    size = settings.TRIGGERHUB_DELIVERY_BATCH_SIZE
    if size <= 1:
        return deliver(message_id)
    now = timezone.now()
    global _found_nothing_due_at
    with transaction.atomic():
        own = [message_id] if _claim(Message.objects.filter(pk=message_id, channel=Channel.EMAIL), now) else []
        # Once the queue is drained, the remaining tasks of drained messages skip the
        # search: its scan grows with the rows claimed since the last vacuum.
        if not own and time.monotonic() - _found_nothing_due_at < NOTHING_DUE_MEMORY_SECONDS:
            return None
        others = _claim_due_emails(now, limit=size - len(own), besides=message_id)
    if len(own) + len(others) < size:
        _found_nothing_due_at = time.monotonic()
    if not own and not others:
        return None
    return _deliver_claimed_emails([*own, *others], now).get(message_id)


#: How long a drain that found the queue empty spares this process's next searches.
#: Only an optimisation: each message's own task still claims it.
NOTHING_DUE_MEMORY_SECONDS = 1.0
_found_nothing_due_at = float("-inf")


def _claimable(queryset, now):
    # A message held by a paused activity waits for outbox.release(), even when its
    # delivery task was already queued before the pause.
    return queryset.filter(status__in=PENDING_STATUSES, send_after__lte=now).exclude(
        reason=Reason.ACTIVITY_PAUSED
    )


def _claim(queryset, now) -> int:
    """Move the due pending messages of ``queryset`` to "sending"; how many it took."""
    lease = timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS)
    return _claimable(queryset, now).update(
        status=Status.SENDING, attempts=F("attempts") + 1,
        lease_expires_at=now + lease, updated_at=now,
    )


def _claim_due_emails(now, *, limit: int, besides: int) -> list[int]:
    """Claim up to ``limit`` other due queued e-mails, oldest first; their ids.

    On PostgreSQL the rows are locked with SKIP LOCKED, so workers draining at once
    take disjoint rows and the UPDATE finds every locked row still claimable. SQLite
    has no row locks, but its transactions begin IMMEDIATE (settings: ``transaction_mode``)
    and so hold its one write lock: nobody changes a row between this SELECT and the UPDATE.
    Call it inside a transaction.
    """
    due = _claimable(Message.objects.filter(channel=Channel.EMAIL, status=Status.QUEUED), now).exclude(
        pk=besides
    )
    pks = list(
        due.select_for_update(skip_locked=True).order_by("send_after", "pk").values_list("pk", flat=True)[:limit]
    )
    if pks:
        _claim(Message.objects.filter(pk__in=pks), now)
    return pks


def _deliver_claimed_emails(pks: list[int], now) -> dict[int, Status]:
    """Render, decide, send and record the claimed e-mails ``pks``; each one's final status.

    A message whose rendering raises is left in "sending", as ``deliver()`` leaves it
    when its task fails: the lease expires and ops see it as unknown.
    """
    messages = list(
        Message.objects.filter(pk__in=pks)
        .select_related("customer", "email_template")
        .prefetch_related("email_template__variants")
        .order_by("send_after", "pk")
    )
    rendered = []
    for message in messages:
        try:
            _render(message, rendering.values_for(
                message.customer, message.context, unsubscribe_url=unsubscribe.unsubscribe_url(message)
            ))
        except Exception:
            log.exception("message %s could not be rendered; left for the lease to expire", message.pk)
            continue
        rendered.append(message)

    decisions = _approve_emails(rendered, now)
    outcomes, sent = {}, []
    approved = []
    for message in rendered:
        if decisions[message.pk].action == policy.Action.SEND:
            approved.append(message)
        else:
            outcomes[message.pk] = _record_refusal(message, decisions[message.pk])
    if approved:
        connection = _open_email_connection()
        try:
            for message in approved:
                try:
                    sent.append((message, _send_email(message, connection=connection)))
                except DeliveryError as exc:
                    outcomes[message.pk] = _after_failure(message, exc)
        finally:
            _close_quietly(connection)
    outcomes.update(_record_sent(sent))
    return outcomes


def _open_email_connection():
    """One connection to the e-mail backend for a whole batch.

    If it cannot be opened now, each message's own send opens it again and reports
    its own error (retried or failed like any other).
    """
    connection = get_connection()
    try:
        connection.open()
    except Exception as exc:
        log.info("e-mail connection for a batch did not open (%s); each message tries on its own", exc)
    return connection


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception as exc:  # everything was handed over or recorded already
        log.info("closing the e-mail connection failed: %s", exc)


def _record_refusal(message, decision: policy.Decision) -> Status:
    if decision.action == policy.Action.BLOCK:
        return record(message, Status.BLOCKED, reason=decision.reason, detail=decision.detail)
    return record(
        message, Status.DEFERRED, reason=decision.reason, detail=decision.detail, send_after=decision.until,
    )


#: What delivery changes on a message it hands over.
_DELIVERED_FIELDS = (
    "status", "reason", "detail", "provider_message_id", "lease_expires_at", "to_address",
    "subject", "body_text", "body_html", "parts", "sent_at", "updated_at",
)


def _record_sent(sent: list[tuple[Message, str]]) -> dict[int, Status]:
    """Record the hand-overs (message, provider id) in one write; each message's status.

    A provider report that overtook a hand-over (delivered) keeps its status.
    """
    if not sent:
        return {}
    now = timezone.now()
    with transaction.atomic():
        current = dict(
            Message.objects.select_for_update().filter(pk__in=[message.pk for message, _ in sent])
            .order_by("pk").values_list("pk", "status")
        )
        events = []
        for message, provider_id in sent:
            message.provider_message_id, message.lease_expires_at, message.updated_at = provider_id, None, now
            if current[message.pk] in (Status.SENDING, Status.UNKNOWN):
                message.status, message.reason, message.detail = Status.SENT, "", ""
                events.append(MessageEvent(message=message, status=Status.SENT))
            else:
                message.status = current[message.pk]
                events.append(MessageEvent(message=message, status=Status.SENT, detail="recorded after a later report"))
        _save_delivered([message for message, _ in sent])
        MessageEvent.objects.bulk_create(events)
    return {message.pk: message.status for message, _ in sent}


def _save_delivered(messages) -> None:
    """Save ``_DELIVERED_FIELDS`` of ``messages``: one UPDATE each, sent as one batch.

    Not ``bulk_update()``: its CASE per field and row cost more to build than sending a
    whole batch, and psycopg pipelines ``executemany``.
    """
    db = connections[router.db_for_write(Message)]
    quote = db.ops.quote_name
    fields = [Message._meta.get_field(name) for name in _DELIVERED_FIELDS]
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(Message._meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in fields),
        quote(Message._meta.pk.column),
    )
    rows = [
        [field.get_db_prep_save(getattr(message, field.attname), db) for field in fields] + [message.pk]
        for message in messages
    ]
    with db.cursor() as cursor:
        cursor.executemany(sql, rows)


def _approve(message, now) -> policy.Decision:
    """Ask the policy at send time and, when it says send, take the slot before sending.

    The customer's row is locked while deciding so that two workers sending to the same
    customer cannot both take the last place under a frequency cap: the first marks its
    message handed over (``sent_at``, which caps count) before the second decides. SMS
    credits are debited in the same transaction.
    """
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=message.customer_id)
        decision = policy.decide(
            customer, message.channel, message.category, now,
            rules=message.rules, expires_at=message.expires_at,
            parts=message.parts or None, message_id=message.pk,
        )
        if decision.action != policy.Action.SEND:
            return decision
        if (
            message.channel == Channel.SMS
            and settings.TRIGGERHUB_SMS_CREDITS_ENFORCED
            and not credits.debit(message, message.parts)
        ):
            return policy.Decision.defer(now, Reason.NO_CREDITS, credits.shortfall(message.to_address, message.parts))
        message.customer = customer
        message.sent_at = now
        Message.objects.filter(pk=message.pk).update(sent_at=now)
    return decision


def _approve_emails(messages, now) -> dict[int, policy.Decision]:
    """``_approve()`` for a batch of e-mails: one transaction, its customers locked in pk order.

    Approved messages get ``sent_at`` before the next message of the same customer is
    decided, so a frequency cap counts them as it would across two workers.
    """
    decisions, taking = {}, []
    with transaction.atomic():
        locked = Customer.objects.select_for_update().filter(
            pk__in={message.customer_id for message in messages}
        ).order_by("pk")
        customers = {customer.pk: customer for customer in locked}
        suppressed = set(Suppression.objects.filter(
            channel=Channel.EMAIL,
            address__in=[suppressions.normalize_address(Channel.EMAIL, c.email) for c in customers.values() if c.email],
        ).values_list("address", flat=True))
        for message in messages:
            if any(taken.customer_id == message.customer_id for taken in taking):
                _mark_handed_over(taking, now)
                taking = []
            customer = customers[message.customer_id]
            decision = policy.decide(
                customer, message.channel, message.category, now,
                rules=message.rules, expires_at=message.expires_at, message_id=message.pk,
                suppressed=suppressed,
            )
            decisions[message.pk] = decision
            if decision.action == policy.Action.SEND:
                message.customer = customer
                message.sent_at = now
                taking.append(message)
        _mark_handed_over(taking, now)
    return decisions


def _mark_handed_over(messages, now) -> None:
    if messages:
        Message.objects.filter(pk__in=[message.pk for message in messages]).update(sent_at=now)


def _render(message, values) -> None:
    """Render ``message`` for its customer into its subject and bodies (and SMS parts)."""
    if message.channel == Channel.EMAIL:
        message.to_address = message.customer.email
        message.subject, message.body_text, message.body_html = rendering.render_email(
            message.email_template, values
        )
        return
    message.to_address = message.customer.phone
    message.body_text = rendering.render_sms(message.sms_content, values)  # kept if refused
    message.body_text = sms.apply_long_policy(message.body_text, settings.TRIGGERHUB_SMS_LONG_POLICY)
    message.parts = sms.segment(message.body_text).segments


def _send_email(message, *, connection=None) -> str:
    email = EmailMultiAlternatives(
        connection=connection,
        subject=message.subject,
        body=message.body_text,
        from_email=message.email_template.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[message.to_address],
        headers={"X-TriggerHub-Message": str(message.pk), **unsubscribe.list_unsubscribe_headers(message)},
    )
    # ESPs echo metadata (not headers) in their tracking events; anymail sends it, Django ignores it.
    email.metadata = {"triggerhub_message": str(message.pk)}
    email.attach_alternative(message.body_html, "text/html")
    try:
        email.send()
    except Exception as exc:
        raise classify_email_error(exc) from exc
    # anymail reports the ESP's id; plain Django backends have none.
    status = getattr(email, "anymail_status", None)
    return (status.message_id or "") if status is not None else ""


def _send_sms(message) -> str:
    result = sms_backends.get_backend().send(
        OutgoingSms(to=message.to_address, body=message.body_text, message_id=message.pk)
    )
    return result.provider_message_id


def _after_failure(message, exc: DeliveryError) -> Status:
    detail = f"{exc.code}: {exc}" if exc.code else str(exc)
    # Not handed over after all: caps stop counting it and what it cost comes back.
    message.sent_at = None
    if message.channel == Channel.SMS:
        credits.refund(message, note=detail)
    if isinstance(exc, OutcomeUnknown):
        return record(message, Status.UNKNOWN, reason=Reason.NO_ANSWER, detail=detail, payload=exc.payload)
    if exc.retryable and message.attempts < settings.TRIGGERHUB_MAX_SEND_ATTEMPTS:
        delay = retry_delay(message.attempts)
        log.info("message %s: transient error (%s), retry in %.0fs", message.pk, detail, delay)
        status = record(
            message, Status.QUEUED, reason=Reason.TRANSIENT_ERROR, detail=detail,
            send_after=timezone.now() + timedelta(seconds=delay), payload=exc.payload,
        )
        publish(delivery_task(message.channel), message.pk, countdown=delay)
        return status
    reason = Reason.TRANSIENT_ERROR if exc.retryable else Reason.PROVIDER_REJECTED
    if isinstance(exc, RecipientOptedOut):
        consent.revoke(
            message.customer, message.channel, ConsentSource.CARRIER,
            evidence=f"{detail} (message {message.pk})",
        )
    return record(message, Status.FAILED, reason=reason, detail=detail, payload=exc.payload)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter: up to base × 2^(attempts−1), capped at an hour."""
    base = settings.TRIGGERHUB_RETRY_BACKOFF_SECONDS
    ceiling = min(3600, base * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def record(message, status, *, reason="", detail="", payload=None, **fields) -> Status:
    """Move ``message`` to ``status``, saving what changed and a ``MessageEvent``."""
    message.status, message.reason, message.detail = status, reason, detail
    for name, value in fields.items():
        setattr(message, name, value)
    if status != Status.SENDING:
        message.lease_expires_at = None
    message.save()
    MessageEvent.objects.create(
        message=message, status=status, reason=reason, detail=detail, payload=payload or {}
    )
    return status
