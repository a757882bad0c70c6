"""Delivering one message: claim it, ask the policy again, render, hand it to the backend.

Many workers may receive the same message id (a redelivered task, a sweeper's
second nudge); the claim is one atomic UPDATE from a pending status to "sending",
so exactly one of them goes on to send.
"""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from customers import consent
from customers.models import ConsentSource, Customer
from triggerhub.queueing import publish

from . import credits, policy, rendering, sms, unsubscribe
from .backends import sms as sms_backends
from .backends.sms.base import OutgoingSms
from .email_errors import classify_email_error
from .exceptions import DeliveryError, OutcomeUnknown, RecipientOptedOut
from .models import PENDING_STATUSES, Channel, Message, MessageEvent, Reason, Status
from .outbox import delivery_task

log = logging.getLogger(__name__)


def deliver(message_id: int) -> Status | None:
    """Send message ``message_id`` if it is due and nobody else is sending it.

    Returns the status it ended in, or None when there was nothing to do.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS)
    # A message held by a paused activity waits for outbox.release(), even when its
    # delivery task was already queued before the pause.
    claimed = Message.objects.filter(
        pk=message_id, status__in=PENDING_STATUSES, send_after__lte=now
    ).exclude(reason=Reason.ACTIVITY_PAUSED).update(
        status=Status.SENDING, attempts=F("attempts") + 1,
        lease_expires_at=now + lease, updated_at=now,
    )
    if not claimed:
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
    if decision.action == policy.Action.BLOCK:
        return record(message, Status.BLOCKED, reason=decision.reason, detail=decision.detail)
    if decision.action == policy.Action.DEFER:
        return record(
            message, Status.DEFERRED, reason=decision.reason, detail=decision.detail,
            send_after=decision.until,
        )
    try:
        if message.channel == Channel.EMAIL:
            provider_id = _send_email(message)
        else:
            provider_id = _send_sms(message)
    except DeliveryError as exc:
        return _after_failure(message, exc)
    return _record_sent(message, provider_id or "")


def _record_sent(message, provider_id: str) -> Status:
    """Record the hand-over; a provider report that overtook it (delivered) keeps its status."""
    with transaction.atomic():
        current = Message.objects.select_for_update().values_list("status", flat=True).get(pk=message.pk)
        if current in (Status.SENDING, Status.UNKNOWN):
            return record(message, Status.SENT, provider_message_id=provider_id)
        message.provider_message_id, message.status = provider_id, current
        message.lease_expires_at = None
        message.save()
        MessageEvent.objects.create(message=message, status=Status.SENT, detail="recorded after a later report")
        return current


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


def _send_email(message) -> str:
    email = EmailMultiAlternatives(
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
