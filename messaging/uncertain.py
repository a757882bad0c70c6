"""What ops can do about a message whose outcome is unknown: check it, resend it, or close it.

A message is *unknown* (``Status.UNKNOWN``) when its request may have reached the
provider and no answer came back (reason "no answer"), or when its worker died while
sending it (reason "lease expired"). Delivery never retries it by itself: a retry
could reach the customer twice. A person decides instead, with these three:

* ``check()`` asks the provider whether it has the message, through the SMS backend's
  ``find`` (by the provider's id where we have one, else by recipient, text and time).
  Found, the message moves to what the provider says, through status.py's
  forward-only update; not found, it stays unknown and the check is recorded. Other
  backends cannot be asked: their ESP's activity log can.
* ``resend()`` queues it again (same row, due now, attempts keep counting): ops accept
  that the customer may get it twice. The send policy decides again when it goes.
* ``close()`` ends it as sent, or as not sent (failed, reason "closed by staff").

Each acts only on a message that is still unknown, through one conditional UPDATE, so
two people acting at once cannot both win: the second gets ``NoLongerUnknown``. Each
records an event naming who acted.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import credits, outbox, status
from .backends import sms as sms_backends
from .backends.sms.base import FoundSms
from .exceptions import TransientDeliveryError
from .models import Channel, Message, MessageEvent, Reason, Status

#: How far before the send a provider's clock may put the message it took: clock skew
#: between us and the provider, beyond the send's own duration (see ``_sent_since``).
CLOCK_SKEW = timedelta(minutes=5)


class UncertainActionRefused(Exception):
    """The action cannot be done on this message; the text says why and what to do instead."""


class NoLongerUnknown(UncertainActionRefused):
    """The message left "unknown" before the action took effect (a report, or someone else acted)."""

    def __init__(self, message: Message):
        message.refresh_from_db(fields=["status"])
        super().__init__(
            f"Message {message.pk} is no longer unknown (it is {message.get_status_display().lower()} now): "
            "someone else acted on it, or the provider reported it. Nothing was done."
        )


class CannotCheck(UncertainActionRefused):
    """The message's provider cannot be asked from here."""


class ProviderUnreachable(UncertainActionRefused):
    """The provider could not be asked now; nothing was changed."""


@dataclass(frozen=True)
class CheckOutcome:
    found: bool
    status: Status  # the message's status after the check
    provider_message_id: str
    summary: str  # what the check found, as recorded on the message's event


def check(message: Message, *, by) -> CheckOutcome:
    """Ask the provider whether it has ``message``; move it to what the provider says if so.

    Raises ``CannotCheck`` for a channel or backend that cannot be asked,
    ``ProviderUnreachable`` when the provider does not answer (nothing changes), and
    ``NoLongerUnknown`` when the message is not unknown (any more).
    """
    _refuse_unless_unknown(message)
    backend = _checkable_backend(message)
    asked_at = timezone.now()
    try:
        found = backend.find(
            to=message.to_address,
            body=message.body_text,
            since=_sent_since(message),
            provider_message_id=message.provider_message_id,
        )
    except TransientDeliveryError as exc:
        raise ProviderUnreachable(f"Message {message.pk} could not be checked: {exc} Nothing was changed.") from exc
    taken = set(
        Message.objects.filter(provider_message_id__in=[sms.provider_message_id for sms in found])
        .exclude(pk=message.pk)
        .values_list("provider_message_id", flat=True)
    )
    match = next((sms for sms in found if sms.provider_message_id not in taken), None)
    with transaction.atomic():
        _hold_while_unknown(message)
        if match is None:
            summary = f"Not found at {backend.provider_name} as of {_when(asked_at)}, checked by {_name(by)}."
            _record(message, Status.UNKNOWN, message.reason, summary, by=by, action="check")
            return CheckOutcome(False, Status.UNKNOWN, message.provider_message_id, summary)
        return _confirm_found(message, match, provider=backend.provider_name, by=by)


def resend(message: Message, *, by) -> Message:
    """Queue ``message`` again, due now: ops accept that the customer may receive it twice."""
    now = timezone.now()
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
            status=Status.QUEUED,
            reason="",
            detail="",
            send_after=now,
            lease_expires_at=None,
            provider_message_id="",
            sent_at=None,
            updated_at=now,
        )
        if not moved:
            raise NoLongerUnknown(message)
        detail = f"Resent by {_name(by)}, who accepted the risk that the customer receives it twice."
        # What the uncertain attempt was charged comes back: the resend is paid for when it goes.
        credits.refund(message, note=f"message {message.pk} resent by {_name(by)}")
        _record(
            message,
            Status.QUEUED,
            "",
            detail,
            by=by,
            action="resend",
            previous_provider_message_id=message.provider_message_id,
        )
        outbox.publish_delivery_on_commit(message.channel, message.pk)
    message.refresh_from_db()
    return message


def close(message: Message, *, by, sent: bool) -> Message:
    """End ``message``: as sent (``sent``), or as failed and never to be sent (reason "closed by staff")."""
    with transaction.atomic():
        if sent:
            _hold_while_unknown(message)
            detail = f"Closed as sent by {_name(by)}."
            status.apply_provider_status(
                message=message,
                status=Status.SENT,
                detail=detail,
                payload={"by": _name(by), "action": "close as sent"},
            )
            _charge_if_refunded(message)
        else:
            detail = f"Closed as not sent by {_name(by)}: it will not be sent."
            moved = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
                status=Status.FAILED,
                reason=Reason.CLOSED_BY_STAFF,
                detail=detail,
                sent_at=None,
                updated_at=timezone.now(),
            )
            if not moved:
                raise NoLongerUnknown(message)
            credits.refund(message, note=f"message {message.pk} closed as not sent by {_name(by)}")
            _record(message, Status.FAILED, Reason.CLOSED_BY_STAFF, detail, by=by, action="close as not sent")
    message.refresh_from_db()
    return message


def _refuse_unless_unknown(message: Message) -> None:
    if message.status != Status.UNKNOWN:
        raise NoLongerUnknown(message)


def _hold_while_unknown(message: Message) -> None:
    """Lock ``message``'s row for this transaction if it is still unknown, else refuse.

    A write of the status onto itself: a resend or close racing this transaction waits
    for it, then finds the message no longer unknown.
    """
    if not Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(status=Status.UNKNOWN):
        raise NoLongerUnknown(message)


def _checkable_backend(message: Message):
    """The SMS backend that can ``find`` ``message``, or ``CannotCheck`` saying where to look instead."""
    if message.channel == Channel.EMAIL:
        raise CannotCheck(
            f"E-mail {message.pk} cannot be checked automatically: look for it in your ESP's activity "
            f"log (to {message.to_address or 'its customer'}), then resend or close it."
        )
    backend = sms_backends.get_backend()
    if getattr(backend, "find", None) is None:
        raise CannotCheck(
            f"SMS {message.pk} cannot be checked automatically with {settings.TRIGGERHUB_SMS_BACKEND}: "
            "look for it in your SMS provider's logs, then resend or close it."
        )
    return backend


def _sent_since(message: Message):
    """The earliest moment the provider may have taken ``message``.

    An approved send records ``sent_at`` just before the request (kept when the worker
    died). Without it (the request went unanswered, "no answer"), the message turned
    unknown at ``updated_at``, within one lease of the request.
    """
    if message.sent_at is not None:
        return message.sent_at - CLOCK_SKEW
    return message.updated_at - timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS) - CLOCK_SKEW


def _confirm_found(message: Message, found: FoundSms, *, provider: str, by) -> CheckOutcome:
    moved_to = found.status or Status.SENT  # the provider has it: handed over at least
    said = f"{provider} {found.provider_status}" + (f", error {found.error_code}" if found.error_code else "")
    summary = f"Found at {provider} ({found.provider_message_id}, {said}): confirmed by the check of {_name(by)}."
    Message.objects.filter(pk=message.pk).update(provider_message_id=found.provider_message_id)
    status.apply_provider_status(
        message=message,
        status=moved_to,
        reason=Reason.PROVIDER_REJECTED if moved_to == Status.FAILED else "",
        detail=summary,
        payload={"by": _name(by), "action": "check", **found.payload},
    )
    _charge_if_refunded(message)
    message.refresh_from_db()
    return CheckOutcome(True, Status(message.status), found.provider_message_id, summary)


def _charge_if_refunded(message: Message) -> None:
    """Charge an SMS found sent again, if its unanswered attempt was refunded."""
    if message.channel != Channel.SMS or not settings.TRIGGERHUB_SMS_CREDITS_ENFORCED:
        return
    charged = -sum(message.credit_entries.values_list("amount", flat=True))
    if charged <= 0:
        credits.debit(message, message.parts)  # with too short a balance, it stays uncharged


def _record(message: Message, to_status, reason, detail: str, *, by, action: str, **payload) -> None:
    MessageEvent.objects.create(
        message=message,
        status=to_status,
        reason=reason,
        detail=detail,
        payload={"by": _name(by), "action": action, **payload},
    )


def _name(user) -> str:
    return user.get_username()


def _when(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}"
