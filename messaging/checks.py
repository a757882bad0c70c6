"""System checks (``manage.py check``): an SMS backend that cannot work is reported at start.

Registered in ``MessagingConfig.ready()``. Ids: ``triggerhub.E001``... for errors,
``triggerhub.W001``... for warnings.
"""

import re

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from customers import phones

E164 = re.compile(r"\+[1-9]\d{1,14}")


def check_sms_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    path = settings.TRIGGERHUB_SMS_BACKEND
    try:
        backend = import_string(path)
    except ImportError as exc:
        return [checks.Error(
            f"TRIGGERHUB_SMS_BACKEND {path!r} cannot be imported: {exc}",
            hint="Set TRIGGERHUB_SMS_BACKEND to an SMS backend class, e.g. "
                 "messaging.backends.sms.twilio.SmsBackend or messaging.backends.sms.console.SmsBackend.",
            id="triggerhub.E001",
        )]
    from .backends.sms import twilio

    if isinstance(backend, type) and issubclass(backend, twilio.SmsBackend):
        return _twilio_problems()
    return []


def _twilio_problems() -> list[checks.CheckMessage]:
    problems = []
    if not settings.TRIGGERHUB_TWILIO_ACCOUNT_SID:
        problems.append(checks.Error(
            "The Twilio SMS backend has no account SID.",
            hint="Set TRIGGERHUB_TWILIO_ACCOUNT_SID to the Account SID (AC...) from the Twilio console.",
            id="triggerhub.E002",
        ))
    if not settings.TRIGGERHUB_TWILIO_AUTH_TOKEN:
        problems.append(checks.Error(
            "The Twilio SMS backend has no auth token.",
            hint="Set TRIGGERHUB_TWILIO_AUTH_TOKEN to the account's Auth Token from the Twilio console.",
            id="triggerhub.E003",
        ))
    from_number = settings.TRIGGERHUB_TWILIO_FROM_NUMBER
    if not (settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID or from_number):
        problems.append(checks.Error(
            "The Twilio SMS backend has no sender.",
            hint="Set TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID (MG..., preferred) or "
                 "TRIGGERHUB_TWILIO_FROM_NUMBER (a Twilio number in E.164, e.g. +12125550100).",
            id="triggerhub.E004",
        ))
    elif from_number and not settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID:
        problem = _e164_problem(from_number)
        if problem:
            problems.append(checks.Error(
                f"TRIGGERHUB_TWILIO_FROM_NUMBER is not a valid sender: {problem}",
                hint="Write the Twilio number in E.164: + and the country calling code, no spaces "
                     "(e.g. +12125550100).",
                id="triggerhub.E005",
            ))
    callback = settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL
    if callback and settings.TRIGGERHUB_MODE == "production" and not callback.startswith("https://"):
        problems.append(checks.Warning(
            f"TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL {callback!r} is not HTTPS: Twilio's delivery "
            "reports, with customers' phone numbers, would cross the internet unencrypted.",
            hint="Set TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL to an https:// address of this site, "
                 "e.g. https://triggerhub.example.com/webhooks/twilio/status/.",
            id="triggerhub.W001",
        ))
    return problems


def _e164_problem(number: str) -> str:
    """Why ``number`` is not a valid E.164 number, or "" if it is one."""
    if not E164.fullmatch(number):
        return f"{number!r} is not in E.164 (+ and the country calling code, then digits only)."
    try:
        phones.normalize(number)
    except ValidationError as exc:
        return exc.messages[0]
    return ""


def check_send_rules(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The site's send window and frequency caps must parse, or no marketing SMS could be decided."""
    from django.core.exceptions import ImproperlyConfigured

    from .policy import SendRules

    try:
        SendRules.site()
    except ImproperlyConfigured as exc:
        return [checks.Error(
            str(exc),
            hint="Fix TRIGGERHUB_SEND_WINDOW (e.g. 08:00-21:00) or TRIGGERHUB_FREQUENCY_CAPS "
                 "(e.g. sms:marketing:1/1d,sms:marketing:3/7d).",
            id="triggerhub.E006",
        )]
    return []


def check_public_base_url(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Links in messages (unsubscribe) need the site's public address in production."""
    from django.core.exceptions import ImproperlyConfigured

    from .rendering import public_base_url

    try:
        public_base_url()
    except ImproperlyConfigured as exc:
        return [checks.Error(
            str(exc), hint="Set TRIGGERHUB_PUBLIC_BASE_URL=https://<the host recipients reach>.",
            id="triggerhub.E007",
        )]
    return []
