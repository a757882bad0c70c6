"""The status webhooks: Twilio's status callback, and the receiver of anymail's tracking signal.

Both only authenticate and parse; what a report does is status.py's.

* ``POST /webhooks/twilio/status/``: Twilio signs each callback (``X-Twilio-Signature``)
  with the account's auth token over the URL it called and the POST parameters. A
  callback without a valid signature is refused (403) and changes nothing; so is
  every callback while ``TRIGGERHUB_TWILIO_AUTH_TOKEN`` is empty. Behind a proxy that
  rewrites the host or scheme, set ``TRIGGERHUB_PUBLIC_BASE_URL`` to the address Twilio
  calls (``https://triggerhub.example.com``): the URL checked is that base and the path.
* ``/anymail/<esp>/tracking/`` (anymail's own views, basic auth = ``ANYMAIL_WEBHOOK_SECRET``)
  send ``anymail.signals.tracking``; ``on_tracking_event`` is connected to it in
  ``MessagingConfig.ready()``.
"""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from . import status

log = logging.getLogger(__name__)


@csrf_exempt
@login_not_required
@require_POST
def twilio_status(request):
    if not _signed_by_twilio(request):
        return HttpResponseForbidden("Missing or invalid X-Twilio-Signature.")
    if not (request.POST.get("MessageSid") and request.POST.get("MessageStatus")):
        return HttpResponseBadRequest("A status callback needs MessageSid and MessageStatus.")
    # An unknown SID is answered 200 too: Twilio must not retry what we cannot use.
    status.record_twilio_callback(request.POST)
    return HttpResponse()


def _signed_by_twilio(request) -> bool:
    auth_token = getattr(settings, "TRIGGERHUB_TWILIO_AUTH_TOKEN", "")
    if not auth_token:
        log.error(
            "Twilio status callback refused: set TRIGGERHUB_TWILIO_AUTH_TOKEN to check its signature."
        )
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


def on_tracking_event(sender, event, esp_name, **kwargs):
    status.record_tracking_event(event=event, esp_name=esp_name)
