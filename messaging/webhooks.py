"""The status webhooks' way in: each provider's own view, and the receiver of anymail's tracking signal.

Each provider's home authenticates and reads its reports (messaging/providers/);
what a report does is status.py's.

* ``twilio_status``: the SMS provider's status callback, routed at
  ``POST /webhooks/twilio/status/`` (triggerhub/urls.py); it lives in
  messaging/providers/twilio/webhooks.py.
* ``/anymail/<esp>/tracking/`` (anymail's own views, basic auth = ``ANYMAIL_WEBHOOK_SECRET``)
  send ``anymail.signals.tracking``; ``on_tracking_event`` is connected to it in
  ``MessagingConfig.ready()`` and hands the event to messaging/providers/email.py.
"""

from .providers import email
from .providers.twilio.webhooks import public_url
from .providers.twilio.webhooks import status_callback as twilio_status

__all__ = ["on_tracking_event", "public_url", "twilio_status"]


def on_tracking_event(sender, event, esp_name, **kwargs):
    email.record_tracking_event(event=event, esp_name=esp_name)
