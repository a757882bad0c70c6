"""The Twilio SMS backend's old dotted path, kept so settings naming it keep working.

``TRIGGERHUB_SMS_BACKEND=messaging.backends.sms.twilio.SmsBackend`` is what the settings
and docs name; the backend lives with the rest of Twilio in messaging/providers/twilio/.
"""

from ...providers.twilio.backend import SmsBackend
from ...providers.twilio.statuses import (
    OPTED_OUT_CODE,
    PERMANENT_HINTS,
    TRANSIENT_CODES,
)

__all__ = ["OPTED_OUT_CODE", "PERMANENT_HINTS", "TRANSIENT_CODES", "SmsBackend"]
