"""Conditions on customers and on events: one language, answered two ways that agree.

A target such as ``[{"field": "country", "op": "in", "value": ["US", "IT"]},
{"field": "age", "op": "gte", "value": 18}]`` is answered for the one customer an
event arrived for (``matches()``, Python) and for every customer at once
(``to_q()`` / ``filter_customers()``, one query: date triggers, segment sizing).
tests/activities/test_conditions_agree.py holds the two to the same answers on
SQLite and PostgreSQL. docs/conditions.md is the reference for marketers.

The rules both sides implement:

* A condition is true or false, never unknown. A value that is missing (no such
  attribute, JSON null, an empty text field, no date of birth) or of another type
  than the comparison needs makes every comparison false; ``ne``, ``not_in`` and
  ``{"not": ...}`` are exact negations of ``eq``, ``in`` and their condition, so
  they are true there. ``exists: true`` asks for a value.
* The condition's value says how to compare. A number compares numbers (64-bit
  floats); an attribute counts as a number when it is a JSON number or text written
  as a plain decimal (``"59.90"``: how storefronts send money). A ``YYYY-MM-DD`` value
  compares dates: the first ten characters of a text attribute that starts with a
  date. ``true``/``false`` compare JSON booleans. Any other text compares text,
  exactly (case too). Only numbers and dates have an order (``gt``, ``between``).
* ``zone`` is the time zone set on the customer, else every zone of their country,
  else the one zone their phone number gave ``Customer.local_zone``: the number's
  other zones (which ``Customer.time_zones()`` lists) cannot be looked up in a query.
"""

import calendar
import difflib
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import pytz
from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    TextChoices,
    Value,
)
from django.db.models.functions import Coalesce, StrIndex
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

from customers.models import Channel, ConsentAction, ConsentRecord, Event, Segment, SegmentMembership


class Op(TextChoices):
    EQ = "eq", "is"
    NE = "ne", "is not"
    IN = "in", "is one of"
    NOT_IN = "not_in", "is none of"
    GT = "gt", "is more than"
    GTE = "gte", "is at least"
    LT = "lt", "is less than"
    LTE = "lte", "is at most"
    BETWEEN = "between", "is between"
    EXISTS = "exists", "is set"
    CONTAINS = "contains", "contains"
    IS = "is", "is"


class InvalidConditions(ValueError):
    """Conditions that cannot be evaluated; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("These conditions cannot be used: " + " ".join(problems))
        self.problems = problems


TEXT_FIELDS = ("email", "phone", "country", "language", "timezone", "first_name", "last_name", "external_id")
FIELDS = (
    *TEXT_FIELDS,
    "date_of_birth",
    "created_at",
    "age",
    "attributes.<name>",
    "consent.email",
    "consent.sms",
    "segment",
    "zone",
    "orders.count",
    "orders.total",
    "events.<name>.count",
    "events.<name>.sum.<property>",
)
EVENT_FIELDS = ("properties.<name>",)

#: Text that reads as a number: what a JSON number looks like, without exponent and
#: with at most 15 digits each side of the point, so that every database converts it
#: exactly as Python does (SQLite parses it as JSON for that reason). The same
#: pattern runs in Python, PostgreSQL (ARE: \A and \Z anchor the whole string) and
#: SQLite (Django's REGEXP is Python's re).
NUMBER_TEXT = r"\A-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?\Z"
#: Text that holds a date: it starts with ``YYYY-MM-DD`` (a time may follow). The one
#: pattern for dates in activities: date triggers and the builder's vocabulary read
#: dates by it too, in Python and in SQL alike.
DATE_TEXT = r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
_DATE_TEXT = re.compile(DATE_TEXT)
_DATE_VALUE = re.compile(DATE_TEXT + r"\Z")
#: Numbers as large are not compared (they are read as floats first, then tested, on
#: every side alike). PostgreSQL cannot turn numbers beyond about 1.8e308 into floats
#: at all; it is asked to only below _CASTABLE.
_LARGEST_NUMBER = 1e300
_CASTABLE = 1e308
#: Sums add millionths as integers, so that every database adds exactly; amounts of
#: a billion or more are left out of a sum rather than overflow it.
_MICROS = 1_000_000
_LARGEST_SUMMED = 1e9
_LARGEST_AMOUNT = 1e12
_NO_VALUE = object()
#: The longest window an orders/events field looks back (a century): a longer one would reach
#: before year 1, which no date can hold.
_LONGEST_WINDOW_DAYS = 36_500

_ORDER_OPS = ("gt", "gte", "lt", "lte")
_COMPARE = {
    "eq": lambda actual, expected: actual == expected,
    "gt": lambda actual, expected: actual > expected,
    "gte": lambda actual, expected: actual >= expected,
    "lt": lambda actual, expected: actual < expected,
    "lte": lambda actual, expected: actual <= expected,
}
_LOOKUPS = {"eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
_SQL_OPERATORS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ALWAYS = Q(pk__isnull=False)
_NEVER = Q(pk__in=[])


# The public functions --------------------------------------------------------------


def problems_in(conditions) -> list[str]:
    """Every problem with target ``conditions``, each in words a marketer can act on."""
    return _Parser(scope="customer", check_references=True).parse(conditions)[1]


def event_condition_problems(conditions) -> list[str]:
    """Every problem with conditions on an event's properties (trigger ``where``, goals)."""
    return _Parser(scope="event", check_references=True).parse(conditions)[1]


#: Their names before "problems" became the one word for listing problems (kept for callers).
validate = problems_in
validate_event_conditions = event_condition_problems


def matches(conditions, customer, *, at: datetime) -> bool:
    """Whether ``customer`` meets every condition at the moment ``at`` (aware).

    ``age`` counts on the calendar date of ``at`` in ``at``'s own time zone: pass
    ``at`` in the customer's zone for their local date.
    """
    return _holds(_compile(conditions, "customer"), customer, _aware(at))


def to_q(conditions, *, at: datetime) -> Q:
    """A filter on ``Customer`` that keeps exactly the customers ``matches()`` accepts."""
    return _q(_compile(conditions, "customer"), _aware(at))


def filter_customers(queryset, conditions, *, at: datetime):
    """``queryset`` (of customers) narrowed to those meeting ``conditions``, in one query."""
    return queryset.filter(to_q(conditions, at=at))


def evaluate_event_conditions(conditions, properties: dict) -> bool:
    """Whether an event's ``properties`` meet ``conditions`` on ``properties.<name>``."""
    return _holds(_compile(conditions, "event"), properties if isinstance(properties, dict) else {}, None)


def describe(conditions) -> str:
    """The conditions in a line of words, for the admin."""
    if not conditions:
        return "everyone"
    if isinstance(conditions, dict):
        conditions = [conditions]
    if not isinstance(conditions, list):
        return "(not a list of conditions)"
    return " and ".join(_describe_one(condition) for condition in conditions)


# The compiled form: both evaluators walk it --------------------------------------


@dataclass(frozen=True)
class _All:
    parts: tuple


@dataclass(frozen=True)
class _Any:
    parts: tuple


@dataclass(frozen=True)
class _Not:
    part: object


@dataclass(frozen=True)
class _Test:
    """One primitive test: eq, gt, gte, lt, lte, exists, contains, member or granted."""

    subject: object
    op: str
    value: object = None


@dataclass(frozen=True)
class _Typed:
    """A value of an attribute or property condition, with the kind it compares as."""

    kind: str  # number, text, date, bool
    value: object


def _compile(conditions, scope):
    node, problems = _Parser(scope=scope, check_references=False).parse(conditions)
    if problems:
        raise InvalidConditions(problems)
    return node


def _holds(node, target, at) -> bool:
    if isinstance(node, _All):
        return all(_holds(part, target, at) for part in node.parts)
    if isinstance(node, _Any):
        return any(_holds(part, target, at) for part in node.parts)
    if isinstance(node, _Not):
        return not _holds(node.part, target, at)
    return node.subject.holds(node.op, node.value, target, at)


def _q(node, at) -> Q:
    # Every Q built here is true or false for each row, never NULL, so that NOT
    # negates it exactly as Python's ``not`` does.
    if isinstance(node, _All):
        if not node.parts:
            return _ALWAYS
        q = _q(node.parts[0], at)
        for part in node.parts[1:]:
            q &= _q(part, at)
        return q
    if isinstance(node, _Any):
        q = _q(node.parts[0], at)
        for part in node.parts[1:]:
            q |= _q(part, at)
        return q
    if isinstance(node, _Not):
        return ~_q(node.part, at)
    return node.subject.q(node.op, node.value, at)


def _aware(at):
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"Conditions are evaluated at an aware datetime (timezone.now()), not {at!r}.")
    return at


# Reading the JSON form -------------------------------------------------------------


class _Problem(Exception):
    pass


class _Parser:
    def __init__(self, *, scope, check_references):
        self.scope = scope
        self.check_references = check_references
        self.problems = []

    def parse(self, conditions):
        if conditions is None:
            conditions = []
        if not isinstance(conditions, list):
            self.problems.append('Conditions are a list, e.g. [{"field": "country", "op": "in", "value": ["US"]}].')
            return _All(()), self.problems
        parts = [self._condition(condition, f"Condition {index}") for index, condition in enumerate(conditions, 1)]
        return _All(tuple(parts)), self.problems

    def _condition(self, condition, where):
        if not isinstance(condition, dict):
            self.problems.append(f'{where}: write it as {{"field": ..., "op": ..., "value": ...}}, not {condition!r}.')
            return None
        if "any" in condition:
            return self._any(condition, where)
        if "not" in condition:
            return self._not(condition, where)
        try:
            return self._leaf(condition, where)
        except _Problem as problem:
            self.problems.append(f"{where}{_field_note(condition)}: {problem}")
            return None

    def _any(self, condition, where):
        extra = sorted(set(condition) - {"any"})
        if extra:
            self.problems.append(f"{where}: an 'any' condition takes only 'any', not {', '.join(extra)}.")
        options = condition["any"]
        if not isinstance(options, list) or not options:
            self.problems.append(f"{where}: 'any' needs a list of one or more conditions, any of which may hold.")
            return None
        return _Any(
            tuple(self._condition(option, f"{where}, option {index}") for index, option in enumerate(options, 1))
        )

    def _not(self, condition, where):
        extra = sorted(set(condition) - {"not"})
        if extra:
            self.problems.append(f"{where}: a 'not' condition takes only 'not', not {', '.join(extra)}.")
        negated = condition["not"]
        if isinstance(negated, list):
            if not negated:
                self.problems.append(f"{where}: 'not' needs a condition (or a list of them) to negate.")
                return None
            return _Not(
                _All(tuple(self._condition(part, f"{where}, not {index}") for index, part in enumerate(negated, 1)))
            )
        return _Not(self._condition(negated, f"{where}, not"))

    def _leaf(self, condition, where):
        unknown = sorted(set(condition) - {"field", "op", "value", "days"})
        if unknown:
            raise _Problem(
                f"unknown key {', '.join(repr(key) for key in unknown)}; a condition has field, op and value "
                "(and days for orders and events)."
            )
        subject = self._subject(condition.get("field"), condition)
        op = condition.get("op")
        if op not in Op.values:
            raise _Problem(f"unknown op {op!r}{_suggestion(op, Op.values)}. Ops: {', '.join(Op.values)}.")
        if op not in subject.ops:
            raise _Problem(f"'{op}' does not apply here; use one of {', '.join(subject.ops)}.")
        if "value" not in condition:
            raise _Problem(f"'{op}' needs a value{subject.example(op)}.")
        return self._expand(subject, op, condition["value"])

    def _subject(self, field, condition):
        if not isinstance(field, str) or not field:
            raise _Problem('give the field to test, e.g. "country" or "attributes.loyalty_points".')
        days = condition.get("days", _NO_VALUE)
        subject = self._event_subject(field) if self.scope == "event" else self._customer_subject(field)
        if isinstance(subject, (_EventCount, _EventSum)):
            if days is not _NO_VALUE:
                if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _LONGEST_WINDOW_DAYS:
                    raise _Problem(
                        f"days is a whole number of days back from now, from 1 to {_LONGEST_WINDOW_DAYS:,}, not {days!r}."
                    )
                subject.days = days
        elif days is not _NO_VALUE:
            raise _Problem("'days' only applies to orders and events fields (a window back from now).")
        return subject

    def _customer_subject(self, field):
        if field in TEXT_FIELDS:
            return _TextColumn(field)
        if field == "date_of_birth":
            return _DateOfBirth()
        if field == "created_at":
            return _CreatedAt()
        if field == "age":
            return _Age()
        if field in ("consent.email", "consent.sms"):
            return _Consent(Channel(field.split(".", 1)[1]))
        if field == "segment":
            return _SegmentMembership(self.check_references)
        if field == "zone":
            return _Zone()
        if field == "orders.count":
            return _EventCount("order_placed")
        if field == "orders.total":
            return _EventSum("order_placed", "total")
        if field.startswith("attributes."):
            return _Json("attributes", _json_keys(field, "attributes"))
        if field.startswith("events."):
            counted = re.fullmatch(r"events\.(?P<name>[^.]+(\.[^.]+)*?)\.count", field)
            summed = re.fullmatch(r"events\.(?P<name>[^.]+(\.[^.]+)*?)\.sum\.(?P<property>[^.]+)", field)
            if counted:
                return _EventCount(counted["name"])
            if summed:
                _json_keys(f"properties.{summed['property']}", "properties")
                return _EventSum(summed["name"], summed["property"])
            raise _Problem(
                f"'{field}' is not an events field: write events.<name>.count or events.<name>.sum.<property>, "
                "e.g. events.order_placed.count."
            )
        if field.startswith("properties."):
            raise _Problem(
                f"'{field}' is a property of the event; a target tests the customer (use attributes.<name>)."
            )
        raise _Problem(f"unknown field '{field}'{_suggestion(field, FIELDS)}. Fields: {', '.join(FIELDS)}.")

    def _event_subject(self, field):
        if field.startswith("properties."):
            return _Json("properties", _json_keys(field, "properties"))
        raise _Problem(
            f"unknown field '{field}' (did you mean 'properties.{field}'?): conditions on an event test "
            "its properties, e.g. properties.total."
        )

    def _expand(self, subject, op, value):
        """The op in primitive tests: ne is not eq, in is any eq, between is gte and lte."""
        if op == "exists":
            if not isinstance(value, bool):
                raise _Problem(f"exists takes true or false, not {value!r}.")
            test = _Test(subject, "exists")
            return test if value else _Not(test)
        if op == "is":
            if not isinstance(value, bool):
                raise _Problem(f"'is' takes true or false, not {value!r}.")
            return subject.is_test(value)
        if op in ("eq", "ne"):
            test = _Test(subject, "eq", subject.scalar(value))
            return test if op == "eq" else _Not(test)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise _Problem(f"'{op}' needs a list of one or more values{subject.example(op)}.")
            test = (
                subject.member_test(value)
                if subject.members
                else _Any(tuple(_Test(subject, "eq", subject.scalar(one)) for one in value))
            )
            return test if op == "in" else _Not(test)
        if op in _ORDER_OPS:
            return _Test(subject, op, subject.ordered(value))
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise _Problem(f"'between' needs two values, low then high{subject.example(op)}.")
            low, high = subject.ordered(value[0]), subject.ordered(value[1])
            if _kind(low) != _kind(high):
                raise _Problem(f"'between' needs two values of one kind (two numbers or two dates), not {value!r}.")
            if _plain(low) > _plain(high):
                raise _Problem(f"'between' takes the low value first: [{value[1]!r}, {value[0]!r}].")
            return _All((_Test(subject, "gte", low), _Test(subject, "lte", high)))
        if op == "contains":
            if not isinstance(value, str) or not value:
                raise _Problem(f"'contains' needs the text to look for, not {value!r}.")
            return _Test(subject, "contains", subject.substring(value))
        raise _Problem(f"'{op}' does not apply here; use one of {', '.join(subject.ops)}.")


def _kind(value):
    return value.kind if isinstance(value, _Typed) else type(value).__name__


def _plain(value):
    return value.value if isinstance(value, _Typed) else value


def _field_note(condition):
    field = condition.get("field")
    return f" ({field})" if isinstance(field, str) and field else ""


def _suggestion(word, choices):
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _json_keys(field, column):
    keys = field.split(".")[1:]
    if not keys or any(not key for key in keys):
        raise _Problem(
            f"name the {column[:-1] if column == 'attributes' else 'property'}: {column}.<name>, "
            f"e.g. {column}.{'loyalty_points' if column == 'attributes' else 'total'}."
        )
    for key in keys:
        if re.search(r'["\\\x00-\x1f]', key):
            raise _Problem(
                f"'{key}' cannot be used in a condition: names may not hold quotes, backslashes or control characters."
            )
    return tuple(keys)


def _as_date_value(value):
    if isinstance(value, str) and _DATE_VALUE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Problem(f'{value!r} is not a date; write dates as YYYY-MM-DD, e.g. "2024-05-31".')


def _finite(number) -> bool:
    """Whether ``number`` is a finite float; an integer too large for a float is not."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _as_amount(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise _Problem(f"{what} compares with a number, not {value!r}.")
    if abs(value) >= _LARGEST_AMOUNT:
        raise _Problem(f"{value!r} is out of range: {what} compares with numbers below a trillion.")
    return float(value)


# What each field is, in Python and in SQL ------------------------------------------


class _TextColumn:
    ops = ("eq", "ne", "in", "not_in", "contains", "exists")
    members = False

    def __init__(self, name):
        self.name = name

    def example(self, op):
        return ', e.g. ["US", "IT"]' if self.name == "country" else ""

    def scalar(self, value):
        if not isinstance(value, str):
            raise _Problem(f"{self.name} is text: write the value in quotes, not {value!r}.")
        if not value:
            raise _Problem(f"to find customers without {self.name}, use exists: false.")
        # Country codes are stored in capitals; "it" means IT.
        return value.upper() if self.name == "country" else value

    def substring(self, value):
        return value

    def holds(self, op, value, customer, at):
        actual = getattr(customer, self.name) or None
        if op == "exists":
            return actual is not None
        if actual is None:
            return False
        return value in actual if op == "contains" else actual == value

    def q(self, op, value, at):
        present = Q(**{f"{self.name}__isnull": False}) & ~Q(**{self.name: ""})
        if op == "exists":
            return present
        if op == "contains":
            # StrIndex is case-sensitive on both databases; Django's contains is not on SQLite.
            return present & Q(GreaterThan(StrIndex(self.name, Value(value)), 0))
        return present & Q(**{self.name: value})


class _DateOfBirth:
    ops = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists")
    members = False

    def example(self, op):
        return ', e.g. ["1990-01-01", "1999-12-31"]' if op == "between" else ' such as "1990-05-31"'

    def scalar(self, value):
        return _as_date_value(value)

    ordered = scalar

    def holds(self, op, value, customer, at):
        actual = _as_date(customer.date_of_birth)
        if op == "exists" or actual is None:
            return actual is not None and op == "exists"
        return _COMPARE[op](actual, value)

    def q(self, op, value, at):
        present = Q(date_of_birth__isnull=False)
        if op == "exists":
            return present
        return present & Q(**{f"date_of_birth__{'exact' if op == 'eq' else op}": value})


class _CreatedAt:
    """When the customer was created, compared by its date in UTC."""

    ops = _DateOfBirth.ops
    members = False
    example = _DateOfBirth.example
    scalar = ordered = _DateOfBirth.scalar

    def holds(self, op, value, customer, at):
        if op == "exists":
            return customer.created_at is not None
        if customer.created_at is None:
            return False
        return _COMPARE[op](customer.created_at.astimezone(UTC).date(), value)

    def q(self, op, value, at):
        # Ranges on the column itself (not its date) so that an index serves them.
        if op == "exists":
            return Q(created_at__isnull=False)
        start, end = _day_start(value), _day_start(value + timedelta(days=1)) if value < date.max else None
        since_start, before_end = Q(created_at__gte=start), Q(created_at__lt=end) if end else _ALWAYS
        return {
            "eq": since_start & before_end,
            "lt": Q(created_at__lt=start),
            "lte": before_end,
            "gt": Q(created_at__gte=end) if end else _NEVER,
            "gte": since_start,
        }[op]


class _Age:
    """Whole years since the date of birth, on the date of ``at``.

    A 29 February birthday comes round on 28 February in common years, as the
    birthday trigger has it.
    """

    ops = _DateOfBirth.ops
    members = False

    def example(self, op):
        return ", e.g. [18, 30]" if op == "between" else ", e.g. 18"

    def scalar(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 200:
            raise _Problem(f"age is counted in whole years from 0 to 200: write 30, not {value!r}.")
        return value

    ordered = scalar

    def holds(self, op, value, customer, at):
        born = _as_date(customer.date_of_birth)
        if op == "exists" or born is None:
            return born is not None and op == "exists"
        return _COMPARE[op](age_on(born, at.date()), value)

    def q(self, op, value, at):
        if op == "exists":
            return Q(date_of_birth__isnull=False)
        on = at.date()
        present = Q(date_of_birth__isnull=False)
        if op == "eq":
            return _reached_age(value, on) & ~_reached_age(value + 1, on)
        if op == "gt":
            return _reached_age(value + 1, on)
        if op == "gte":
            return _reached_age(value, on)
        if op == "lt":
            return present & ~_reached_age(value, on)
        return present & ~_reached_age(value + 1, on)  # lte


def age_on(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on`` (29 February birthdays count on 28 February in common years)."""
    years = on.year - born.year
    return years - 1 if on < _birthday_in(born, on.year) else years


def _birthday_in(born: date, year: int) -> date:
    if (born.month, born.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return born.replace(year=year)


def _reached_age(years: int, on: date) -> Q:
    """Customers ``years`` old or older on ``on``: born on or before a date, as a range an index serves."""
    year = on.year - years
    if year < date.min.year:
        return _NEVER
    try:
        latest = on.replace(year=year)
    except ValueError:  # on is 29 February and ``year`` has none
        latest = date(year, 2, 28)
    reached = Q(date_of_birth__lte=latest)
    if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year) and calendar.isleap(year):
        reached |= Q(date_of_birth=date(year, 2, 29))
    return Q(date_of_birth__isnull=False) & reached


class _Consent:
    """Reachable for marketing: the latest consent record for the channel is a grant."""

    ops = ("is",)
    members = False

    def __init__(self, channel):
        self.channel = channel

    def example(self, op):
        return ", true or false"

    def is_test(self, value):
        test = _Test(self, "granted")
        return test if value else _Not(test)

    def holds(self, op, value, customer, at):
        return customer.has_consent(self.channel)

    def q(self, op, value, at):
        latest = (
            ConsentRecord.objects.filter(customer=OuterRef("pk"), channel=self.channel)
            .order_by("-recorded_at", "-pk")
            .values("action")[:1]
        )
        return Q(Exact(Coalesce(Subquery(latest), Value("")), ConsentAction.GRANTED.value))


class _SegmentMembership:
    ops = ("in", "not_in")
    members = True

    def __init__(self, check_references):
        self.check_references = check_references

    def example(self, op):
        return ' of segment slugs or names, e.g. ["vip"]'

    def member_test(self, values):
        if not all(isinstance(value, str) and value for value in values):
            raise _Problem(f'segment takes a list of segment slugs or names, e.g. ["vip"], not {values!r}.')
        wanted = frozenset(values)
        if self.check_references:
            found = Segment.objects.filter(Q(slug__in=wanted) | Q(name__in=wanted)).values_list("slug", "name")
            known = {name for pair in found for name in pair}
            missing = sorted(wanted - known)
            if missing:
                existing = ", ".join(Segment.objects.values_list("slug", flat=True)[:20]) or "none yet"
                raise _Problem(
                    f"no segment {', '.join(repr(name) for name in missing)}: create it first, "
                    f"or use one of: {existing}."
                )
        return _Test(self, "member", wanted)

    @staticmethod
    def _memberships(values):
        return Q(segment__slug__in=values) | Q(segment__name__in=values)

    def holds(self, op, value, customer, at):
        return SegmentMembership.objects.filter(self._memberships(value), customer=customer).exists()

    def q(self, op, value, at):
        return Q(Exists(SegmentMembership.objects.filter(self._memberships(value), customer=OuterRef("pk"))))


@dataclass(frozen=True)
class _Zones:
    zones: frozenset  # every IANA zone the condition names
    countries: frozenset  # every country with one of those zones


class _Zone:
    ops = ("in", "not_in")
    members = True

    def example(self, op):
        return ' of zones or zone areas, e.g. ["Asia", "Australia", "Europe/Rome"]'

    def member_test(self, values):
        if not all(isinstance(value, str) and value for value in values):
            raise _Problem(f'zone takes a list of zones or areas, e.g. ["Asia", "Europe/Rome"], not {values!r}.')
        unknown = [value for value in values if not _zones_under(value)]
        if unknown:
            raise _Problem(
                f"{', '.join(repr(value) for value in unknown)}: not a time zone or zone area; write "
                "areas such as Asia, Australia, America, and zones such as Asia/Tokyo."
            )
        zones = frozenset().union(*(_zones_under(value) for value in values))
        return _Test(self, "member", _Zones(zones, _countries_with_a_zone_in(zones)))

    def holds(self, op, value, customer, at):
        return any(zone in value.zones for zone in zones_for_conditions(customer))

    def q(self, op, value, at):
        without_own_zone = Q(timezone="")
        return (
            Q(timezone__in=value.zones)
            | (without_own_zone & Q(country__in=value.countries))
            | (without_own_zone & ~Q(country__in=_country_codes()) & Q(local_zone__in=value.zones))
        )


def zones_for_conditions(customer) -> tuple:
    """The zones ``zone`` conditions see: the customer's own zone, else every zone of their
    country, else the zone their phone number gave ``local_zone``.

    Not ``Customer.time_zones()``: a number's zones cannot be looked up in a query, and
    ``local_zone`` keeps only one of them.
    """
    if customer.timezone:
        return (customer.timezone,)
    if (customer.country or "") in _country_zones():
        return _country_zones()[customer.country]
    return (customer.local_zone,) if customer.local_zone else ()


@lru_cache(maxsize=1)
def _country_zones() -> dict:
    # A plain dict: pytz's own looks codes up in any case, a query does not.
    return {code: tuple(pytz.country_timezones[code]) for code in pytz.country_timezones}


@lru_cache(maxsize=1)
def _country_codes() -> frozenset:
    return frozenset(_country_zones())


@lru_cache(maxsize=1)
def _known_zones() -> frozenset:
    return frozenset(zoneinfo.available_timezones()) | frozenset(pytz.all_timezones)


@lru_cache(maxsize=512)
def _zones_under(value: str) -> frozenset:
    return frozenset(zone for zone in _known_zones() if zone == value or zone.startswith(value + "/"))


@lru_cache(maxsize=512)
def _countries_with_a_zone_in(zones: frozenset) -> frozenset:
    return frozenset(code for code, its_zones in _country_zones().items() if zones.intersection(its_zones))


class _EventCount:
    """How many events of a name the customer had, up to ``at`` (over the last ``days``)."""

    ops = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between")
    members = False

    def __init__(self, name):
        self.name = name
        self.days = None

    def example(self, op):
        return ", e.g. [1, 5]" if op == "between" else ", e.g. 1"

    def scalar(self, value):
        return _as_amount(value, "a count")

    ordered = scalar

    def events(self, at):
        events = Event.objects.filter(name=self.name, occurred_at__lte=at)
        if self.days is not None:
            events = events.filter(occurred_at__gte=at - timedelta(days=self.days))
        return events

    def holds(self, op, value, customer, at):
        return _COMPARE[op](self.events(at).filter(customer=customer).count(), value)

    def q(self, op, value, at):
        # A count is a whole number: every comparison is "at least k" or its negation,
        # which EXISTS answers by reading at most k rows.
        if op == "gte":
            return self._at_least(math.ceil(value), at)
        if op == "gt":
            return self._at_least(math.floor(value) + 1, at)
        if op == "lt":
            return ~self._at_least(math.ceil(value), at)
        if op == "lte":
            return ~self._at_least(math.floor(value) + 1, at)
        if value != int(value):
            return _NEVER
        return self._at_least(int(value), at) & ~self._at_least(int(value) + 1, at)

    def _at_least(self, count, at):
        if count <= 0:
            return _ALWAYS
        return Q(Exists(self.events(at).filter(customer=OuterRef("pk")).order_by()[count - 1 : count]))


class _EventSum(_EventCount):
    """The sum of a numeric property over the customer's events of a name (0 without any)."""

    def __init__(self, name, property_name):
        super().__init__(name)
        self.property_name = property_name

    def example(self, op):
        return ", e.g. [100, 500]" if op == "between" else ", e.g. 100"

    def scalar(self, value):
        return _micros(_as_amount(value, "a sum"))

    ordered = scalar

    def holds(self, op, value, customer, at):
        total = 0
        for properties in self.events(at).filter(customer=customer).values_list("properties", flat=True):
            number = _as_number(properties.get(self.property_name)) if isinstance(properties, dict) else None
            if number is not None and abs(number) < _LARGEST_SUMMED:
                total += _micros(number)
        return _COMPARE[op](total, value)

    def q(self, op, value, at):
        micros = _JsonSql("properties", (self.property_name,), "micros", output_field=IntegerField())
        total = (
            self.events(at)
            .filter(customer=OuterRef("pk"))
            .order_by()
            .annotate(total=Func(micros, function="SUM", output_field=IntegerField()))
            .values("total")
        )
        return Q(_LOOKUPS[op](Coalesce(Subquery(total), Value(0), output_field=IntegerField()), value))


def _micros(number: float) -> int:
    return round(number * _MICROS)


class _Json:
    """A value in a JSON column: ``attributes`` of a customer, ``properties`` of an event."""

    ops = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "contains", "is")
    members = False

    def __init__(self, column, keys):
        self.column = column
        self.keys = keys

    def example(self, op):
        return {
            "between": ', e.g. [10, 20] or ["2024-01-01", "2024-12-31"]',
            "in": ', e.g. ["gold", "silver"]',
            "not_in": ', e.g. ["gold", "silver"]',
        }.get(op, ', e.g. 1000, "gold", "2024-05-31" or true')

    def scalar(self, value):
        if isinstance(value, bool):
            return _Typed("bool", value)
        if isinstance(value, (int, float)):
            if not _finite(value) or abs(value) >= _LARGEST_NUMBER:
                raise _Problem(f"{value!r} is out of range for a number.")
            return _Typed("number", float(value))
        if isinstance(value, str):
            if not value:
                raise _Problem("to find a missing value, use exists: false.")
            if _DATE_VALUE.match(value):
                return _Typed("date", _as_date_value(value).isoformat())
            return _Typed("text", value)
        raise _Problem(
            f"compare with a number, text, a date (YYYY-MM-DD) or true/false, not {value!r}; "
            "to find a missing value, use exists: false."
        )

    def ordered(self, value):
        typed = self.scalar(value)
        if typed.kind not in ("number", "date"):
            raise _Problem(f"only numbers and dates (YYYY-MM-DD) have an order; {value!r} is neither.")
        return typed

    def substring(self, value):
        return _Typed("text", value)

    def is_test(self, value):
        return _Test(self, "eq", _Typed("bool", value))

    def holds(self, op, expected, target, at):
        actual = _dig(target.attributes if self.column == "attributes" else target, self.keys)
        if op == "exists":
            return actual is not None
        actual = _read_as(expected.kind, actual)
        if actual is None:
            return False
        if op == "contains":
            return expected.value in actual
        return _COMPARE[op](actual, expected.value)

    def q(self, op, expected, at):
        return Q(_JsonSql(self.column, self.keys, op, expected, output_field=BooleanField()))


def _dig(document, keys):
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _read_as(kind, value):
    """``value`` as ``kind`` (number, text, date, bool), or None when it is not one."""
    if kind == "number":
        return _as_number(value)
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if not isinstance(value, str):
        return None
    if kind == "date":
        return value[:10] if _DATE_TEXT.match(value) else None
    return value


def _as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if abs(number) < _LARGEST_NUMBER else None  # NaN fails the test too
    if isinstance(value, str) and _NUMBER_TEXT.search(value):
        return float(value)
    return None


def _as_date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# SQL for JSON values, one dialect each ---------------------------------------------


class _JsonSql(Expression):
    """A test of one value in a JSON column (true or false, never NULL), or, for
    sums, the value in millionths (NULL unless it is a number).

    Written per database because each reads JSON types its own way, and both must
    read them as ``_read_as`` does: PostgreSQL by ``jsonb_typeof``, SQLite by
    ``json_type``.
    """

    def __init__(self, column, keys, op, expected=None, output_field=None):
        super().__init__(output_field=output_field)
        self.column = F(column)
        self.keys = tuple(keys)
        self.op = op
        self.expected = expected

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        raise NotSupportedError("Conditions on attributes and properties need PostgreSQL or SQLite.")

    def as_postgresql(self, compiler, connection):
        return self._sql(_PostgresJson(compiler.compile(self.column), self.keys))

    def as_sqlite(self, compiler, connection):
        return self._sql(_SqliteJson(compiler.compile(self.column), self.keys))

    def _sql(self, db):
        if self.op == "micros":
            number = db.number()
            return _sql(db.micros, number, _param(_LARGEST_SUMMED), number)
        if self.op == "exists":
            return db.present()
        kind, value = self.expected.kind, self.expected.value
        read = {"number": db.number, "text": db.text, "date": db.date, "bool": db.boolean}[kind]()
        if self.op == "contains":
            test = _sql(db.contains, read, _param(value))
        else:
            collation = db.byte_order if kind == "date" else ""
            test = _sql(f"({{}}{collation} {_SQL_OPERATORS[self.op]} {{}})", read, _param(value))
        return _sql(f"COALESCE({{}}, {db.false})", test)


def _sql(template, *parts):
    """``template`` with each {} replaced by a (sql, params) part, params in order."""
    params = []
    for _, part_params in parts:
        params.extend(part_params)
    return template.format(*(sql for sql, _ in parts)), params


def _param(value):
    return "%s", [value]


class _PostgresJson:
    false = "FALSE"
    byte_order = ' COLLATE "C"'
    contains = "(strpos({}, {}) > 0)"
    micros = "(CASE WHEN abs({}) < {} THEN round({} * 1000000)::bigint END)"

    def __init__(self, column, keys):
        column_sql, column_params = column
        # -> with text keys, one at a time: it never indexes into arrays (#> would).
        self.value = ("(" + column_sql + " -> %s::text" * len(keys) + ")", [*column_params, *keys])
        self.type = _sql("jsonb_typeof({})", self.value)
        self.text_value = _sql("({} #>> '{{}}')", self.value)

    def present(self):
        return _sql("(COALESCE({}, 'null') <> 'null')", self.type)

    def text(self):
        return _sql("(CASE WHEN {} = 'string' THEN {} END)", self.type, self.text_value)

    def date(self):
        return _sql(
            "(CASE WHEN {} = 'string' AND {} ~ {} THEN substr({}, 1, 10) END)",
            self.type,
            self.text_value,
            _param(DATE_TEXT),
            self.text_value,
        )

    def number(self):
        # Nested CASEs: PostgreSQL may evaluate AND's sides in any order, and a cast
        # of the wrong type fails the whole query.
        return _sql(
            "(CASE WHEN {} = 'number' THEN (CASE WHEN abs(({})::numeric) < {} THEN "
            "(CASE WHEN abs(({})::float8) < {} THEN ({})::float8 END) END) "
            "WHEN {} = 'string' THEN (CASE WHEN {} ~ {} THEN ({})::float8 END) END)",
            self.type,
            self.value,
            _param(_CASTABLE),
            self.value,
            _param(_LARGEST_NUMBER),
            self.value,
            self.type,
            self.text_value,
            _param(NUMBER_TEXT),
            self.text_value,
        )

    def boolean(self):
        return _sql("(CASE WHEN {} = 'boolean' THEN ({})::boolean END)", self.type, self.value)


class _SqliteJson:
    false = "0"
    byte_order = ""  # SQLite compares text byte by byte unless told otherwise
    contains = "(instr({}, {}) > 0)"
    micros = "(CASE WHEN abs({}) < {} THEN CAST(round({} * 1000000) AS INTEGER) END)"

    def __init__(self, column, keys):
        path = "$" + "".join(f'."{key}"' for key in keys)
        self.type = _sql("json_type({}, {})", column, _param(path))
        self.value = _sql("json_extract({}, {})", column, _param(path))

    def present(self):
        return _sql("(COALESCE({}, 'null') <> 'null')", self.type)

    def text(self):
        return _sql("(CASE WHEN {} = 'text' THEN {} END)", self.type, self.value)

    def date(self):
        return _sql(
            "(CASE WHEN {} = 'text' AND {} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
            "THEN substr({}, 1, 10) END)",
            self.type,
            self.value,
            self.value,
        )

    def number(self):
        # Text is read as JSON, not CAST: SQLite's CAST rounds some decimals
        # differently from Python and PostgreSQL; its JSON reader does not.
        as_real = _sql("CAST({} AS REAL)", self.value)
        return _sql(
            "(CASE WHEN {} IN ('integer', 'real') THEN (CASE WHEN abs({}) < {} THEN {} END) "
            "WHEN {} = 'text' THEN (CASE WHEN {} REGEXP {} THEN CAST(json_extract({}, '$') AS REAL) END) END)",
            self.type,
            as_real,
            _param(_LARGEST_NUMBER),
            as_real,
            self.type,
            self.value,
            _param(NUMBER_TEXT),
            self.value,
        )

    def boolean(self):
        return _sql("(CASE {} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", self.type)


# Words for the admin ---------------------------------------------------------------


def _describe_one(condition) -> str:
    if not isinstance(condition, dict):
        return repr(condition)
    if "any" in condition:
        options = condition["any"] if isinstance(condition["any"], list) else []
        return "(" + " or ".join(_describe_one(option) for option in options) + ")"
    if "not" in condition:
        negated = condition["not"]
        inner = describe(negated) if isinstance(negated, list) else _describe_one(negated)
        return f"not ({inner})"
    field, op, value = condition.get("field"), condition.get("op"), condition.get("value")
    subject = str(field).replace("_", " ")
    if condition.get("days"):
        subject += f" in the last {condition['days']} days"
    if op == "exists":
        return f"{subject} {'is set' if value else 'is not set'}"
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{subject} is between {_words(value[0])} and {_words(value[1])}"
    label = Op(op).label if op in Op.values else str(op)
    return f"{subject} {label} {_words(value)}"


def _words(value) -> str:
    if isinstance(value, list):
        return ", ".join(_words(one) for one in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
