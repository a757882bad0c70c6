from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import events


@shared_task(name="customers.tasks.process_event")
def process_event(event_id: int) -> None:
    events.process_event(event_id)


@shared_task(name="customers.tasks.process_events")
def process_events(event_ids: list[int]) -> None:
    events.process_events(event_ids)


@shared_task(name="customers.tasks.sweep_events")
def sweep_events() -> int:
    return len(events.republish_stale_events(older_than=timedelta(seconds=settings.TRIGGERHUB_STALE_AFTER_SECONDS)))
