"""Threshold triggers: a figure of the customer's crossing a line, upward or downward.

A figure is a number attribute (``attributes.loyalty_points``), or a count over the
last ``days`` days: of the customer's events of a name (``events.order_placed.count``)
or of their failed sends (``messages.failed.count``). An activity fires on the
crossing, not on every value beyond the line: a ``ThresholdMark`` remembers, per
activity and customer, the side of the line the customer was last seen on. A customer
never seen stands on the side the trigger starts from (below the line for ``up``,
above it for ``down``), so the first scan after activation fires for everyone already
beyond the line.

Two ways see a crossing, both through the same marks, so each crossing fires once:

* ``evaluate_event``: a ``profile_updated`` event that changed the attribute (its new
  value), or a new event of the counted name (the count now);
* ``scan_thresholds``, daily: values changed in bulk without events
  (``QuerySet.update``, imports), counts that moved with time or with message
  outcomes. It finds crossings with a few set-based queries per activity, whatever
  the number of customers, and enrolls only the customers who crossed.

Each crossing in the trigger's direction is numbered on its mark; ``crossing:<n>`` is
the enrollment's occurrence key (``once`` for re-entry once), so two ways that saw the
same crossing at the same moment enroll once.
"""

import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import models, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from customers.models import Customer, Event
from messaging.models import Message, Status

from . import conditions, engine
from .models import Activity, ActivityStatus, Enrollment, Reentry, ThresholdMark, TriggerType

log = logging.getLogger(__name__)

#: What counts as a failed send for ``messages.failed.count``: the provider refused it
#: or could not get it there. Messages we blocked ourselves never reached anyone's gateway.
FAILED_SEND_STATUSES = (Status.FAILED, Status.BOUNCED, Status.UNDELIVERED)

_EVENT_COUNT = re.compile(r"^events\.(?P<name>[a-z_]\w*)\.count$")
_ALWAYS = Q(pk__isnull=False)
#: An event that says nothing about the figure.
_NOT_SHOWN = object()


class Direction(models.TextChoices):
    UP = "up", "Upward (from below the line to at or above it)"
    DOWN = "down", "Downward (from at or above the line to below it)"


@dataclass(frozen=True)
class Line:
    """A threshold trigger as read from an activity: the figure, the line and the way across."""

    field: str
    value: float
    direction: str
    days: int | None = None

    @classmethod
    def of(cls, activity) -> "Line":
        trigger = activity.trigger
        return cls(
            field=trigger["field"],
            value=trigger["value"],
            direction=trigger.get("direction", Direction.UP),
            days=trigger.get("days"),
        )

    @property
    def fired_side(self) -> bool:
        """The side a crossing reaches, as ``ThresholdMark.above``."""
        return self.direction == Direction.UP

    @property
    def counted_event(self) -> str | None:
        match = _EVENT_COUNT.match(self.field)
        return match["name"] if match else None

    @property
    def is_attribute(self) -> bool:
        return self.field.startswith("attributes.")

    # The side of one value, of one customer, of every customer -----------------------

    def side_of_value(self, value) -> bool | None:
        """True at or above the line, False below, None when ``value`` is not a number.

        Numbers are read as target conditions read them (text such as "59.90" counts).
        """
        probe = {"value": value}
        for above, op in ((True, "gte"), (False, "lt")):
            if conditions.evaluate_event_conditions(
                [{"field": "properties.value", "op": op, "value": self.value}], probe
            ):
                return above
        return None

    def value_of(self, customer, at):
        """The figure for one customer at ``at``."""
        if self.is_attribute:
            value = customer.attributes
            for key in self.field.split(".")[1:]:
                value = value.get(key) if isinstance(value, dict) else None
            return value
        return self._counted(at).filter(customer=customer).count()

    def customers_on_side(self, above: bool, at) -> Q:
        """A filter on ``Customer``: those whose figure is on that side of the line at ``at``."""
        if self.is_attribute:
            op = "gte" if above else "lt"
            return conditions.to_q([{"field": self.field, "op": op, "value": self.value}], at=at)
        # A count is a whole number: "at or above the line" is "at least k of them",
        # which EXISTS answers by reading at most k rows.
        least = math.ceil(self.value)
        at_least = (
            _ALWAYS
            if least <= 0
            else Q(Exists(self._counted(at).filter(customer=OuterRef("pk")).order_by()[least - 1 : least]))
        )
        return at_least if above else ~at_least

    def _counted(self, at):
        if self.field == "messages.failed.count":
            rows = Message.objects.filter(status__in=FAILED_SEND_STATUSES)
            moment = "created_at"
        else:
            rows = Event.objects.filter(name=self.counted_event)
            moment = "occurred_at"
        rows = rows.filter(**{f"{moment}__lte": at})
        if self.days:
            rows = rows.filter(**{f"{moment}__gte": at - timedelta(days=self.days)})
        return rows


def threshold_activities(now) -> list[Activity]:
    """The active threshold-triggered activities running at ``now``."""
    return [
        activity
        for activity in Activity.objects.filter(
            status=ActivityStatus.ACTIVE, trigger__type=TriggerType.THRESHOLD
        ).order_by("-priority", "pk")
        if engine.is_running(activity, now)
    ]


# Crossings seen in events ----------------------------------------------------------


def evaluate_event(event) -> list[Enrollment]:
    """Enroll ``event``'s customer where the event shows a figure crossing a line."""
    now = timezone.now()
    enrollments = []
    for activity in threshold_activities(now):
        line = Line.of(activity)
        value = _value_in(event, line, now)
        if value is _NOT_SHOWN:
            continue
        enrollment = observe(activity, line, event.customer, value, now=now)
        if enrollment is not None:
            enrollments.append(enrollment)
    return enrollments


def _value_in(event, line, now):
    """The figure's value the event shows, or ``_NOT_SHOWN``."""
    if event.name == "profile_updated" and line.is_attribute:
        changes = (event.properties or {}).get("changes")
        changes = changes if isinstance(changes, dict) else {}
        keys = line.field.split(".")
        # Changes name top-level attributes ([old, new]); a nested field is dug out of the new value.
        for depth in range(len(keys), 1, -1):
            changed = changes.get(".".join(keys[:depth]))
            if isinstance(changed, (list, tuple)) and len(changed) == 2:
                value = changed[1]
                for key in keys[depth:]:
                    value = value.get(key) if isinstance(value, dict) else None
                return value
        return _NOT_SHOWN
    if event.name == line.counted_event:
        return line.value_of(event.customer, now)
    return _NOT_SHOWN


def observe(activity, line, customer, value, *, now) -> Enrollment | None:
    """Compare one customer's figure with their mark: move it, and enroll on a crossing."""
    side = line.side_of_value(value)
    if side is None:
        return None
    with transaction.atomic():
        marks = ThresholdMark.objects.select_for_update().filter(activity=activity, customer=customer)
        mark = marks.first()
        if mark is None:
            if side != line.fired_side:
                return None  # never seen, and still on the side it starts from
            ThresholdMark.objects.get_or_create(
                activity=activity,
                customer=customer,
                defaults={"above": not line.fired_side, "updated_at": now},
            )
            mark = marks.get()
        if mark.above == side:
            return None
        mark.above = side
        mark.updated_at = now
        if side == line.fired_side:
            mark.crossings += 1
        mark.save()
        if side != line.fired_side:
            return None
        return _enroll(activity, line, customer, mark.crossings, value, now)


# The daily scan ----------------------------------------------------------------------


def scan_thresholds(*, now=None) -> dict:
    """Find and enroll the customers whose figures crossed a line without an event.

    Safe to run twice, and at once: scans of an activity take turns, and a crossing
    moves the customer's mark, so the next scan sees nothing new.
    """
    now = now or timezone.now()
    totals = {"activities": 0, "crossings": 0, "enrolled": 0, "rearmed": 0}
    for activity in threshold_activities(now):
        counts = scan_activity(activity, now=now)
        totals["activities"] += 1
        for name in ("crossings", "enrolled", "rearmed"):
            totals[name] += counts[name]
    return totals


def scan_activity(activity, *, now) -> dict:
    """One activity's scan: a few queries whatever the number of customers, then one
    enrollment per customer who crossed."""
    line = Line.of(activity)
    fired, start = line.fired_side, not line.fired_side
    marks = ThresholdMark.objects.filter(activity=activity)
    with transaction.atomic():
        # One scan of an activity at a time. NO KEY: enrollments being written meanwhile
        # lock the activity's key (their foreign key), and must not wait for the scan.
        Activity.objects.select_for_update(no_key=True).filter(pk=activity.pk).first()
        # Back on the side it starts from: the next crossing counts again.
        rearmed = marks.filter(
            above=fired,
            customer__in=Customer.objects.filter(line.customers_on_side(start, now)).order_by().values("pk"),
        ).update(above=start, updated_at=now)
        crossing = (
            Customer.objects.filter(line.customers_on_side(fired, now))
            .filter(~Exists(marks.filter(customer=OuterRef("pk"), above=fired)))
            .order_by()
            .values("pk")
        )
        # Locked first: a crossing an event is recording right now is left to it.
        back_across = list(
            marks.select_for_update().filter(above=start, customer__in=crossing).values_list("pk", flat=True)
        )
        if back_across:
            marks.filter(pk__in=back_across).update(above=fired, crossings=F("crossings") + 1, updated_at=now)
        never_seen = list(crossing.values_list("pk", flat=True))
        if never_seen:
            ThresholdMark.objects.bulk_create(
                [
                    ThresholdMark(activity=activity, customer_id=pk, above=fired, crossings=1, updated_at=now)
                    for pk in never_seen
                ],
                ignore_conflicts=True,
            )
        crossed = []
        if back_across or never_seen:
            crossed = list(
                marks.filter(Q(pk__in=back_across) | Q(customer_id__in=never_seen), above=fired)
                .select_related("customer")
                .order_by("customer_id")
            )
        enrolled = 0
        for mark in crossed:
            value = line.value_of(mark.customer, now)
            if _enroll(activity, line, mark.customer, mark.crossings, value, now) is not None:
                enrolled += 1
    if crossed or rearmed:
        log.info(
            "threshold scan of %r: %d crossed, %d enrolled, %d back", activity.name, len(crossed), enrolled, rearmed
        )
    return {"crossings": len(crossed), "enrolled": enrolled, "rearmed": rearmed}


# Enrolling a crossing ----------------------------------------------------------------


def _enroll(activity, line, customer, crossing: int, value, now) -> Enrollment | None:
    key = _occurrence_key(activity, customer, crossing, now)
    if key is None:
        return None
    context = {
        "event": {
            "name": "threshold_crossed",
            "occurred_at": now,
            "field": line.field,
            "value": value,
            "line": line.value,
            "direction": line.direction,
        }
    }
    return engine.enroll(activity, customer, occurrence_key=key, context=context)


def _occurrence_key(activity, customer, crossing, now) -> str | None:
    """``once``, or this crossing's own key; None when the re-entry policy keeps the customer out now."""
    if activity.reentry == Reentry.ONCE:
        return None if Enrollment.objects.filter(activity=activity, customer=customer).exists() else "once"
    # The engine's re-entry rules (one open enrollment at a time, after N days) decide.
    if engine._occurrence_key(activity, customer, None, now) is None:
        return None
    return f"crossing:{crossing}"
