"""System checks (``manage.py check``): an SMS backend that cannot work is reported at start,
and so, in production, is an e-mail or SMS backend that delivers nothing.

A provider's own settings are checked in its home (messaging/providers/), through its
backend's ``check_settings``.

Registered in ``MessagingConfig.ready()``. Ids: ``triggerhub.E001``... for errors,
``triggerhub.W001``... for warnings.
"""

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .backends.sms.base import BaseSmsBackend


def check_sms_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    path = settings.TRIGGERHUB_SMS_BACKEND
    try:
        backend = import_string(path)
    except ImportError as exc:
        return [
            checks.Error(
                f"TRIGGERHUB_SMS_BACKEND {path!r} cannot be imported: {exc}",
                hint="Set TRIGGERHUB_SMS_BACKEND to an SMS backend class, e.g. "
                "messaging.backends.sms.twilio.SmsBackend or messaging.backends.sms.console.SmsBackend.",
                id="triggerhub.E001",
            )
        ]
    if isinstance(backend, type) and issubclass(backend, BaseSmsBackend):
        return backend.check_settings()  # each provider checks its own settings (messaging/providers/)
    return []


def check_send_rules(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The site's send window and frequency caps must parse, or no marketing SMS could be decided."""
    from django.core.exceptions import ImproperlyConfigured

    from .policy import SendRules

    try:
        SendRules.site()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Fix TRIGGERHUB_SEND_WINDOW (e.g. 08:00-21:00) or TRIGGERHUB_FREQUENCY_CAPS "
                "(e.g. sms:marketing:1/1d,sms:marketing:3/7d).",
                id="triggerhub.E006",
            )
        ]
    return []


def check_public_base_url(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Links in messages (unsubscribe) need the site's public address in production."""
    from django.core.exceptions import ImproperlyConfigured

    from .rendering import public_base_url

    try:
        public_base_url()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Set TRIGGERHUB_PUBLIC_BASE_URL=https://<the host recipients reach>.",
                id="triggerhub.E007",
            )
        ]
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
SET_AN_SMS_PROVIDER = (
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
        return [
            checks.Error(
                "DJANGO_EMAIL_BACKEND is not set: production has no default e-mail backend.",
                hint=SET_AN_ESP,
                id="triggerhub.E008",
            )
        ]
    try:
        backend = import_string(path)
    except ImportError as exc:
        return [
            checks.Error(
                f"DJANGO_EMAIL_BACKEND {path!r} cannot be imported: {exc}", hint=SET_AN_ESP, id="triggerhub.E008"
            )
        ]
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
        return [
            _delivers_nothing(f"TRIGGERHUB_SMS_BACKEND is {path!r}, which sends no SMS", "sms", SET_AN_SMS_PROVIDER)
        ]
    return []


def _is_one_of(backend, paths) -> bool:
    return isinstance(backend, type) and any(issubclass(backend, import_string(path)) for path in paths)


def _delivers_nothing(what: str, channel: str, fix: str) -> checks.CheckMessage:
    if channel in settings.TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS:
        return checks.Warning(
            f"{what}: messages are marked sent and reach no one "
            f"(allowed: TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS lists {channel}).",
            hint=fix,
            id="triggerhub.W002",
        )
    return checks.Error(
        f"{what}: in production its messages would be marked sent and reach no one.",
        hint=f"{fix} To run without sending on purpose, set TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS={channel}.",
        id="triggerhub.E008" if channel == "email" else "triggerhub.E009",
    )
