"""Sorting what an e-mail backend raised into "try again", "give up" and "it may have gone".

The connection is opened before ``send()`` (``delivery._send_email``), so an error
raised here came from the send itself. Once the request may have reached the ESP or
the mail server (written to the socket, no answer read), a retry could send the
e-mail twice: the outcome is unknown. Only an error that proves nothing left
(``exceptions.failed_before_sending``: refused, DNS, connect timeout) or an answer
that refuses the message is safe to act on.
"""

import smtplib

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailRecipientsRefused,
)

from .exceptions import (
    GATEWAY_TIMEOUT,
    DeliveryError,
    OutcomeUnknown,
    PermanentDeliveryError,
    TransientDeliveryError,
    failed_before_sending,
)


def classify_email_error(exc: Exception) -> DeliveryError:
    """``exc``, raised by an e-mail backend's send, as one of ours."""
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentDeliveryError(f"The ESP refused the recipient: {exc}")
    if isinstance(exc, AnymailAPIError):
        return _classify_api_error(exc)
    if isinstance(exc, AnymailConfigurationError):
        # Nothing was sent; the messages wait while ops set the ESP's settings.
        return TransientDeliveryError(f"The ESP is not configured: {exc}")
    if isinstance(exc, AnymailError):
        # Raised while building the request (an address, a feature the ESP lacks): nothing
        # was sent, and sending the same message again would fail the same way.
        return PermanentDeliveryError(f"The ESP cannot send this message: {exc}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):  # greylisting, a full mailbox for now
            return TransientDeliveryError(f"The SMTP server refused the recipient for now: {exc}", code=str(codes[0]))
        return PermanentDeliveryError(f"The SMTP server refused the recipient: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):
        # The server answered with a code: it did not take the message.
        if 500 <= exc.smtp_code < 600:
            return PermanentDeliveryError(f"The SMTP server refused: {exc}", code=str(exc.smtp_code))
        return TransientDeliveryError(f"The SMTP server could not take it now: {exc}", code=str(exc.smtp_code))
    if failed_before_sending(exc):
        return TransientDeliveryError(f"The mail server could not be reached: {exc}")
    return OutcomeUnknown(
        f"The e-mail backend failed after the message may have reached it ({exc!r}); "
        "not retried, so it cannot go twice: check with the ESP, then resend or close it."
    )


def _classify_api_error(exc: AnymailAPIError) -> DeliveryError:
    status = getattr(exc, "status_code", None)
    if status is None:
        if failed_before_sending(exc):
            return TransientDeliveryError(f"The ESP could not be reached: {exc} ({exc.__cause__ or ''})")
        return OutcomeUnknown(
            f"The ESP did not answer ({exc} {exc.__cause__ or ''}); it may have taken the message, "
            "so it is not retried: check with the ESP, then resend or close it."
        )
    if 200 <= status < 300 or status == GATEWAY_TIMEOUT:
        # A success whose body could not be read, or a gateway that gave up waiting on the
        # ESP behind it: either way the ESP may have it.
        return OutcomeUnknown(f"The ESP answered {status} but not as expected: {exc}", code=str(status))
    if status == 429 or status >= 500:
        return TransientDeliveryError(f"The ESP answered {status}: {exc}", code=str(status))
    return PermanentDeliveryError(f"The ESP rejected the message ({status}): {exc}", code=str(status))
