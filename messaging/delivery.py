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
from django.db.models import F
from django.utils import timezone

from customers import consent
from customers.models import ConsentSource
from triggerhub.queueing import publish

from . import policy, rendering, sms
from .backends import sms as sms_backends
from .backends.sms.base import OutgoingSms
from .email_errors import classify_email_error
from .exceptions import DeliveryError, RecipientOptedOut
from .models import PENDING_STATUSES, Channel, Message, MessageEvent, Reason, Status
from .outbox import delivery_task

log = logging.getLogger(__name__)


def deliver(message_id: int) -> Status | None:
    """Send message ``message_id`` if it is due and nobody else is sending it.

    Returns the status it ended in, or None when there was nothing to do.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS)
    claimed = Message.objects.filter(
        pk=message_id, status__in=PENDING_STATUSES, send_after__lte=now
    ).update(
        status=Status.SENDING, attempts=F("attempts") + 1,
        lease_expires_at=now + lease, updated_at=now,
    )
    if not claimed:
        return None
    message = Message.objects.select_related("customer", "email_template", "sms_content").get(
        pk=message_id
    )
    decision = policy.decide(message.customer, message.channel, message.category, now)
    if decision.action == policy.Action.BLOCK:
        return record(message, Status.BLOCKED, reason=decision.reason)
    if decision.action == policy.Action.DEFER:
        return record(message, Status.DEFERRED, reason=decision.reason, send_after=decision.until)

    values = {"customer": rendering.customer_context(message.customer), **message.context}
    try:
        if message.channel == Channel.EMAIL:
            provider_id = _send_email(message, values)
        else:
            provider_id = _send_sms(message, values)
    except sms.TooLong as exc:
        return record(message, Status.BLOCKED, reason=Reason.TOO_LONG, detail=str(exc))
    except DeliveryError as exc:
        return _after_failure(message, exc)
    return record(
        message, Status.SENT,
        provider_message_id=provider_id or "", sent_at=timezone.now(), lease_expires_at=None,
    )


def _send_email(message, values) -> str:
    template = message.email_template
    subject, body_text, body_html = rendering.render_email(template, values)
    message.to_address = message.customer.email
    message.subject, message.body_text, message.body_html = subject, body_text, body_html
    email = EmailMultiAlternatives(
        subject=subject,
        body=body_text,
        from_email=template.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[message.to_address],
        headers={"X-TriggerHub-Message": str(message.pk)},
    )
    email.attach_alternative(body_html, "text/html")
    try:
        email.send()
    except Exception as exc:
        raise classify_email_error(exc) from exc
    # anymail reports the ESP's id; plain Django backends have none.
    status = getattr(email, "anymail_status", None)
    return (status.message_id or "") if status is not None else ""


def _send_sms(message, values) -> str:
    body = rendering.render_sms(message.sms_content, values)
    message.body_text = body  # kept as rendered if the policy refuses it
    body = message.body_text = sms.apply_long_policy(body, settings.TRIGGERHUB_SMS_LONG_POLICY)
    message.to_address = message.customer.phone
    result = sms_backends.get_backend().send(
        OutgoingSms(to=message.to_address, body=body, message_id=message.pk)
    )
    return result.provider_message_id


def _after_failure(message, exc: DeliveryError) -> Status:
    detail = f"{exc.code}: {exc}" if exc.code else str(exc)
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
