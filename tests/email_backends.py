"""Fakes of the outside world at its edge: e-mail backends that fail like a real ESP does."""

from anymail.exceptions import AnymailRecipientsRefused
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FlakyEmailBackend(LocmemBackend):
    """Refuses the connection for the first ``failures_left`` sends, then delivers to locmem.

    Refused, so nothing left: a retry is safe (a connection dropped mid-send would
    leave the message unknown instead; see test_email_outcomes.py)."""

    failures_left = 0

    def send_messages(self, messages):
        if FlakyEmailBackend.failures_left > 0:
            FlakyEmailBackend.failures_left -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        return super().send_messages(messages)


class RefusingEmailBackend(LocmemBackend):
    def send_messages(self, messages):
        raise AnymailRecipientsRefused("All message recipients were rejected: invalid mailbox")
