"""What every SMS backend promises, as django-anymail's base backend does for e-mail.

A backend is a class with one obvious method, ``send``; what is particular to a
provider lives in its home (messaging/providers/), and ``TRIGGERHUB_SMS_BACKEND``
names the class. tests/messaging/test_sms_backend_contract.py holds every backend
to this.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core import checks

from ...models import Status


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164
    body: str
    message_id: int  # our Message id, for logs and status callbacks


@dataclass(frozen=True)
class SmsResult:
    provider_message_id: str


@dataclass(frozen=True)
class FoundSms:
    """An SMS as the provider holds it, in our words (what ``find`` answers)."""

    provider_message_id: str
    status: Status | None  # the provider's status in ours; None: one we do not know
    provider_status: str  # the provider's own word for it
    error_code: int | None = None
    created_at: datetime | None = None
    payload: dict = field(default_factory=dict)  # what to keep on the message's event


class BaseSmsBackend:
    """Sends one SMS.

    ``send`` returns an ``SmsResult`` whose ``provider_message_id`` is a non-empty
    string, different for every SMS (status reports find the message by it). When it
    cannot send, it raises one of ``messaging.exceptions``, never its client
    library's own error:

    * ``TransientDeliveryError``: nothing was sent and it may go through later (not
      configured yet, unreachable, rate limited, a 5xx);
    * ``PermanentDeliveryError`` (``RecipientOptedOut`` when the recipient opted out):
      the provider refused this SMS and will refuse it again;
    * ``OutcomeUnknown``: the request may have reached the provider and no answer
      came back; it may have been sent, so it must not be retried.

    A backend that can look a message up at the provider also has
    ``find(*, to, body, since, provider_message_id="") -> list[FoundSms]``.
    """

    #: The provider's name, as a person reads it in a message's history ("" for none).
    provider_name = ""

    def send(self, sms: OutgoingSms) -> SmsResult:
        raise NotImplementedError

    @classmethod
    def check_settings(cls) -> list[checks.CheckMessage]:
        """What ``manage.py check`` reports about this backend's settings (nothing to check here)."""
        return []
