"""Fakes of the outside world at its edge: e-mail backends that fail like a real ESP does."""

import smtplib

from anymail.exceptions import AnymailRecipientsRefused
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FlakyEmailBackend(LocmemBackend):
    """Drops the connection for the first ``failures_left`` sends, then delivers to locmem."""

    failures_left = 0

    def send_messages(self, messages):
        if FlakyEmailBackend.failures_left > 0:
            FlakyEmailBackend.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class RefusingEmailBackend(LocmemBackend):
    def send_messages(self, messages):
        raise AnymailRecipientsRefused("All message recipients were rejected: invalid mailbox")
