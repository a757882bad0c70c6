"""Evaluating events against activities and walking enrollments through their steps."""

import logging

from django.db import transaction
from django.utils import timezone

from messaging import outbox
from messaging.models import Channel, EmailTemplate, SmsContent

from .models import Activity, ActivityStatus, Enrollment, EnrollmentState, Reentry, StepType

log = logging.getLogger(__name__)


def evaluate_event_signal(sender, event, **kwargs):
    evaluate_event(event)


def evaluate_event(event) -> list[Enrollment]:
    """Enroll the event's customer in every active activity the event triggers."""
    activities = Activity.objects.filter(status=ActivityStatus.ACTIVE, trigger_event=event.name)
    return [enroll(activity, event) for activity in activities]


def occurrence_key(activity, event) -> str:
    return "once" if activity.reentry == Reentry.ONCE else f"event:{event.pk}"


def enroll(activity, event) -> Enrollment:
    """Enroll once per occurrence (the database enforces it) and run what is due.

    A repeated event or a redelivered task finds the enrollment already there and
    only continues it, which does nothing once it is complete.
    """
    enrollment, created = Enrollment.objects.get_or_create(
        activity=activity,
        customer=event.customer,
        occurrence_key=occurrence_key(activity, event),
        defaults={"event": event},
    )
    if created:
        log.info("enrolled %s in %r", event.customer, activity.name)
    advance(enrollment.pk)
    return enrollment


def advance(enrollment_id: int) -> None:
    """Run the enrollment's remaining steps. Safe to run twice and at once: the row
    is locked while it runs, and each send has a dedupe key of its own."""
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("activity", "customer", "event")
            .get(pk=enrollment_id)
        )
        if enrollment.state != EnrollmentState.ACTIVE:
            return
        steps = enrollment.activity.steps
        while enrollment.current_step < len(steps):
            step = steps[enrollment.current_step]
            outcome = run_step(enrollment, enrollment.current_step, step)
            enrollment.history.append(
                {"step": enrollment.current_step, "type": step["type"],
                 "at": timezone.now().isoformat(), "outcome": outcome}
            )
            enrollment.current_step += 1
        enrollment.state = EnrollmentState.COMPLETED
        enrollment.save()


def run_step(enrollment, index, step) -> str:
    if step["type"] == StepType.SEND:
        channel = Channel(step["channel"])
        if channel == Channel.EMAIL:
            content = EmailTemplate.objects.get(slug=step["template"])
        else:
            content = SmsContent.objects.get(slug=step["content"])
        event = enrollment.event
        message = outbox.enqueue(
            customer=enrollment.customer,
            channel=channel,
            content=content,
            category=step.get("category", enrollment.activity.category),
            source=f"activity:{enrollment.activity_id}/enrollment:{enrollment.pk}/step:{index}",
            dedupe_key=f"enrollment:{enrollment.pk}:step:{index}",
            context={"event": {"name": event.name, **event.properties} if event else {}},
            rules=enrollment.activity.send_rules,
        )
        return f"message {message.pk} {message.status}"
    raise ValueError(f"unknown step type {step['type']!r}")
