"""Settings of bench/delivery.py: TriggerHub's own, plus django-post-office to measure against.

Used by the bench process and by the Celery workers it starts (DJANGO_SETTINGS_MODULE),
so both sides send through the same backend. Needs the ``bench`` extra:
``.venv/bin/pip install -e ".[bench]"``.
"""

from triggerhub.settings import *  # noqa: F403
from triggerhub.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]

# anymail's test backend, minus a linear scan of every message sent so far (see the module).
EMAIL_BACKEND = "bench.anymail_test_backend.EmailBackend"
POST_OFFICE = {
    "BACKENDS": {"default": EMAIL_BACKEND},
    "DEFAULT_PRIORITY": "medium",
    # Overridden by --post-office-batch; 100 is post-office's own default.
    "BATCH_SIZE": 1000,
    "LOG_LEVEL": 2,  # a Log row per e-mail sent, as TriggerHub writes a MessageEvent
    "CELERY_ENABLED": False,
}
