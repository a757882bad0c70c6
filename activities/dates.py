"""Date triggers: a date of the customer's coming round (a birthday, a delivery, a contract's
end), at a local hour in the customer's own zone.

A trigger reads ``{"type": "date", "field": "date_of_birth" | "attributes.<name>",
"offset_days": -7, "recurrence": "yearly" | {"every_months": 6} | "once", "at": "10:00"}``:
the occurrence (the anniversary, the Nth month since, or the date itself) plus
``offset_days`` is the local date on which the activity starts, at ``at`` in the
customer's ``local_zone``. A 29 February comes round on 28 February in common years;
a 31st, every few months, on the month's last day.

``run_date_triggers()`` runs hourly (beat). It enrolls, in state "waiting", the
customers whose send moment falls in ``[now - CATCH_UP, now + LOOKAHEAD)``, with
``next_run_at`` at that moment; the clock's ``advance_due`` then runs each at its
moment. Every run covers the next day, so a missed run loses nothing; ``CATCH_UP``
reaches back for the moments that passed since the previous run (a customer added,
an activity switched on, a run missed), which then start at once. Occurrence keys
(unique per activity and customer) make overlapping and repeated runs enroll once.

It is set-based: per activity, one ``INSERT … SELECT`` per occurrence date in the
window (two or three: each zone sees one or two local dates in it, and the zones
span 26 hours), whatever the number of customers. The zones are grouped in SQL:
the occurrence's send moment differs by zone, so ``next_run_at`` is a ``CASE`` over
``local_zone`` with one branch per distinct moment. The date is matched on the
expressions of the ``customer_birthday`` index (month and day of birth), or on the
text of the attribute (``YYYY-MM-DD``…, as conditions read dates), and the
activity's target conditions are applied in the same statement.
"""

import calendar
import logging
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    Field,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, ExtractDay, ExtractMonth, ExtractYear, Mod, Substr
from django.db.models.lookups import Exact, GreaterThan, LessThan, Regex
from django.utils import timezone

from customers.models import Customer

from . import conditions, spec
from .models import Activity, ActivityStatus, ActivityVersion, Enrollment, EnrollmentState, Reentry, TriggerType

log = logging.getLogger(__name__)

#: How far ahead each run enrolls.
LOOKAHEAD = timedelta(hours=24)
#: How far back each run looks for moments it has not enrolled yet: two hourly runs.
CATCH_UP = timedelta(hours=2)
_DEFAULT_ZONE = ""  # ``local_zone`` of customers of whom nothing is known: the site default


@dataclass(frozen=True)
class DateTrigger:
    field: str
    offset_days: int
    recurrence: str  # yearly, every_months or once
    every_months: int
    at: time

    @classmethod
    def of(cls, activity) -> "DateTrigger":
        trigger = activity.trigger
        recurrence = trigger.get("recurrence", "yearly")
        every = recurrence.get("every_months", 0) if isinstance(recurrence, dict) else 0
        return cls(
            field=trigger["field"],
            offset_days=trigger.get("offset_days", 0),
            recurrence="every_months" if every else recurrence,
            every_months=every,
            at=time.fromisoformat(trigger.get("at", "10:00")),
        )

    def occurrence_key(self, occurrence: date) -> str:
        field = self.field[:80]
        if self.recurrence == "yearly":
            return f"{field}:{occurrence.year}"
        if self.recurrence == "every_months":
            return f"{field}:{occurrence:%Y-%m}"
        # A new date (another car delivered) is another occurrence; re-entry "once" still allows one.
        return f"{field}:{occurrence.isoformat()}"


def run_date_triggers(*, now=None) -> dict:
    """Enroll the customers whose date comes round in the next day (beat, hourly; safe to run twice at once)."""
    now = now or timezone.now()
    since, until = now - CATCH_UP, now + LOOKAHEAD
    activities = list(
        Activity.objects.filter(status=ActivityStatus.ACTIVE, trigger__type=TriggerType.DATE)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lt=until), Q(ends_at__isnull=True) | Q(ends_at__gt=since))
        .order_by("pk")
    )
    versions = dict(
        ActivityVersion.objects.filter(activity__in=activities, number=F("activity__version")).values_list(
            "activity_id", "pk"
        )
    )
    enrolled, skipped = {}, {}
    for activity in activities:
        problems = spec.trigger_problems(activity.trigger)
        if problems:  # saved without its checks: one broken activity must not stop the others
            log.warning("date trigger of %r skipped: %s", activity.name, "; ".join(problems))
            skipped[activity.name] = problems
            continue
        trigger = DateTrigger.of(activity)
        start = max(since, activity.starts_at or since)
        end = min(until, activity.ends_at or until)
        enrolled[activity.name] = sum(
            _enroll_occurrence(activity, versions[activity.pk], trigger, occurrence, zones_by_moment, now)
            for occurrence, zones_by_moment in send_moments(trigger, start, end).items()
        )
    return {
        "activities": len(enrolled),
        "enrolled": sum(enrolled.values()),
        "by_activity": enrolled,
        **({"skipped": skipped} if skipped else {}),
    }


def send_moments(trigger: DateTrigger, start: datetime, end: datetime) -> dict:
    """{occurrence date: {send moment (UTC): [local zones]}} for the moments in [start, end).

    Every zone a customer may hold is tried; zones whose clocks agree share a moment.
    """
    found: defaultdict[date, defaultdict[datetime, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, zone in _zones().items():
        first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        for days in range((last - first).days + 1):
            local_date = first + timedelta(days=days)
            moment = datetime.combine(local_date, trigger.at, tzinfo=zone).astimezone(UTC)
            if start <= moment < end:
                found[local_date - timedelta(days=trigger.offset_days)][moment].append(name)
    return {occurrence: dict(moments) for occurrence, moments in sorted(found.items())}


def _zones() -> dict:
    return {**_all_zones(), _DEFAULT_ZONE: zoneinfo.ZoneInfo(settings.TRIGGERHUB_DEFAULT_TIMEZONE)}


@lru_cache(maxsize=1)
def _all_zones() -> dict:
    return {name: zoneinfo.ZoneInfo(name) for name in sorted(zoneinfo.available_timezones())}


def _enroll_occurrence(activity, version_id, trigger, occurrence, zones_by_moment, now) -> int:
    """Enroll, in one statement, the customers whose date comes round on ``occurrence``; how many were new."""
    zones = [zone for names in zones_by_moment.values() for zone in names]
    next_run_at = Case(
        *(When(local_zone__in=names, then=Value(moment)) for moment, names in zones_by_moment.items()),
        output_field=DateTimeField(),
    )
    key = "once" if activity.reentry == Reentry.ONCE else trigger.occurrence_key(occurrence)
    due = customers_due(activity, trigger, occurrence, zones, now=now)
    rows = due.order_by().annotate(
        e_activity=Value(activity.pk, output_field=IntegerField()),
        e_version=Value(version_id, output_field=IntegerField()),
        e_customer=F("pk"),
        e_occurrence_key=Value(key, output_field=CharField()),
        e_state=Value(EnrollmentState.WAITING.value, output_field=CharField()),
        e_position=_json([0]),
        e_next_run_at=next_run_at,
        e_waiting_for=_json({}),
        e_context=_json({}),
        e_history=_json([]),
        e_created_at=Value(now, output_field=DateTimeField()),
        e_updated_at=Value(now, output_field=DateTimeField()),
    )
    return _insert_enrollments(rows)


def customers_due(activity, trigger, occurrence, zones, *, now):
    """The customers in ``zones`` whose date comes round on ``occurrence``, in the target, re-entry allowing."""
    local_date = occurrence + timedelta(days=trigger.offset_days)
    # Conditions such as age hold on the customer's local date of sending.
    at = datetime.combine(local_date, trigger.at, tzinfo=UTC)
    due = (
        Customer.objects.filter(local_zone__in=zones)
        .filter(_comes_round_on(trigger, occurrence))
        .filter(conditions.to_q(activity.target, at=at))
    )
    if activity.reentry == Reentry.AFTER_DAYS:
        since = now - timedelta(days=activity.reentry_days or 0)
        due = due.exclude(
            Exists(
                Enrollment.objects.filter(
                    activity=activity,
                    customer=OuterRef("pk"),
                    created_at__gt=since,
                )
            )
        )
    return due


def _json(value):
    return Cast(Value(value, output_field=JSONField()), JSONField())


_ENROLLMENT_FIELDS = (
    "activity",
    "version",
    "customer",
    "occurrence_key",
    "state",
    "position",
    "next_run_at",
    "waiting_for",
    "context",
    "history",
    "created_at",
    "updated_at",
)


def _insert_enrollments(rows) -> int:
    """INSERT … SELECT of ``rows`` (annotated ``e_<field>``) into enrollments; an occurrence already there is kept."""
    select_sql, params = rows.values(*(f"e_{name}" for name in _ENROLLMENT_FIELDS)).query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(name)) for name in _ENROLLMENT_FIELDS)
    picked = ", ".join(quote(f"e_{name}") for name in _ENROLLMENT_FIELDS)
    # WHERE TRUE: SQLite needs it to read ON CONFLICT after INSERT … SELECT.
    sql = (
        f"INSERT INTO {quote(Enrollment._meta.db_table)} ({columns}) "
        f"SELECT {picked} FROM ({select_sql}) AS due WHERE TRUE ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _column(name: str) -> str:
    """The database column of an Enrollment field (each of _ENROLLMENT_FIELDS is a concrete field)."""
    model_field = Enrollment._meta.get_field(name)
    assert isinstance(model_field, Field) and model_field.column is not None
    return model_field.column


# Which customers' date comes round on an occurrence ----------------------------------


def _comes_round_on(trigger: DateTrigger, occurrence: date) -> Q:
    source = _BirthDate() if trigger.field == "date_of_birth" else _AttributeDate(trigger.field)
    if trigger.recurrence == "once":
        return source.is_on(occurrence)
    if trigger.recurrence == "yearly":
        days = [(occurrence.month, occurrence.day)]
        if (occurrence.month, occurrence.day) == (2, 28) and not calendar.isleap(occurrence.year):
            days.append((2, 29))
        any_day = Q()
        for month, day in days:
            any_day |= source.month_and_day(month, day)
        return any_day & source.before_year(occurrence.year)
    # Every N months: a whole number of periods since the date, its day clamped to the month's length.
    month_number = occurrence.year * 12 + occurrence.month - 1
    on_day = source.day_is(occurrence.day)
    if occurrence.day == calendar.monthrange(occurrence.year, occurrence.month)[1]:
        on_day |= source.day_after(occurrence.day)
    periods = Mod(Value(month_number) - source.month_number(), Value(trigger.every_months))
    return on_day & Q(Exact(periods, 0)) & Q(LessThan(source.month_number(), month_number))


class _BirthDate:
    """``date_of_birth``, read with the ``customer_birthday`` index's expressions."""

    def month_and_day(self, month, day) -> Q:
        return Q(Exact(ExtractMonth("date_of_birth"), month)) & Q(Exact(ExtractDay("date_of_birth"), day))

    def before_year(self, year) -> Q:
        return Q(date_of_birth__lt=date(year, 1, 1))

    def is_on(self, day: date) -> Q:
        return Q(date_of_birth=day)

    def day_is(self, day) -> Q:
        return Q(Exact(ExtractDay("date_of_birth"), day))

    def day_after(self, day) -> Q:
        return Q(GreaterThan(ExtractDay("date_of_birth"), day))

    def month_number(self):
        return ExtractYear("date_of_birth") * 12 + ExtractMonth("date_of_birth") - 1


class _AttributeDate:
    """An attribute holding a date as text (``"2027-03-15"``, or a timestamp starting with one).

    Its parts are compared as text; numbers are read only where the text is a date,
    because PostgreSQL stops the whole statement at a cast that fails.
    """

    def __init__(self, field):
        self.text = KT(field.replace(".", "__"))

    def _part(self, start, length):
        return Substr(self.text, start, length)

    def _is_date(self) -> Q:
        return Q(Regex(self.text, conditions.DATE_TEXT))  # the conditions' rule: it starts with a date

    def month_and_day(self, month, day) -> Q:
        return Q(Exact(self._part(6, 5), f"{month:02d}-{day:02d}")) & self._is_date()

    def before_year(self, year) -> Q:
        return Q(LessThan(self._part(1, 4), f"{year:04d}"))

    def is_on(self, day: date) -> Q:
        return Q(Exact(self._part(1, 10), day.isoformat()))

    def day_is(self, day) -> Q:
        return Q(Exact(self._part(9, 2), f"{day:02d}")) & self._is_date()

    def day_after(self, day) -> Q:
        return Q(GreaterThan(self._part(9, 2), f"{day:02d}")) & self._is_date()

    def month_number(self):
        def number(start, length):
            return Cast(self._part(start, length), IntegerField())

        return Case(
            When(self._is_date(), then=number(1, 4) * 12 + number(6, 2) - 1),
            output_field=IntegerField(),
        )
