from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164
    body: str
    message_id: int  # our Message id, for logs and status callbacks


@dataclass(frozen=True)
class SmsResult:
    provider_message_id: str


class BaseSmsBackend:
    """Sends one SMS. Raise ``TransientDeliveryError`` or ``PermanentDeliveryError`` on failure."""

    def send(self, sms: OutgoingSms) -> SmsResult:
        raise NotImplementedError
