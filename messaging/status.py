"""Status back: what a provider reports about a message after it was handed over.

Each provider's home (messaging/providers/) authenticates its reports and turns them
into a ``StatusReport``, in our words; ``apply_report`` applies one. Nothing here
knows a provider. Every report is kept as a ``MessageEvent`` with the provider's raw payload. Whether it
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
bounce / complaint); an SMS the carrier refused because the recipient opted out (they
replied STOP) revokes their SMS consent (source carrier); an ESP-reported unsubscribe
revokes e-mail consent (source unsubscribe); an e-mail moving to ``undelivered`` may
be sent again later (resend.py).
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import TextChoices
from django.utils import timezone

from customers import consent
from customers.models import ConsentAction, ConsentSource

from . import resend, suppressions
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


class RecipientAction(TextChoices):
    """What the recipient told the provider or carrier, beyond delivery."""

    COMPLAINED = "complained", "marked it as spam"
    UNSUBSCRIBED = "unsubscribed", "unsubscribed or opted out at the provider or carrier"


@dataclass(frozen=True)
class StatusReport:
    """One provider's report about one message, normalised by the provider's home.

    The message is found by ``provider_message_id``, else by ``message_id`` (ours,
    where the provider echoes it back), among messages of ``channel``.
    """

    channel: Channel
    provider: str  # its name as people read it, for logs
    event: str  # the provider's own word for what happened ("delivered", "bounced")
    status: Status | None  # in our words; None: the report says nothing about delivery
    description: str  # the report in words, kept as the message's and the event's detail
    provider_message_id: str = ""
    message_id: int | None = None
    error_code: int | None = None
    recipient: str = ""  # the address or number the report is about, where the provider says
    recipient_action: RecipientAction | None = None
    occurred_at: datetime | None = None  # when the provider says it happened; None: now
    payload: Any = None  # the provider's report as it came, kept on the event


def lower_ranked(status) -> tuple:
    """The statuses a message may move from to reach ``status``; empty if it may not be reached."""
    if status not in RANK:
        return ()
    return BEFORE_PROVIDER + tuple(s for s, rank in RANK.items() if rank < RANK[status])


def apply_provider_status(
    *,
    message: Message,
    status: Status | None,
    reason="",
    detail: str = "",
    payload=None,
    at=None,
) -> bool:
    """Record a provider's report on ``message`` and move its status if the report is ahead.

    ``status`` None records a report that says nothing about delivery (the event
    carries the message's status as it stands). ``at`` is when the provider says it
    happened (default: now). Returns whether the message's status moved.
    """
    now = timezone.now()
    with transaction.atomic():
        moved = bool(
            status in RANK
            and Message.objects.filter(pk=message.pk, status__in=lower_ranked(status)).update(
                status=status, reason=reason, detail=detail, updated_at=now
            )
        )
        if moved:
            # A message whose worker died mid-send ("unknown") turns out handed over after
            # all: from now on it counts against the frequency caps.
            Message.objects.filter(pk=message.pk, sent_at__isnull=True).update(sent_at=at or now)
        message.refresh_from_db(fields=["status", "reason", "detail", "sent_at", "updated_at"])
        event = MessageEvent.objects.create(
            message=message,
            status=status or message.status,
            reason=reason,
            detail=detail,
            payload=_storable(payload),
        )
        if at is not None:
            MessageEvent.objects.filter(pk=event.pk).update(at=at)  # the field is auto_now_add
        if moved and status == Status.UNDELIVERED and message.channel == Channel.EMAIL:
            resend.resend_later(message)
    return moved


def apply_report(report: StatusReport) -> Message | None:
    """Apply one provider's report, with its side effects; None if the message is not ours."""
    message = find_reported_message(report)
    if message is None:
        log.warning(
            "%s %s report for unknown message %r (%s): ignored",
            report.provider,
            report.event,
            report.provider_message_id or report.message_id,
            report.recipient,
        )
        return None
    reason = Reason.PROVIDER_REJECTED if report.status == Status.FAILED else ""
    with transaction.atomic():
        apply_provider_status(
            message=message,
            status=report.status,
            reason=reason,
            detail=report.description,
            payload=report.payload,
            at=report.occurred_at,
        )
        if report.channel == Channel.SMS:
            _apply_sms_side_effects(message, report)
        else:
            _apply_email_side_effects(message, report)
    return message


def find_reported_message(report: StatusReport) -> Message | None:
    """The message a report is about: by the provider's message id, else by our own id."""
    messages = Message.objects.select_related("customer").filter(channel=report.channel)
    if report.provider_message_id:
        found = messages.filter(provider_message_id=report.provider_message_id).first()
        if found is not None:
            return found
    if report.message_id is not None:
        return messages.filter(pk=report.message_id).first()
    return None


def _apply_sms_side_effects(message: Message, report: StatusReport) -> None:
    refused = report.status in (Status.FAILED, Status.UNDELIVERED)
    if refused and report.recipient_action == RecipientAction.UNSUBSCRIBED:
        # The carrier refuses every SMS from the sender until the recipient texts START.
        _revoke_once(
            message.customer,
            Channel.SMS,
            ConsentSource.CARRIER,
            evidence=f"{report.description} (message {message.pk}, {report.provider_message_id})",
        )


def _apply_email_side_effects(message: Message, report: StatusReport) -> None:
    address = report.recipient or message.to_address
    complained = report.recipient_action == RecipientAction.COMPLAINED
    if report.status == Status.BOUNCED or complained:
        _stop_sending(message, address, complaint=complained, detail=report.description)
    elif report.recipient_action == RecipientAction.UNSUBSCRIBED and _is_customers_address(message.customer, address):
        # The recipient used the ESP's unsubscribe (List-Unsubscribe or its footer link).
        _revoke_once(
            message.customer,
            Channel.EMAIL,
            ConsentSource.UNSUBSCRIBE,
            evidence=f"{report.description} (message {message.pk}, {address})",
        )


def _stop_sending(message, address, *, complaint: bool, detail: str) -> None:
    suppressions.suppress(
        channel=Channel.EMAIL,
        address=address,
        reason=SuppressionReason.COMPLAINT if complaint else SuppressionReason.BOUNCE,
        detail=detail,
        message=message,
    )
    customer = message.customer
    # The customer may have changed address since: their new one did not bounce.
    if _is_customers_address(customer, address):
        _revoke_once(
            customer,
            Channel.EMAIL,
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


def _storable(payload) -> dict:
    """The provider's payload as the JSON object the event keeps (the raw text if it is not one)."""
    if payload is None:
        return {}
    try:
        stored = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return {"raw": str(payload)}
    return stored if isinstance(stored, dict) else {"raw": stored}
