"""TriggerHub project package: settings, the Celery app, URLs and the HTTP API."""

from .celery import app as celery_app

__all__ = ("celery_app",)
