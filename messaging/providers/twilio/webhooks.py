"""Twilio's status callback: authenticated by its signature, read into a ``StatusReport``.

``POST /webhooks/twilio/status/`` (routed in triggerhub/urls.py through
``messaging.webhooks.twilio_status``). Twilio signs each callback
(``X-Twilio-Signature``) with the account's auth token over the URL it called and the
POST parameters. A callback without a valid signature is refused (403) and changes
nothing; so is every callback while ``TRIGGERHUB_TWILIO_AUTH_TOKEN`` is empty. Behind a
proxy that rewrites the host or scheme, set ``TRIGGERHUB_PUBLIC_BASE_URL`` to the
address Twilio calls (``https://triggerhub.example.com``): the URL checked is that base
and the path. What a report does is status.py's.
"""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from ... import status
from ...models import Channel
from . import statuses

log = logging.getLogger(__name__)


@csrf_exempt
@login_not_required
@require_POST
def status_callback(request):
    if not is_signed_by_twilio(request):
        return HttpResponseForbidden("Missing or invalid X-Twilio-Signature.")
    if not (request.POST.get("MessageSid") and request.POST.get("MessageStatus")):
        return HttpResponseBadRequest("A status callback needs MessageSid and MessageStatus.")
    # An unknown SID is answered 200 too: Twilio must not retry what we cannot use.
    status.apply_report(report_from(request.POST))
    return HttpResponse()


def report_from(params) -> status.StatusReport:
    """A status callback's POST parameters as a report in our words."""
    sid, reported = params.get("MessageSid", ""), params.get("MessageStatus", "")
    ours = statuses.status_of(reported)
    error_code = _int_or_none(params.get("ErrorCode"))
    opted_out = error_code == statuses.OPTED_OUT_CODE
    return status.StatusReport(
        channel=Channel.SMS,
        provider="Twilio",
        event=reported,
        status=ours,
        description=statuses.describe(reported, error_code),
        provider_message_id=sid,
        error_code=error_code,
        recipient=params.get("To", ""),
        recipient_action=status.RecipientAction.UNSUBSCRIBED if opted_out else None,
        payload={name: params.get(name) for name in params},
    )


def is_signed_by_twilio(request) -> bool:
    auth_token = getattr(settings, "TRIGGERHUB_TWILIO_AUTH_TOKEN", "")
    if not auth_token:
        log.error("Twilio status callback refused: set TRIGGERHUB_TWILIO_AUTH_TOKEN to check its signature.")
        return False
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    return RequestValidator(auth_token).validate(public_url(request), request.POST, signature)


def public_url(request) -> str:
    """The URL the caller used, as the outside world spells it."""
    base = getattr(settings, "TRIGGERHUB_PUBLIC_BASE_URL", "")
    if base:
        return base.rstrip("/") + request.get_full_path()
    return request.build_absolute_uri()


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
