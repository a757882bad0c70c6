"""System checks (``manage.py check``): an SMS backend that cannot work is reported at start,
and so, in production, is an e-mail or SMS backend that delivers nothing.

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



# Backends that take a message and deliver it to no one (subclasses included: the file
# backend is the console's): right on a laptop, a silent loss in production.
NON_DELIVERING_EMAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "anymail.backends.test.EmailBackend",
)
NON_DELIVERING_SMS_BACKENDS = (
    "messaging.backends.sms.console.SmsBackend",
    "messaging.backends.sms.locmem.SmsBackend",
)
SET_AN_ESP = (
    "Set DJANGO_EMAIL_BACKEND to your ESP's anymail backend, e.g. anymail.backends.postmark.EmailBackend "
    "with ANYMAIL_POSTMARK_SERVER_TOKEN."
)
SET_TWILIO = (
    "Set TRIGGERHUB_SMS_BACKEND=messaging.backends.sms.twilio.SmsBackend with the TRIGGERHUB_TWILIO_* settings."
)


def check_backends_deliver(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """In production, e-mail and SMS must leave: a backend that only prints or keeps them would
    mark every message sent. Only TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS makes that a warning."""
    if settings.TRIGGERHUB_MODE != "production":
        return []
    return [*_email_delivery_problems(), *_sms_delivery_problems()]


def _email_delivery_problems() -> list[checks.CheckMessage]:
    path = settings.EMAIL_BACKEND
    if not path:
        return [checks.Error(
            "DJANGO_EMAIL_BACKEND is not set: production has no default e-mail backend.",
            hint=SET_AN_ESP, id="triggerhub.E008",
        )]
    try:
        backend = import_string(path)
    except ImportError as exc:
        return [checks.Error(f"DJANGO_EMAIL_BACKEND {path!r} cannot be imported: {exc}", hint=SET_AN_ESP,
                             id="triggerhub.E008")]
    if _is_one_of(backend, NON_DELIVERING_EMAIL_BACKENDS):
        return [_delivers_nothing(f"DJANGO_EMAIL_BACKEND is {path!r}, which delivers no e-mail", "email", SET_AN_ESP)]
    return []


def _sms_delivery_problems() -> list[checks.CheckMessage]:
    path = settings.TRIGGERHUB_SMS_BACKEND
    try:
        backend = import_string(path)
    except ImportError:
        return []  # check_sms_backend reports it (E001)
    if _is_one_of(backend, NON_DELIVERING_SMS_BACKENDS):
        return [_delivers_nothing(f"TRIGGERHUB_SMS_BACKEND is {path!r}, which sends no SMS", "sms", SET_TWILIO)]
    return []


def _is_one_of(backend, paths) -> bool:
    return isinstance(backend, type) and any(issubclass(backend, import_string(path)) for path in paths)


def _delivers_nothing(what: str, channel: str, fix: str) -> checks.CheckMessage:
    if channel in settings.TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS:
        return checks.Warning(
            f"{what}: messages are marked sent and reach no one "
            f"(allowed: TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS lists {channel}).",
            hint=fix, id="triggerhub.W002",
        )
    return checks.Error(
        f"{what}: in production its messages would be marked sent and reach no one.",
        hint=f"{fix} To run without sending on purpose, set TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS={channel}.",
        id="triggerhub.E008" if channel == "email" else "triggerhub.E009",
    )
