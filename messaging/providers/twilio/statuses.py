"""Twilio's words in ours: its message statuses, and what its error codes mean.

Error codes are Twilio's (https://www.twilio.com/docs/api/errors). A code in
``TRANSIENT_CODES`` says "later, not never"; a permanent code we know has a hint in
``PERMANENT_HINTS`` that tells the operator what to do about it.
"""

from ...models import Status

#: Twilio's MessageStatus values. Twilio holding the message (accepted, scheduled,
#: queued, sending) is our "sent": handed to the provider.
STATUSES = {
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

TRANSIENT_CODES = {
    20429: "Twilio is rate limiting the account",
    20500: "Twilio had an internal error",
    20503: "Twilio's service is unavailable",
    30001: "the sender's queue at Twilio overflowed",
}
#: The recipient replied STOP: the carrier refuses every SMS from the sender until START.
OPTED_OUT_CODE = 21610
# What the operator can do about the permanent ones we know.
PERMANENT_HINTS = {
    21211: "the customer's phone number is not a valid 'To' number; correct it on the customer",
    21408: "SMS to this country is not enabled; allow it in Twilio's Messaging geo permissions",
    21610: "the recipient replied STOP; they must text START to the sender to receive SMS again",
    21614: "the customer's number is not a mobile number and cannot receive SMS",
}


def status_of(message_status: str) -> Status | None:
    """Twilio's MessageStatus (any case, spaces around) as our status; None for one we do not know."""
    return STATUSES.get((message_status or "").strip().lower())


def error_hint(code: int) -> str:
    """What to do about Twilio error ``code``: our hint, else where Twilio explains it."""
    return PERMANENT_HINTS.get(code, f"see https://www.twilio.com/docs/errors/{code}")


def describe(message_status: str, error_code: int | None) -> str:
    """A status report in words, as a message's detail: ``Twilio failed, error 21211: <hint>``."""
    detail = f"Twilio {message_status}"
    if error_code is not None:
        detail = f"{detail}, error {error_code}: {error_hint(error_code)}"
    return detail
