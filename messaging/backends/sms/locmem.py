import uuid

from .base import BaseSmsBackend, OutgoingSms, SmsResult

#: Every SMS sent in this process, for tests.
outbox: list[OutgoingSms] = []


class SmsBackend(BaseSmsBackend):
    """Keeps each SMS in ``locmem.outbox``."""

    def send(self, sms: OutgoingSms) -> SmsResult:
        outbox.append(sms)
        return SmsResult(f"locmem-{uuid.uuid4().hex[:12]}")
