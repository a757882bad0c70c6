"""Evaluating events against activities and walking enrollments through their steps.

An event first reaches the customer's open enrollments (a goal converts them, a
wait-for-event resumes them), then the activities it triggers. ``advance()`` walks
one enrollment from where it stands until a wait or the end; it locks the row, so it
is safe to run twice and at once, and what its steps write is keyed by the step.
"""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from messaging import outbox

from . import conditions, thresholds
from .models import (
    OPEN_STATES,
    Activity,
    ActivityStatus,
    Enrollment,
    EnrollmentState,
    Reentry,
    TriggerType,
)
from .steps import STEPS, AfterWait, OutcomeKind, source_prefix

log = logging.getLogger(__name__)


def evaluate_event_signal(sender, event, **kwargs):
    evaluate_event(event)


def evaluate_event(event) -> list[Enrollment]:
    """React to ``event``: goals and waits of open enrollments, then new enrollments."""
    react_to_event(event)
    now = timezone.now()
    activities = [
        activity
        for activity in Activity.objects.filter(status=ActivityStatus.ACTIVE, trigger_event=event.name).order_by(
            "-priority", "pk"
        )
        if activity.trigger.get("type") == TriggerType.EVENT
        and is_running(activity, now)
        and conditions.evaluate_event_conditions(activity.trigger.get("where", []), event.properties)
    ]
    enrollments = []
    for activity in activities:
        enrollment = enroll(activity, event.customer, event=event)
        if enrollment is not None:
            enrollments.append(enrollment)
    enrollments += thresholds.evaluate_event(event)
    return enrollments


def is_running(activity, now) -> bool:
    return (activity.starts_at is None or activity.starts_at <= now) and (
        activity.ends_at is None or now < activity.ends_at
    )


def enroll(activity, customer, *, event=None, occurrence_key=None, context=None) -> Enrollment | None:
    """Enroll ``customer`` if the target and the re-entry policy allow, and run what is due.

    One enrollment per (activity, customer, occurrence key), enforced by the database;
    the customer's row is locked meanwhile, so two events a moment apart cannot both
    pass the re-entry check.
    """
    now = timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if not conditions.matches(activity.target, customer, at=now):
            return None
        key = occurrence_key or _occurrence_key(activity, customer, event, now)
        if key is None:
            return None
        enrollment, created = Enrollment.objects.get_or_create(
            activity=activity,
            customer=customer,
            occurrence_key=key,
            defaults={
                "version": activity.current_version(),
                "event": event,
                "context": {**(context or {}), **({"event": event_values(event)} if event else {})},
                "position": [0],
            },
        )
    if created:
        log.info("enrolled %s in %r (%s)", customer, activity.name, key)
    advance(enrollment.pk)
    return enrollment


def event_values(event) -> dict:
    return {"name": event.name, "occurred_at": event.occurred_at, **(event.properties or {})}


def _occurrence_key(activity, customer, event, now) -> str | None:
    """What makes this occurrence unique, or None when re-entry does not allow one now."""
    if activity.reentry == Reentry.ONCE:
        return "once"
    occurrence = f"event:{event.pk}" if event is not None else f"at:{now.isoformat()}"
    if activity.reentry == Reentry.ALWAYS:
        return occurrence  # every time, even beside a running one: two webinars, two reminders
    earlier = Enrollment.objects.filter(activity=activity, customer=customer)
    if earlier.filter(state__in=OPEN_STATES).exists():
        return None  # one at a time: a second cart update joins the running enrollment
    if activity.reentry == Reentry.AFTER_DAYS:
        since = now - timedelta(days=activity.reentry_days or 0)
        if earlier.filter(created_at__gt=since).exists():
            return None
    return occurrence


def react_to_event(event) -> None:
    """Convert the enrollments whose goal ``event`` is; resume those waiting for it."""
    for enrollment in Enrollment.objects.filter(customer=event.customer, state__in=OPEN_STATES).select_related(
        "version"
    ):
        definition = enrollment.version.definition
        goal = definition.get("goal") or {}
        # A date enrollment waits for its first moment with no step taken yet: a goal
        # reached before the journey began (an order the day before) does not end it.
        started = bool(enrollment.history)
        if (
            started
            and goal.get("event") == event.name
            and conditions.evaluate_event_conditions(goal.get("where", []), event.properties)
        ):
            finish(enrollment.pk, EnrollmentState.CONVERTED, note=f"goal {event.name}")
            continue
        waiting = enrollment.waiting_for or {}
        if (
            enrollment.state == EnrollmentState.WAITING
            and waiting.get("event") == event.name
            and conditions.evaluate_event_conditions(waiting.get("where", []), event.properties)
        ):
            advance(enrollment.pk, resumed_by=event)


def advance(enrollment_id: int, *, resumed_by=None) -> None:
    """Run the enrollment's steps from where it stands until a wait or the end."""
    now = timezone.now()
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("activity", "customer", "version")
            .get(pk=enrollment_id)
        )
        if enrollment.state not in (EnrollmentState.ACTIVE, EnrollmentState.WAITING):
            return
        if enrollment.activity.status == ActivityStatus.PAUSED:
            enrollment.state = EnrollmentState.HELD
            enrollment.save()
            return
        if enrollment.activity.status == ActivityStatus.ENDED:
            _end(enrollment, EnrollmentState.EXITED, "activity ended", now)
            return
        walk(enrollment, now, resumed_by=resumed_by)


def walk(enrollment, now, *, resumed_by=None, on_step=None) -> None:
    """Run a loaded enrollment's steps as of ``now`` until a wait or the end (a waiting one
    only if its wait is over). ``on_step(step, key, outcome)`` sees each step taken: the
    dry run walks with the clock moved, through this same loop."""
    if enrollment.state == EnrollmentState.WAITING:
        if not _wait_is_over(enrollment, resumed_by, now):
            return
        enrollment.state = EnrollmentState.ACTIVE
        enrollment.next_run_at = None
        enrollment.waiting_for = {}
    _run(enrollment, now, on_step)


def _wait_is_over(enrollment, resumed_by, now) -> bool:
    """Whether a waiting enrollment goes on now; an ending wait-for-event may exit it instead."""
    waiting = enrollment.waiting_for or {}
    if resumed_by is not None and waiting:
        _record(enrollment, "wait_for_event", f"{resumed_by.name} arrived", now)
        if waiting.get("on_event") == AfterWait.EXIT:
            _end(enrollment, EnrollmentState.EXITED, f"{resumed_by.name} arrived", now)
            return False
        return True
    if enrollment.next_run_at is None or enrollment.next_run_at > now:
        return False
    if waiting:
        _record(enrollment, "wait_for_event", f"no {waiting['event']} in time", now)
        if waiting.get("on_timeout") == AfterWait.EXIT:
            _end(enrollment, EnrollmentState.EXITED, f"no {waiting['event']} in time", now)
            return False
    return True


def _run(enrollment, now, on_step=None) -> None:
    steps = enrollment.version.steps
    while True:
        step = step_at(steps, enrollment.position)
        if step is None:
            _end(enrollment, EnrollmentState.COMPLETED, "all steps done", now)
            return
        key = ".".join(str(part) for part in enrollment.position)
        outcome = STEPS[step["type"]].run(enrollment, step, key, now)
        _record(enrollment, step["type"], outcome.note, now, key=key)
        if on_step is not None:
            on_step(step, key, outcome)
        if outcome.kind == OutcomeKind.EXIT:
            _end(enrollment, EnrollmentState.EXITED, outcome.note, now)
            return
        if outcome.kind == OutcomeKind.BRANCH:
            enrollment.position = [*enrollment.position, outcome.branch, 0]
            continue
        enrollment.position = next_position(steps, enrollment.position)
        if outcome.kind in (OutcomeKind.WAIT, OutcomeKind.WAIT_FOR_EVENT):
            enrollment.state = EnrollmentState.WAITING
            enrollment.next_run_at = outcome.until
            enrollment.waiting_for = outcome.waiting_for
            enrollment.save()
            return


def step_at(steps, position):
    """The step at ``position`` ([2] or [2, "then", 0]), or None past the end of the list."""
    current, index = steps, position[0]
    for arm, inner in zip(position[1::2], position[2::2]):
        current = current[index].get(arm, [])
        index = inner
    return current[index] if index < len(current) else None


def next_position(steps, position) -> list:
    """The position after ``position``: the next step, leaving branches that ran out."""
    position = [*position[:-1], position[-1] + 1]
    while len(position) > 1:
        arm_list = steps
        index = position[0]
        for arm, inner in zip(position[1:-2:2], position[2:-1:2]):
            arm_list = arm_list[index].get(arm, [])
            index = inner
        arm_list = arm_list[index].get(position[-2], [])
        if position[-1] < len(arm_list):
            break
        position = [*position[:-3], position[-3] + 1]
    return position


def _record(enrollment, step_type, outcome, now, *, key=None) -> None:
    enrollment.history.append({"step": key, "type": step_type, "at": now.isoformat(), "outcome": outcome})


def _end(enrollment, state, note, now) -> None:
    enrollment.state = state
    enrollment.ended_at = now
    enrollment.next_run_at = None
    enrollment.waiting_for = {}
    _record(enrollment, "end", note, now)
    enrollment.save()
    if state in (EnrollmentState.CONVERTED, EnrollmentState.EXITED):
        outbox.cancel(source_prefix=source_prefix(enrollment))


def finish(enrollment_id, state, *, note) -> None:
    """End an open enrollment as ``state`` (converted by its goal, exited); its unsent messages are cancelled."""
    now = timezone.now()
    with transaction.atomic():
        enrollment = Enrollment.objects.select_for_update(of=("self",)).get(pk=enrollment_id)
        if enrollment.state in OPEN_STATES:
            _end(enrollment, state, note, now)


def advance_due(*, now=None, limit=500, budget_seconds=25) -> int:
    """Advance the enrollments whose wait is over (the clock's job; safe to run twice at once).

    Batches of ``limit`` follow each other until none is due or ``budget_seconds`` pass,
    so a thousand birthdays due at 10:00 start together rather than 500 per beat tick.
    """
    now = now or timezone.now()
    started, total = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        with transaction.atomic():
            due = list(
                Enrollment.objects.select_for_update(skip_locked=True)
                .filter(state=EnrollmentState.WAITING, next_run_at__lte=now)
                .order_by("next_run_at")
                .values_list("pk", flat=True)[:limit]
            )
        for pk in due:
            advance(pk)
        total += len(due)
        if len(due) < limit:
            break
    return total


# --- pausing, resuming, ending ---------------------------------------------------------


def pause(activity) -> int:
    """Hold the activity's enrollments where they stand and its unsent messages."""
    with transaction.atomic():
        Activity.objects.filter(pk=activity.pk).update(status=ActivityStatus.PAUSED)
        activity.status = ActivityStatus.PAUSED
        held = Enrollment.objects.filter(
            activity=activity, state__in=(EnrollmentState.ACTIVE, EnrollmentState.WAITING)
        ).update(state=EnrollmentState.HELD)
        outbox.hold(source_prefix=source_prefix(activity))
    return held


def resume(activity) -> int:
    """Let held enrollments and messages go on; waits that ended meanwhile run at once."""
    now = timezone.now()
    with transaction.atomic():
        Activity.objects.filter(pk=activity.pk).update(status=ActivityStatus.ACTIVE)
        activity.status = ActivityStatus.ACTIVE
        held = Enrollment.objects.filter(activity=activity, state=EnrollmentState.HELD)
        resumed = held.filter(next_run_at__isnull=False).update(state=EnrollmentState.WAITING)
        resumed += held.update(state=EnrollmentState.WAITING, next_run_at=now)
        outbox.release(source_prefix=source_prefix(activity))
    advance_due(now=now)
    return resumed


def end(activity) -> int:
    """End the activity: open enrollments exit and unsent messages are cancelled."""
    now = timezone.now()
    with transaction.atomic():
        Activity.objects.filter(pk=activity.pk).update(status=ActivityStatus.ENDED)
        activity.status = ActivityStatus.ENDED
        ended = Enrollment.objects.filter(activity=activity, state__in=OPEN_STATES).update(
            state=EnrollmentState.EXITED, ended_at=now, next_run_at=None
        )
        outbox.cancel(source_prefix=source_prefix(activity))
    return ended
