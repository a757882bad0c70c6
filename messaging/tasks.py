from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import delivery, outbox


@shared_task(name="messaging.tasks.deliver_email")
def deliver_email(message_id: int) -> str | None:
    return delivery.deliver_email_batch(message_id)


@shared_task(name="messaging.tasks.drain_email")
def drain_email() -> int:
    return delivery.drain_emails()


@shared_task(name="messaging.tasks.deliver_sms")
def deliver_sms(message_id: int) -> str | None:
    return delivery.deliver(message_id)


@shared_task(name="messaging.tasks.sweep_outbox")
def sweep_outbox() -> dict:
    return outbox.sweep(stale_after=timedelta(seconds=settings.TRIGGERHUB_STALE_AFTER_SECONDS))
