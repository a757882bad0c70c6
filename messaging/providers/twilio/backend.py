"""Twilio's Programmable Messaging, through the official ``twilio`` client.

Settings (from the environment, see triggerhub/settings.py; read at send time):

* ``TRIGGERHUB_TWILIO_ACCOUNT_SID``, ``TRIGGERHUB_TWILIO_AUTH_TOKEN``: the credentials.
* ``TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID`` (preferred) or ``TRIGGERHUB_TWILIO_FROM_NUMBER``
  (E.164): the sender. The messaging service wins when both are set.
* ``TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL``: optional, where Twilio reports delivery.
* ``TRIGGERHUB_TWILIO_API_BASE``: optional, another address for the REST API (tests).
* ``TRIGGERHUB_TWILIO_TIMEOUT_SECONDS``: how long to wait for an answer.

``manage.py check`` (checks.py beside this module) reports what is missing before anything is sent.
Its old dotted path, ``messaging.backends.sms.twilio.SmsBackend``, names this class too.
"""

from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ...backends.sms.base import BaseSmsBackend, FoundSms, OutgoingSms, SmsResult
from ...exceptions import (
    GATEWAY_TIMEOUT,
    OutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
    failed_before_sending,
)
from . import checks, statuses
from .statuses import OPTED_OUT_CODE, PERMANENT_HINTS, TRANSIENT_CODES


class SmsBackend(BaseSmsBackend):
    """Sends each SMS with one ``Messages.create`` call; the provider id is Twilio's SID (SM...)."""

    provider_name = "Twilio"

    @classmethod
    def check_settings(cls):
        return checks.settings_problems()

    def send(self, sms: OutgoingSms) -> SmsResult:
        client = _configured_client()
        try:
            created = client.messages.create(to=sms.to, body=sms.body, **_sender_and_callback())
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc) from exc
        except requests.RequestException as exc:
            if failed_before_sending(exc):
                # Refused, DNS or a connect timeout: the request never reached Twilio.
                raise TransientDeliveryError(
                    f"Could not reach Twilio at {settings.TRIGGERHUB_TWILIO_API_BASE}: {exc}"
                ) from exc
            # The request may have reached Twilio and its answer did not reach us (a read
            # timeout, the connection dropped after the request was written): it may have
            # been sent, and a retry could text the customer twice.
            lost = (
                f"Twilio did not answer within {settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS}s"
                if isinstance(exc, requests.Timeout)
                else "Twilio's answer was lost"
            )
            raise OutcomeUnknown(
                f"{lost} ({type(exc).__name__}: {exc}); the SMS may have been sent, so it is not "
                "retried: check it from the message's page."
            ) from exc
        except Exception as exc:
            # An answer the client could not read (not JSON, say): Twilio may have the SMS.
            raise OutcomeUnknown(f"Twilio's answer could not be read ({exc!r}); the SMS may have been sent.") from exc
        return SmsResult(created.sid)

    #: How many of the newest messages to one number ``find`` reads, at most.
    lookup_limit = 200

    def find(self, *, to: str, body: str, since: datetime, provider_message_id: str = "") -> list[FoundSms]:
        """The SMS Twilio holds to ``to`` with ``body``, created at or after ``since``, oldest first.

        With ``provider_message_id`` (a SID we recorded), that message alone, or none if
        Twilio does not know it. Raises ``TransientDeliveryError`` when Twilio cannot
        be asked (not configured, unreachable, or it refused the look-up): try again later.
        """
        client = _configured_client()
        try:
            if provider_message_id:
                return [_found(client.messages(provider_message_id).fetch())]
            # Not Twilio's DateSent filter: it counts whole days, and leaves out a message
            # Twilio has not sent yet (still queued, or failed before it left).
            listed = client.messages.stream(to=to, limit=self.lookup_limit)
            found = [sms for sms in listed if sms.body == body and sms.date_created and sms.date_created >= since]
        except TwilioRestException as exc:
            if provider_message_id and exc.status == 404:
                return []
            raise TransientDeliveryError(
                f"Twilio refused the look-up: {exc.msg} (HTTP {exc.status}).", code=exc.code or exc.status
            ) from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"Could not reach Twilio at {settings.TRIGGERHUB_TWILIO_API_BASE}: {exc}"
            ) from exc
        return [_found(sms) for sms in sorted(found, key=lambda sms: sms.date_created)]


def _found(sms) -> FoundSms:
    """Twilio's ``MessageInstance`` in our words."""
    reported = str(sms.status or "")
    return FoundSms(
        provider_message_id=sms.sid,
        status=statuses.status_of(reported),
        provider_status=reported,
        error_code=sms.error_code,
        created_at=sms.date_created,
        payload={
            "sid": sms.sid,
            "twilio_status": reported,
            "error_code": sms.error_code,
            "date_created": sms.date_created,
        },
    )


def _sender_and_callback() -> dict:
    fields = {}
    if settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID:
        fields["messaging_service_sid"] = settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID
    else:
        fields["from_"] = settings.TRIGGERHUB_TWILIO_FROM_NUMBER
    if settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL:
        fields["status_callback"] = settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL
    return fields


def _classify(exc: TwilioRestException | TwilioServiceException):
    """The Twilio error as one of ours: retryable or not, with Twilio's code and words."""
    status = int(exc.status)
    code = int(exc.code) if exc.code else status  # the library puts the status where no code came
    if isinstance(exc, TwilioServiceException):
        said = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    else:
        said = (exc.msg or "").removeprefix("Unable to create record: ")
    payload = {
        "provider": "twilio",
        "http_status": status,
        "twilio_code": code,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }
    if status == GATEWAY_TIMEOUT:
        return OutcomeUnknown(
            f"Twilio: {said} (HTTP {status}); a gateway gave up waiting on Twilio, which may have taken "
            "the SMS, so it is not retried.",
            code=code,
            payload=payload,
        )
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        why = TRANSIENT_CODES.get(code, "Twilio could not take the message now")
        return TransientDeliveryError(
            f"Twilio: {said} (HTTP {status}); {why}, it will be retried.", code=code, payload=payload
        )
    hint = PERMANENT_HINTS.get(code, "see the error's page on twilio.com")
    error = RecipientOptedOut if code == OPTED_OUT_CODE else PermanentDeliveryError
    return error(f"Twilio refused the SMS: {said} (HTTP {status}); {hint}.", code=code, payload=payload)


def _configured_client() -> Client:
    """This process's client for the configured account; TransientDeliveryError if there is none."""
    account_sid = settings.TRIGGERHUB_TWILIO_ACCOUNT_SID
    auth_token = settings.TRIGGERHUB_TWILIO_AUTH_TOKEN
    if not (account_sid and auth_token):
        # Retryable: the messages wait while ops set the variables and restart.
        raise TransientDeliveryError(
            "Twilio is not configured: set TRIGGERHUB_TWILIO_ACCOUNT_SID and "
            "TRIGGERHUB_TWILIO_AUTH_TOKEN (see `manage.py check`)."
        )
    return _client(
        account_sid,
        auth_token,
        settings.TRIGGERHUB_TWILIO_API_BASE,
        settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=4)
def _client(account_sid: str, auth_token: str, api_base: str, timeout: float) -> Client:
    """One client (and HTTP connection pool) per configuration and process."""
    return Client(
        username=account_sid,
        password=auth_token,
        account_sid=account_sid,
        http_client=_ApiBaseHttpClient(api_base, timeout=timeout),
    )


class _ApiBaseHttpClient(TwilioHttpClient):
    """Sends the requests meant for api.twilio.com to ``api_base`` instead.

    The twilio library has no base-URL option; a custom HTTP client is the extension
    point Twilio documents for this (twilio.com/docs/libraries/python/custom-http-clients-python).
    """

    def __init__(self, api_base: str, **kwargs):
        super().__init__(**kwargs)
        self.api_base = urlsplit(api_base.rstrip("/"))

    def request(self, method, url, *args, **kwargs):
        requested = urlsplit(url)
        url = urlunsplit(
            requested._replace(
                scheme=self.api_base.scheme,
                netloc=self.api_base.netloc,
                path=self.api_base.path + requested.path,
            )
        )
        return super().request(method, url, *args, **kwargs)
