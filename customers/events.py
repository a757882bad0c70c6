"""Events in: ``emit()`` stores what happened; evaluation runs in a worker after commit."""

import logging
from datetime import timedelta

from celery import signature
from django.core.exceptions import ValidationError
from django.utils import timezone

from triggerhub.db import insert_or_get_existing
from triggerhub.queueing import publish, publish_on_commit

from . import signals, storable_json
from .models import Customer, Event

log = logging.getLogger(__name__)


def emit(
    customer: Customer,
    name: str,
    properties: dict | None = None,
    *,
    occurred_at=None,
    idempotency_key: str | None = None,
    source: str = "django",
) -> Event:
    """Store an event for ``customer`` in the caller's transaction and return it.

    A repeated ``idempotency_key`` from the same ``source`` returns the event stored
    the first time and changes nothing. Evaluation is enqueued when the transaction
    commits; if the broker cannot take it then, the event is evaluated in this process
    so that its messages are safely in the outbox, and their delivery waits for the
    sweeper.

    Raises ``ValidationError`` naming each part of the name, the properties or the key
    that a JSON column cannot store (NaN, infinity, NUL, a lone surrogate: see
    ``storable_json``), before storing anything.
    """
    unstorable = storable_json.messages_about(
        {"name": name, "properties": properties or {}, "idempotency_key": idempotency_key}
    )
    if unstorable:
        raise ValidationError(unstorable)
    event = Event(
        customer=customer,
        name=name,
        properties=properties or {},
        occurred_at=occurred_at or timezone.now(),
        source=source,
        idempotency_key=idempotency_key,
    )
    if idempotency_key is None:
        event.save(force_insert=True)
    else:
        event, created = insert_or_get_existing(event, source=source, idempotency_key=idempotency_key)
        if not created:
            return event
    publish_on_commit(_process_event_task(), event.pk, on_failure=process_event)
    return event


#: Evaluation runs as this task (customers/tasks.py). It is published by name: tasks, the
#: top of the app, import this module, never the other way round.
PROCESS_EVENT_TASK = "customers.tasks.process_event"


def _process_event_task():
    return signature(PROCESS_EVENT_TASK)


def process_event(event_id: int) -> None:
    """Let every listener (the activities) react to the event, once it is committed.

    Safe to run twice: listeners are idempotent (an enrollment is unique per
    activity, customer and occurrence), and ``processed_at`` only records progress.
    """
    event = Event.objects.select_related("customer").filter(pk=event_id).first()
    if event is None:
        log.info("event %s no longer exists; nothing to evaluate", event_id)
        return
    signals.event_ready.send(sender=Event, event=event)
    Event.objects.filter(pk=event_id, processed_at__isnull=True).update(processed_at=timezone.now())


def process_events(event_ids: list[int]) -> None:
    """A batch from the events API, evaluated one event after another."""
    for event_id in event_ids:
        process_event(event_id)


def republish_stale_events(*, older_than: timedelta, limit: int = 1000) -> list[int]:
    """Publish evaluation again for events stored ``older_than`` ago and never processed.

    Returns the ids of the events published.
    """
    cutoff = timezone.now() - older_than
    stale_ids = list(
        Event.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    task = _process_event_task()
    return [event_id for event_id in stale_ids if publish(task, event_id)]
