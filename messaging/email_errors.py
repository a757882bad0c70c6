"""Sorting what an e-mail backend raised into "try again" and "give up"."""

import smtplib
import socket

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

from .exceptions import DeliveryError, PermanentDeliveryError, TransientDeliveryError


def classify_email_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentDeliveryError(f"The ESP refused the recipient: {exc}")
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        if status is not None and (status == 429 or status >= 500):
            return TransientDeliveryError(f"The ESP answered {status}: {exc}", code=str(status))
        if status is not None:
            return PermanentDeliveryError(f"The ESP rejected the message ({status}): {exc}", code=str(status))
        return TransientDeliveryError(f"The ESP could not be reached: {exc}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return PermanentDeliveryError(f"The SMTP server refused the recipient: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
        return PermanentDeliveryError(f"The SMTP server refused: {exc}", code=str(exc.smtp_code))
    if isinstance(exc, (smtplib.SMTPException, socket.timeout, OSError)):
        return TransientDeliveryError(f"The mail server could not take it now: {exc}")
    # Anything else is a surprise; retrying is safer than losing the message.
    return TransientDeliveryError(f"Unexpected error from the e-mail backend: {exc!r}")
