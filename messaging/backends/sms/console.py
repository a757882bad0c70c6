import sys
import uuid

from .base import BaseSmsBackend, OutgoingSms, SmsResult


class SmsBackend(BaseSmsBackend):
    """Prints each SMS to standard output: the development default."""

    def send(self, sms: OutgoingSms) -> SmsResult:
        provider_id = f"console-{uuid.uuid4().hex[:12]}"
        sys.stdout.write(f"--- SMS to {sms.to} (message {sms.message_id}, {provider_id}) ---\n{sms.body}\n---\n")
        sys.stdout.flush()
        return SmsResult(provider_id)
