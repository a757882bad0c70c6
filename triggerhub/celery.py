"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in the apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")

app = Celery("triggerhub")


def _celery_settings() -> dict:
    """Django's ``CELERY_*`` settings as a plain mapping, read once when Celery first needs them.

    Not ``config_from_object("django.conf:settings", namespace="CELERY")``: that looks
    every option up through Django's lazy settings object on each publish, which cost
    a fifth of the time a storefront pays to emit an event (bench/emit_overhead.py).
    """
    from django.conf import settings

    return {
        name.removeprefix("CELERY_").lower(): getattr(settings, name)
        for name in dir(settings)
        if name.startswith("CELERY_")
    }


app.add_defaults(_celery_settings)
app.autodiscover_tasks()
