"""Status back: what Twilio and the ESPs report about a message after it was handed over.

Every report is kept as a ``MessageEvent`` with the provider's raw payload. Whether it
also moves ``Message.status`` follows one rule, because callbacks arrive late, twice
and in any order: **a status only moves forward**, in this order::

    before the provider   <  sent  <  delivered  <  undelivered  <  failed  <  bounced
    (scheduled, queued, deferred,
     sending, unknown)

* A late ``sent`` after ``delivered`` is recorded and ignored.
* Failures outrank success. A receiving server may accept a message and bounce it
  later (an out-of-band bounce), so ``bounced`` after ``delivered`` wins, and a
  ``delivered`` after ``undelivered``/``failed``/``bounced`` never resurrects it.
  Among failures the more definite wins: ``bounced`` (the address is bad; it gets
  suppressed) over ``failed`` (the provider refused the message) over
  ``undelivered`` (it could not be got there this time; resend.py may try again).
* Reports that imply delivery count as ``delivered``: opened, clicked, a spam
  complaint (it reached the inbox), an auto-reply, a read receipt.
* Reports that say nothing about delivery are recorded and move nothing: the ESP's
  ``deferred`` (a soft bounce it keeps retrying; it ends in delivered or bounced),
  unsubscribed, subscribed, unknown. A provider never puts a message back into a
  pending status (queued, scheduled, deferred): delivery would send it a second time.
* A message we blocked ourselves never moves: no provider has seen it.

The move is one conditional UPDATE (``WHERE status IN <everything ranked lower>``),
so two callbacks racing for the same message cannot move it backwards.

Side effects of a report (the same report twice has them once): a hard bounce or a
complaint suppresses the address and revokes the customer's e-mail consent (source
bounce / complaint); Twilio error 21610 on a failed SMS (the recipient replied STOP)
revokes their SMS consent (source carrier); an ESP-reported unsubscribe revokes
e-mail consent (source unsubscribe); an e-mail moving to ``undelivered`` may
be sent again later (resend.py).
"""

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from customers import consent
from customers.models import ConsentAction, ConsentSource

from . import resend, suppressions
from .backends.sms.twilio import OPTED_OUT_CODE, PERMANENT_HINTS
from .models import Channel, Message, MessageEvent, Reason, Status, SuppressionReason

log = logging.getLogger(__name__)

#: Where a provider-reported status stands; a report moves a message only to a higher rank.
RANK = {
    Status.SENT: 1,
    Status.DELIVERED: 2,
    Status.UNDELIVERED: 3,
    Status.FAILED: 4,
    Status.BOUNCED: 5,
}
#: Statuses a message has before any provider knows of it: the bottom of the order.
BEFORE_PROVIDER = (Status.SCHEDULED, Status.QUEUED, Status.DEFERRED, Status.SENDING, Status.UNKNOWN)

#: Twilio's MessageStatus values. Twilio holding the message (accepted, scheduled,
#: queued, sending) is our "sent": handed to the provider.
TWILIO_STATUSES = {
    "accepted": Status.SENT,
    "scheduled": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}

#: anymail's normalized ``event_type`` values; None: a report with no bearing on delivery.
ANYMAIL_EVENT_TYPES = {
    "queued": Status.SENT,
    "sent": Status.SENT,
    "rejected": Status.FAILED,  # the ESP refuses the address or content: the same answer again
    "failed": Status.UNDELIVERED,  # the ESP took it and could not get it out
    "bounced": Status.BOUNCED,
    "deferred": Status.DEFERRED,  # recorded only: never moves a message (see RANK)
    "delivered": Status.DELIVERED,
    "autoresponded": Status.DELIVERED,
    "opened": Status.DELIVERED,
    "clicked": Status.DELIVERED,
    "complained": Status.DELIVERED,
    "unsubscribed": None,
    "subscribed": None,
    "unknown": None,
}


def lower_ranked(status) -> tuple:
    """The statuses a message may move from to reach ``status``; empty if it may not be reached."""
    if status not in RANK:
        return ()
    return BEFORE_PROVIDER + tuple(s for s, rank in RANK.items() if rank < RANK[status])


def apply_provider_status(
    *, message: Message, status: Status | None, reason="", detail: str = "",
    payload=None, at=None,
) -> bool:
    """Record a provider's report on ``message`` and move its status if the report is ahead.

    ``status`` None records a report that says nothing about delivery (the event
    carries the message's status as it stands). ``at`` is when the provider says it
    happened (default: now). Returns whether the message's status moved.
    """
    now = timezone.now()
    with transaction.atomic():
        moved = bool(status in RANK and Message.objects.filter(
            pk=message.pk, status__in=lower_ranked(status)
        ).update(status=status, reason=reason, detail=detail, updated_at=now))
        if moved:
            # A message whose worker died mid-send ("unknown") turns out handed over after
            # all: from now on it counts against the frequency caps.
            Message.objects.filter(pk=message.pk, sent_at__isnull=True).update(sent_at=at or now)
        message.refresh_from_db(fields=["status", "reason", "detail", "sent_at", "updated_at"])
        event = MessageEvent.objects.create(
            message=message, status=status or message.status, reason=reason, detail=detail,
            payload=_storable(payload),
        )
        if at is not None:
            MessageEvent.objects.filter(pk=event.pk).update(at=at)  # the field is auto_now_add
        if moved and status == Status.UNDELIVERED and message.channel == Channel.EMAIL:
            resend.resend_later(message)
    return moved


def twilio_status(message_status: str) -> Status | None:
    return TWILIO_STATUSES.get((message_status or "").strip().lower())


def anymail_status(event_type: str) -> Status | None:
    return ANYMAIL_EVENT_TYPES.get(event_type)


def record_twilio_callback(params) -> Message | None:
    """Apply one Twilio status callback (its POST parameters); None if the SID is not ours."""
    sid, reported = params.get("MessageSid", ""), params.get("MessageStatus", "")
    message = Message.objects.select_related("customer").filter(
        provider_message_id=sid, channel=Channel.SMS
    ).first() if sid else None
    if message is None:
        log.warning("Twilio status callback for unknown message %r (%s): ignored", sid, reported)
        return None
    status = twilio_status(reported)
    error_code = _int_or_none(params.get("ErrorCode"))
    detail = _twilio_detail(reported, error_code)
    reason = Reason.PROVIDER_REJECTED if status == Status.FAILED else ""
    with transaction.atomic():
        apply_provider_status(
            message=message, status=status, reason=reason, detail=detail,
            payload={name: params.get(name) for name in params},
        )
        if error_code == OPTED_OUT_CODE and status in (Status.FAILED, Status.UNDELIVERED):
            _revoke_once(message.customer, Channel.SMS, ConsentSource.CARRIER,
                         evidence=f"{detail} (message {message.pk}, {sid})")
    return message


def record_tracking_event(*, event, esp_name: str) -> Message | None:
    """Apply one anymail tracking event; None if it is not about a message of ours."""
    message = find_tracked_message(event)
    if message is None:
        log.warning(
            "%s %s event for unknown message %r (%s): ignored",
            esp_name, event.event_type, event.message_id, event.recipient,
        )
        return None
    status = anymail_status(event.event_type)
    if status == Status.BOUNCED and _is_soft_bounce(event, esp_name):
        status = Status.UNDELIVERED
    said = "; ".join(str(part) for part in (event.description, event.mta_response) if part)
    detail = f"{esp_name} {event.event_type}" + (f": {said}" if said else "")
    if event.event_type == "clicked" and event.click_url:
        detail = f"{detail} {event.click_url}"
    reason = Reason.PROVIDER_REJECTED if status == Status.FAILED else ""
    address = event.recipient or message.to_address
    with transaction.atomic():
        apply_provider_status(
            message=message, status=status, reason=reason, detail=detail,
            payload=event.esp_event, at=event.timestamp,
        )
        if status == Status.BOUNCED or event.event_type == "complained":
            _stop_sending(message, address, complaint=event.event_type == "complained", detail=detail)
        elif event.event_type == "unsubscribed" and _is_customers_address(message.customer, address):
            # The recipient used the ESP's unsubscribe (List-Unsubscribe or its footer link).
            _revoke_once(
                message.customer, Channel.EMAIL, ConsentSource.UNSUBSCRIBE,
                evidence=f"{detail} (message {message.pk}, {address})",
            )
    return message


def find_tracked_message(event) -> Message | None:
    """The message an ESP event is about: by the ESP's message id, else by our own id.

    Our id travels as anymail metadata ``triggerhub_message`` (or the
    ``X-TriggerHub-Message`` header, where an ESP echoes headers as metadata).
    """
    messages = Message.objects.select_related("customer").filter(channel=Channel.EMAIL)
    if event.message_id:
        found = messages.filter(provider_message_id=event.message_id).first()
        if found is not None:
            return found
    metadata = event.metadata or {}
    ours = metadata.get("triggerhub_message") or metadata.get("X-TriggerHub-Message")
    pk = _int_or_none(ours)
    return messages.filter(pk=pk).first() if pk is not None else None


def _stop_sending(message, address, *, complaint: bool, detail: str) -> None:
    suppressions.suppress(
        channel=Channel.EMAIL, address=address,
        reason=SuppressionReason.COMPLAINT if complaint else SuppressionReason.BOUNCE,
        detail=detail, message=message,
    )
    customer = message.customer
    # The customer may have changed address since: their new one did not bounce.
    if _is_customers_address(customer, address):
        _revoke_once(
            customer, Channel.EMAIL,
            ConsentSource.COMPLAINT if complaint else ConsentSource.BOUNCE,
            evidence=f"{detail} (message {message.pk}, {address})",
        )


def _is_customers_address(customer, address) -> bool:
    normalize = suppressions.normalize_address
    return normalize(Channel.EMAIL, customer.email) == normalize(Channel.EMAIL, address)


def _revoke_once(customer, channel, source, *, evidence: str) -> None:
    """Revoke unless the ledger already says revoked: a repeated report adds nothing."""
    if customer.consent_state(channel) != ConsentAction.REVOKED:
        consent.revoke(customer, channel, source, evidence=evidence)


def _is_soft_bounce(event, esp_name: str) -> bool:
    # Postmark reports a soft bounce (mailbox full, ...) once it has stopped retrying,
    # and anymail normalizes it to "bounced": the address is not bad, so no suppression.
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    return esp_name == "Postmark" and esp_event.get("Type") == "SoftBounce"


def _twilio_detail(reported: str, error_code: int | None) -> str:
    detail = f"Twilio {reported}"
    if error_code is not None:
        hint = PERMANENT_HINTS.get(error_code, f"see https://www.twilio.com/docs/errors/{error_code}")
        detail = f"{detail}, error {error_code}: {hint}"
    return detail


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _storable(payload) -> dict:
    """The provider's payload as the JSON object the event keeps (the raw text if it is not one)."""
    if payload is None:
        return {}
    try:
        stored = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return {"raw": str(payload)}
    return stored if isinstance(stored, dict) else {"raw": stored}
