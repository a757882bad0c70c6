"""What can go wrong when handing a message to a provider, and whether trying again helps."""

import smtplib
import socket
import ssl

import requests
import urllib3


class DeliveryError(Exception):
    """A provider did not take the message. ``code`` is the provider's own error code."""

    retryable = False

    def __init__(self, message: str, *, code: str | int = "", payload: dict | None = None):
        super().__init__(message)
        self.code = str(code or "")
        self.payload = payload or {}


class TransientDeliveryError(DeliveryError):
    """A timeout, a 5xx, a rate limit: the same message may go through later."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """The provider refused this message for good (invalid number, unsubscribed...)."""


class RecipientOptedOut(PermanentDeliveryError):
    """The recipient unsubscribed at the carrier or provider (e.g. replied STOP to the sender).

    Nothing more may be sent until they opt in again, so delivery revokes their
    consent on the channel, with the carrier as the source.
    """


class OutcomeUnknown(DeliveryError):
    """The provider may or may not have taken the message: the request may have reached it
    and no answer came back (a read timeout, a connection dropped after the request was
    written, an answer that could not be read).

    Retrying could send it twice, so the message is marked unknown for ops to check.
    """


#: Errors that can only happen before a request is written: the connection was refused,
#: the host name did not resolve, connecting or its TLS handshake failed, or the address
#: to send to is not one (urllib3's NewConnectionError and NameResolutionError are
#: ConnectTimeoutErrors too).
_BEFORE_SENDING = (
    urllib3.exceptions.ConnectTimeoutError,
    requests.exceptions.ConnectTimeout,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    ssl.SSLCertVerificationError,
    ConnectionRefusedError,
    socket.gaierror,
    smtplib.SMTPConnectError,
)


def failed_before_sending(exc: BaseException) -> bool:
    """True when ``exc`` proves the request never left: a retry cannot send twice.

    Anything else raised once a request was attempted (the connection dropped or reset
    before the answer, a read timeout, an answer that could not be read) may have come
    after the provider took the message: its outcome is unknown. The proof can sit
    anywhere in the chain a client library wraps it in (requests' ConnectionError
    around urllib3's MaxRetryError around NewConnectionError; anymail's error raised
    from requests').
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, _BEFORE_SENDING):
            return True
        pending += [error.__cause__, error.__context__, getattr(error, "reason", None)]
        pending += [arg for arg in getattr(error, "args", ()) if isinstance(arg, BaseException)]
    return False


#: An HTTP status that answers for a gateway which gave up waiting on the provider
#: behind it: the provider may have taken the request all the same.
GATEWAY_TIMEOUT = 504
