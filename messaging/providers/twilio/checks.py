"""``manage.py check`` of Twilio's settings: what would stop an SMS from going, said before one is sent.

Run through ``SmsBackend.check_settings`` by messaging/checks.py's ``check_sms_backend``
when ``TRIGGERHUB_SMS_BACKEND`` names the Twilio backend. Ids ``triggerhub.E002`` to
``E005`` and ``W001``.
"""

import re

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError

from customers import phones

E164 = re.compile(r"\+[1-9]\d{1,14}")


def settings_problems() -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    if not settings.TRIGGERHUB_TWILIO_ACCOUNT_SID:
        problems.append(
            checks.Error(
                "The Twilio SMS backend has no account SID.",
                hint="Set TRIGGERHUB_TWILIO_ACCOUNT_SID to the Account SID (AC...) from the Twilio console.",
                id="triggerhub.E002",
            )
        )
    if not settings.TRIGGERHUB_TWILIO_AUTH_TOKEN:
        problems.append(
            checks.Error(
                "The Twilio SMS backend has no auth token.",
                hint="Set TRIGGERHUB_TWILIO_AUTH_TOKEN to the account's Auth Token from the Twilio console.",
                id="triggerhub.E003",
            )
        )
    from_number = settings.TRIGGERHUB_TWILIO_FROM_NUMBER
    if not (settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID or from_number):
        problems.append(
            checks.Error(
                "The Twilio SMS backend has no sender.",
                hint="Set TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID (MG..., preferred) or "
                "TRIGGERHUB_TWILIO_FROM_NUMBER (a Twilio number in E.164, e.g. +12125550100).",
                id="triggerhub.E004",
            )
        )
    elif from_number and not settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID:
        problem = e164_problem(from_number)
        if problem:
            problems.append(
                checks.Error(
                    f"TRIGGERHUB_TWILIO_FROM_NUMBER is not a valid sender: {problem}",
                    hint="Write the Twilio number in E.164: + and the country calling code, no spaces "
                    "(e.g. +12125550100).",
                    id="triggerhub.E005",
                )
            )
    callback = settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL
    if callback and settings.TRIGGERHUB_MODE == "production" and not callback.startswith("https://"):
        problems.append(
            checks.Warning(
                f"TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL {callback!r} is not HTTPS: Twilio's delivery "
                "reports, with customers' phone numbers, would cross the internet unencrypted.",
                hint="Set TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL to an https:// address of this site, "
                "e.g. https://triggerhub.example.com/webhooks/twilio/status/.",
                id="triggerhub.W001",
            )
        )
    return problems


def e164_problem(number: str) -> str:
    """Why ``number`` is not a valid E.164 number, or "" if it is one."""
    if not E164.fullmatch(number):
        return f"{number!r} is not in E.164 (+ and the country calling code, then digits only)."
    try:
        phones.normalize(number)
    except ValidationError as exc:
        return exc.messages[0]
    return ""
