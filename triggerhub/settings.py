"""TriggerHub settings, read from the environment.

Two modes, chosen by ``TRIGGERHUB_MODE``:

* ``development`` (the default): safe to run on a laptop with nothing installed.
  SQLite in ``var/``, the embedded file-system Celery broker in ``var/broker``,
  e-mail and SMS printed to the console.
* ``production``: ``DEBUG`` off, ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``
  required, HTTPS-only cookies and HSTS, e-mail and SMS backends that deliver (a
  system check says what to set), no example shop. ``manage.py check --deploy`` is clean.

Every variable is documented where it is read. Our own settings are prefixed
``TRIGGERHUB_``; Django's own keep Django's names behind ``DJANGO_``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# An optional .env file beside manage.py; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Where the embedded defaults keep their state: SQLite file, broker folder, sent mail.
VAR_DIR = Path(env("TRIGGERHUB_VAR_DIR", default=str(BASE_DIR / "var")))

TRIGGERHUB_MODE = env("TRIGGERHUB_MODE", default="development")
if TRIGGERHUB_MODE not in ("development", "production"):
    raise ImproperlyConfigured(f"TRIGGERHUB_MODE must be 'development' or 'production', not {TRIGGERHUB_MODE!r}.")
PRODUCTION = TRIGGERHUB_MODE == "production"

# DJANGO_DEBUG: on by default in development, always off unless asked in production.
DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)

# The example shop (examples/storefront/, with a public registration form) shows TriggerHub
# at work in development and `manage.py demo`. Production never installs or routes it (not a
# variable): there / answers 404, and only staff log in, at /admin/.
TRIGGERHUB_EXAMPLE_SHOP = not PRODUCTION

if PRODUCTION:
    # Required in production: a long random string, e.g. from
    # `python -c "import secrets; print(secrets.token_urlsafe(50))"`.
    try:
        SECRET_KEY = env("DJANGO_SECRET_KEY")
    except ImproperlyConfigured:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when TRIGGERHUB_MODE=production.") from None
    # Required in production: the host names the site answers to, comma-separated.
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is required when TRIGGERHUB_MODE=production "
            "(comma-separated host names, e.g. triggerhub.example.com)."
        )
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-development-only-never-in-production")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

# DJANGO_CSRF_TRUSTED_ORIGINS: origins (scheme://host) allowed to POST forms, if behind a proxy.
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin on the console's site: sections for marketers, operations apart (triggerhub/console.py).
    "triggerhub.console.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "anymail",
    "django_htmx",  # ships htmx itself: the activity builder swaps itself in and counts its audience live; no CDN
    "customers",
    "messaging",
    "activities",
    *(["examples.storefront"] if TRIGGERHUB_EXAMPLE_SHOP else []),
    "axes",
    "triggerhub",  # last: its admin.py registers the apps above again (permissions on their actions)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by AxesStandaloneBackend into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "triggerhub.urls"
WSGI_APPLICATION = "triggerhub.wsgi.application"
ASGI_APPLICATION = "triggerhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                *(["examples.storefront.context_processors.cart"] if TRIGGERHUB_EXAMPLE_SHOP else []),
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# DATABASE_URL: e.g. postgres://user:password@host:5432/triggerhub. Without it,
# SQLite in var/triggerhub.sqlite3 (the embedded default).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'triggerhub.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat are separate processes sharing one file: WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock at BEGIN so two writers
    # queue up instead of failing with "database is locked" half-way through.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so a real worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-triggerhub.sqlite3")}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
else:
    # DJANGO_CONN_MAX_AGE: seconds to keep a database connection open (0 = per request).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates and times are shown with their zone ("2 Dec 2026, 10:00 UTC"): Django localizes every
# date it shows, so the formats of the language are overridden, not DATETIME_FORMAT.
FORMAT_MODULE_PATH = ["triggerhub.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
# WhiteNoise serves the admin's static files; in development straight from the apps.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Files browsers ask for at the site's root (favicon.ico), so no page logs a 404 for them.
WHITENOISE_ROOT = BASE_DIR / "triggerhub" / "public"
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGOUT_REDIRECT_URL: str | None
if TRIGGERHUB_EXAMPLE_SHOP:
    LOGIN_URL = "storefront:login"
    LOGIN_REDIRECT_URL = "storefront:products"
    LOGOUT_REDIRECT_URL = "storefront:products"
else:
    LOGIN_URL = "admin:login"
    LOGIN_REDIRECT_URL = "admin:index"
    LOGOUT_REDIRECT_URL = None  # the admin's own "logged out" page

# --- Login throttling (django-axes) ------------------------------------------------
# Every login through Django's authenticate() (the admin's, the example shop's) counts
# failures per username and client address together; past the limit even the right
# password is refused with a 429 page until the cool-off ends. Ops unlock at once with
# `manage.py axes_reset_username <name>` (or `axes_reset` for everyone), or by deleting
# the user's row under Axes > Access attempts in the admin.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out attempts before checking
    "django.contrib.auth.backends.ModelBackend",
]
# AXES_FAILURE_LIMIT: wrong passwords for one username from one address before the lock.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
# AXES_COOLOFF_MINUTES: how long the lock lasts; a further wrong try meanwhile starts it again.
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
# Username and address together: by username alone anyone could lock an operator out by
# guessing, by address alone one office behind a NAT would lock itself out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "login_locked_out.html"
# AXES_IPWARE_META_PRECEDENCE_ORDER: where the client's address is read (django-ipware),
# comma-separated request.META names. REMOTE_ADDR by default, which cannot be forged. Behind
# a load balancer every request comes from the balancer's address: set
# HTTP_X_FORWARDED_FOR,REMOTE_ADDR, and only there (without a balancer the client writes the
# header itself).
# AXES_IPWARE_PROXY_ORDER: which address of X-Forwarded-For counts. right-most by default:
# the one the balancer appended; everything left of it is what the client wrote and would
# let it dodge the lockout by changing the header (django-ipware's own default, left-most,
# does exactly that). With more proxies in a chain, see AXES_IPWARE_PROXY_COUNT.
AXES_IPWARE_META_PRECEDENCE_ORDER = tuple(env.list("AXES_IPWARE_META_PRECEDENCE_ORDER", default=["REMOTE_ADDR"]))
AXES_IPWARE_PROXY_ORDER = env("AXES_IPWARE_PROXY_ORDER", default="right-most")
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=None)

# --- Security (production) ----------------------------------------------------
if PRODUCTION:
    # TLS terminates at the load balancer, which sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain HTTP inside the network
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # DJANGO_HSTS_SECONDS: how long browsers must use HTTPS only (default one year).
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Celery ---------------------------------------------------------------------
# REDIS_URL: e.g. redis://localhost:6379/0. Without it, the embedded broker: kombu's
# file-system transport made safe for the separate processes that share
# TRIGGERHUB_BROKER_DIR (triggerhub/broker.py, whose triggerhub-fs:// scheme
# triggerhub/celery.py registers).
REDIS_URL = env("REDIS_URL", default="")
TRIGGERHUB_BROKER_DIR = Path(env("TRIGGERHUB_BROKER_DIR", default=str(VAR_DIR / "broker")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task whose worker vanished comes back after this many seconds.
        "visibility_timeout": env.int("TRIGGERHUB_VISIBILITY_TIMEOUT", default=3600),
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        # Publishing gives up after one reconnection attempt instead of retrying for
        # seconds: a storefront request must not hang on a dead broker. The rows are
        # the record of the work; the sweepers publish again what did not get through.
        "max_retries": 1,
        "interval_start": 0.1,
        "connect_retries_timeout": 3,
    }
else:
    CELERY_BROKER_URL = "triggerhub-fs://"
    for _folder in ("queue", "control"):
        (TRIGGERHUB_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(TRIGGERHUB_BROKER_DIR / "queue"),
        "data_folder_out": str(TRIGGERHUB_BROKER_DIR / "queue"),
        "control_folder": str(TRIGGERHUB_BROKER_DIR / "control"),
        "polling_interval": 0.5,
    }
    # A message file the embedded broker cannot read for now (too many open files) stays
    # queued and raises a ChannelError: the worker connects again instead of stopping.
    CELERY_BROKER_CHANNEL_ERROR_RETRY = True

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Every task of ours is idempotent, so a task is acknowledged only when it finished
# and comes back if the worker process died while running it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints (the console e-mail and SMS backends' output) is logged by the worker
# as INFO, not as Celery's default WARNING, which reads as something gone wrong.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_TASK_DEFAULT_QUEUE = "clock"
# One queue per kind of work, so a flood of e-mail never delays event evaluation.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("events", "email", "sms", "clock")
]
CELERY_TASK_ROUTES = {
    "customers.tasks.process_event": {"queue": "events"},
    "customers.tasks.process_events": {"queue": "events"},
    "messaging.tasks.deliver_email": {"queue": "email"},
    "messaging.tasks.drain_email": {"queue": "email"},
    "messaging.tasks.deliver_sms": {"queue": "sms"},
    "*": {"queue": "clock"},
}
# Beat schedules live in the database (django-celery-beat), editable in the admin.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Cache (API rate limits) ---------------------------------------------------
# Redis when REDIS_URL is set, so every web process counts against one limit;
# otherwise files in var/cache, shared by the processes of one machine.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# TRIGGERHUB_API_MAX_BODY_BYTES: the largest request body the events API takes (413 above).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("TRIGGERHUB_API_MAX_BODY_BYTES", default=5 * 1024 * 1024)

# --- E-mail -------------------------------------------------------------------
# DJANGO_EMAIL_BACKEND: any Django e-mail backend; in production an anymail ESP,
# e.g. anymail.backends.postmark.EmailBackend with ANYMAIL_* credentials below. No default
# in production: a backend that delivers nothing there would show messages as sent, so
# a system check (messaging/checks.py; run by check, migrate) is an error without one, or with
# console, locmem, file, dummy or anymail's test backend unless TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS says so.
EMAIL_BACKEND = env(
    "DJANGO_EMAIL_BACKEND",
    default="" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
# DJANGO_EMAIL_FILE_PATH: folder for django.core.mail.backends.filebased.EmailBackend.
EMAIL_FILE_PATH = env("DJANGO_EMAIL_FILE_PATH", default=str(VAR_DIR / "sent-mail"))
# DEFAULT_FROM_EMAIL: sender of templates that do not set their own.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="TriggerHub <hello@triggerhub.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = {
    # ANYMAIL_WEBHOOK_SECRET: "user:password" the ESP uses to call our tracking webhooks
    # (basic auth on https://<host>/anymail/<esp>/tracking/; wrong or missing: refused).
    "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default=""),
}
for _name, _value in env.ENVIRON.items():
    # Any ANYMAIL_<ESP>_<SETTING> variable (e.g. ANYMAIL_POSTMARK_SERVER_TOKEN) passes through.
    if _name.startswith("ANYMAIL_") and _name != "ANYMAIL_WEBHOOK_SECRET":
        ANYMAIL[_name.removeprefix("ANYMAIL_")] = _value
# ANYMAIL_REQUESTS_TIMEOUT: seconds to wait for the ESP's answer (anymail's default 30). Past
# it the e-mail is "unknown" (it may have been sent), so keep it above the ESP's slowest answer.
if "REQUESTS_TIMEOUT" in ANYMAIL:
    ANYMAIL["REQUESTS_TIMEOUT"] = env.float("ANYMAIL_REQUESTS_TIMEOUT")

# --- TriggerHub -----------------------------------------------------------------
# TRIGGERHUB_SMS_BACKEND: dotted path of the SMS backend class (console, locmem, twilio).
TRIGGERHUB_SMS_BACKEND = env("TRIGGERHUB_SMS_BACKEND", default="messaging.backends.sms.console.SmsBackend")
# TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS: the channels (email, sms, comma-separated) that
# may run on a backend that delivers nothing (console, locmem, file, dummy, anymail's test)
# in production, e.g. "sms" for a site that sends no SMS, or "email,sms" for a trial.
# Otherwise such a backend is a system-check error in production (messaging/checks.py):
# its messages would be marked sent and reach no one.
TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS = env.list("TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS", default=[])
if not set(TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS) <= {"email", "sms"}:
    raise ImproperlyConfigured(
        "TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS lists channels, email and/or sms (e.g. email,sms), "
        f"not {','.join(TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS)!r}."
    )
# Twilio, for TRIGGERHUB_SMS_BACKEND=messaging.backends.sms.twilio.SmsBackend (read
# by that module at send time; messaging/providers/twilio/checks.py says what is missing):
# TRIGGERHUB_TWILIO_ACCOUNT_SID / TRIGGERHUB_TWILIO_AUTH_TOKEN: the account's credentials (AC...).
TRIGGERHUB_TWILIO_ACCOUNT_SID = env("TRIGGERHUB_TWILIO_ACCOUNT_SID", default="")
TRIGGERHUB_TWILIO_AUTH_TOKEN = env("TRIGGERHUB_TWILIO_AUTH_TOKEN", default="")
# TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID (MG..., preferred) or TRIGGERHUB_TWILIO_FROM_NUMBER
# (E.164): who the SMS comes from. The messaging service wins when both are set.
TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = env("TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID", default="")
TRIGGERHUB_TWILIO_FROM_NUMBER = env("TRIGGERHUB_TWILIO_FROM_NUMBER", default="")
# TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL: where Twilio reports delivery, e.g.
# https://triggerhub.example.com/webhooks/twilio/status/ (none: no status reports).
TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL = env("TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL", default="")
# TRIGGERHUB_TWILIO_API_BASE: another address for Twilio's REST API (tests use a local fake).
TRIGGERHUB_TWILIO_API_BASE = env("TRIGGERHUB_TWILIO_API_BASE", default="https://api.twilio.com")
# TRIGGERHUB_TWILIO_TIMEOUT_SECONDS: how long to wait for Twilio before retrying later.
TRIGGERHUB_TWILIO_TIMEOUT_SECONDS = env.float("TRIGGERHUB_TWILIO_TIMEOUT_SECONDS", default=10)
# TRIGGERHUB_SMS_LONG_POLICY: a rendered SMS over one part is sent as several parts
# ("split", paid per part), cut to one ("truncate"), or blocked ("refuse").
TRIGGERHUB_SMS_LONG_POLICY = env("TRIGGERHUB_SMS_LONG_POLICY", default="split")
if TRIGGERHUB_SMS_LONG_POLICY not in ("split", "truncate", "refuse"):
    raise ImproperlyConfigured(
        f"TRIGGERHUB_SMS_LONG_POLICY must be split, truncate or refuse, not {TRIGGERHUB_SMS_LONG_POLICY!r}."
    )
# TRIGGERHUB_SEND_WINDOW: when marketing SMS may arrive, in the recipient's local time
# (every zone the customer may be in); activities may override it.
TRIGGERHUB_SEND_WINDOW = env("TRIGGERHUB_SEND_WINDOW", default="08:00-21:00")
# TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS: keep marketing SMS to Monday-Friday as well.
TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS = env.bool("TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS", default=False)
# TRIGGERHUB_SEND_WINDOW_SPREAD_MINUTES: messages held overnight go out over the first
# minutes of the window, each customer at a stable offset, not all at 08:00:00.
TRIGGERHUB_SEND_WINDOW_SPREAD_MINUTES = env.int("TRIGGERHUB_SEND_WINDOW_SPREAD_MINUTES", default=30)
# TRIGGERHUB_FREQUENCY_CAPS: rolling caps per customer, channel:category:count/window
# (d = days, h = hours), comma-separated; activities may override them.
TRIGGERHUB_FREQUENCY_CAPS = env("TRIGGERHUB_FREQUENCY_CAPS", default="sms:marketing:1/1d,sms:marketing:3/7d")
# TRIGGERHUB_SMS_CREDITS_ENFORCED: SMS are paid from the prepaid balance at the rates
# set in the admin (SMS rates); an SMS that cannot be paid for is held until credits
# are added. Off: SMS are not metered.
TRIGGERHUB_SMS_CREDITS_ENFORCED = env.bool("TRIGGERHUB_SMS_CREDITS_ENFORCED", default=False)
# TRIGGERHUB_DEFAULT_TIMEZONE: the zone of customers of whom nothing better is known.
TRIGGERHUB_DEFAULT_TIMEZONE = env("TRIGGERHUB_DEFAULT_TIMEZONE", default="UTC")
# TRIGGERHUB_STALE_AFTER_SECONDS: work queued this long ago and not picked up is
# published again by the sweeper (the broker may have lost it, or been down).
TRIGGERHUB_STALE_AFTER_SECONDS = env.int("TRIGGERHUB_STALE_AFTER_SECONDS", default=120)
# TRIGGERHUB_PUBLISH_IN_BACKGROUND: hand after-commit publishes to a thread of the
# process, so requests do not wait for the broker (off: publish in the request thread).
TRIGGERHUB_PUBLISH_IN_BACKGROUND = env.bool("TRIGGERHUB_PUBLISH_IN_BACKGROUND", default=True)
# TRIGGERHUB_SEND_LEASE_SECONDS: how long a worker may be silent while it holds messages
# in "sending" (a batch renews it before each send); past it the worker is taken for dead
# and the sweeper settles what it held: what had reached the provider is "unknown" for ops
# (never resent blindly), what had not goes back to the queue (messaging/handovers.py).
# Keep it above the providers' timeouts (ANYMAIL_REQUESTS_TIMEOUT, TRIGGERHUB_TWILIO_TIMEOUT_SECONDS).
TRIGGERHUB_SEND_LEASE_SECONDS = env.int("TRIGGERHUB_SEND_LEASE_SECONDS", default=300)
# TRIGGERHUB_DELIVERY_BATCH_SIZE: e-mail goes out in batches of up to this many due
# messages: one transaction that locks, renders and decides them, one connection to
# the ESP, one write of the outcomes (1: each message on its own), and a commit of the
# batch's position before each send, so that a worker's death strands one message at most.
TRIGGERHUB_DELIVERY_BATCH_SIZE = env.int("TRIGGERHUB_DELIVERY_BATCH_SIZE", default=100)
# TRIGGERHUB_MAX_SEND_ATTEMPTS: tries for a transient delivery error before "failed".
TRIGGERHUB_MAX_SEND_ATTEMPTS = env.int("TRIGGERHUB_MAX_SEND_ATTEMPTS", default=5)
# TRIGGERHUB_RETRY_BACKOFF_SECONDS: first retry delay; it doubles per attempt, with jitter.
TRIGGERHUB_RETRY_BACKOFF_SECONDS = env.float("TRIGGERHUB_RETRY_BACKOFF_SECONDS", default=30)
# TRIGGERHUB_PUBLIC_BASE_URL: the address the outside world calls us at, e.g.
# https://triggerhub.example.com, when a proxy rewrites host or scheme; Twilio's status
# callback signature is checked over this base and the path (empty: the request's own URL).
# Links in messages (unsubscribe, site.url) start with it; empty: http://localhost:8000 in
# development, https://<first DJANGO_ALLOWED_HOSTS name> in production.
TRIGGERHUB_PUBLIC_BASE_URL = env("TRIGGERHUB_PUBLIC_BASE_URL", default="")
# TRIGGERHUB_SITE_NAME: who the messages are from, as templates (site.name) and the
# unsubscribe page name it.
TRIGGERHUB_SITE_NAME = env("TRIGGERHUB_SITE_NAME", default="TriggerHub")
# TRIGGERHUB_RENDER_MAX_BYTES: the largest a rendered subject, HTML body, text body or SMS
# may be, in UTF-8 bytes (messaging/rendering.py); a message whose template renders more
# fails with the reason instead of being sent. 1 MiB: well above any e-mail a client shows.
TRIGGERHUB_RENDER_MAX_BYTES = env.int("TRIGGERHUB_RENDER_MAX_BYTES", default=1024 * 1024)
# TRIGGERHUB_EMAIL_RESEND_ATTEMPTS: how many times an e-mail the ESP could not deliver
# (not a hard bounce or complaint; see messaging/resend.py) is sent again (0: never).
TRIGGERHUB_EMAIL_RESEND_ATTEMPTS = env.int("TRIGGERHUB_EMAIL_RESEND_ATTEMPTS", default=0)
# TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS: how long after the failure it is sent again.
TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS = env.float("TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS", default=24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("TRIGGERHUB_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
