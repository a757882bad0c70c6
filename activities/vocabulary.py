"""The words the activity builder offers: event names, date fields, attribute keys, condition
fields and their operators, taken from what the site holds and from the code that decides.

Nothing here keeps a list of its own that could drift from the code it describes: event
names come from the stored events and the storefront signals (``customers.receivers``),
condition fields from ``conditions.FIELDS`` and their operators from the parser's own
subjects. Each function is one or two queries, whatever the number of customers and
events, because the builder asks for them on every render.
"""

import re
import zoneinfo
from collections import Counter
from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple

import pytz
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from customers.models import Customer, Event, Segment
from customers.receivers import SIGNAL_EVENTS

from . import conditions

#: Events TriggerHub itself emits (``emit(customer, "<name>", ...)``) besides the storefront
#: signals: customers/consent.py records every consent change as one.
#: tests/activities/test_vocabulary.py reads the code for emit() calls so this cannot miss one.
EMITTED_BY_TRIGGERHUB = ("consent_changed",)

#: How many of the latest customers the attribute keys and date fields are read from.
SAMPLE_SIZE = 2_000

#: What an attribute holds when it holds a date: the conditions' own rule (it starts with one).
_DATE_TEXT = re.compile(conditions.DATE_TEXT)


class KnownEvent(NamedTuple):
    """An event name the builder offers, with how many were stored over the last days.

    Unpacks as ``(name, count)``; ``from_code`` marks the names a storefront signal or
    TriggerHub itself sends, offered even before the first one is stored.
    """

    name: str
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose (the field's public name)

    @property
    def from_code(self) -> bool:
        return self.name in signal_event_names()


def signal_event_names() -> frozenset:
    """The event names the storefront signals send, and the ones TriggerHub emits itself."""
    return frozenset(name for name, _ in SIGNAL_EVENTS.values()) | frozenset(EMITTED_BY_TRIGGERHUB)


def known_events(*, now=None, days=30) -> list[KnownEvent]:
    """Every event name stored on the site with its count over the last ``days`` days (0 for a
    name seen only before), plus the names the code sends; most frequent first.

    One query: a GROUP BY over the event table's name index.
    """
    since = (now or timezone.now()) - timedelta(days=days)
    counts = dict(
        Event.objects.order_by().values_list("name").annotate(recent=Count("pk", filter=Q(occurred_at__gte=since)))
    )
    for name in signal_event_names():
        counts.setdefault(name, 0)
    return sorted(
        (KnownEvent(name, count) for name, count in counts.items()), key=lambda event: (-event.count, event.name)
    )


def event_was_ever_stored(name) -> bool:
    """Whether an event of ``name`` was ever stored here (one look-up in the name index)."""
    if not isinstance(name, str) or not name or not _storable(name):
        return False  # a lone surrogate or NUL cannot have been stored, and PostgreSQL refuses to look for one
    return Event.objects.filter(name=name).exists()


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


# --- The customers' attributes, from a sample -----------------------------------------


class AttributeStats(NamedTuple):
    """What one attribute key holds on the sample: how many values, of which dates, numbers, booleans."""

    values: int
    dates: int
    numbers: int
    booleans: int

    @property
    def kind(self) -> str:
        """date, number or bool when most of its values are one; text otherwise."""
        for kind, count in (("date", self.dates), ("number", self.numbers), ("bool", self.booleans)):
            if count and count * 2 > self.values:
                return kind
        return "text"


def attribute_stats() -> dict[str, AttributeStats]:
    """Each attribute key of the latest SAMPLE_SIZE customers, with what its values hold.

    On PostgreSQL one query (``jsonb_each`` over the sample); elsewhere the sample's
    attributes are read and counted here.
    """
    if connection.vendor == "postgresql":
        return _attribute_stats_in_sql()
    stats: dict[str, tuple[int, int, int, int]] = {}
    for attributes in Customer.objects.order_by("-pk").values_list("attributes", flat=True)[:SAMPLE_SIZE]:
        if not isinstance(attributes, dict):
            continue
        for key, value in attributes.items():
            if value is None:
                continue
            values, dates, numbers, booleans = stats.get(key, (0, 0, 0, 0))
            stats[key] = (
                values + 1,
                dates + (isinstance(value, str) and bool(_DATE_TEXT.match(value))),
                numbers + (isinstance(value, (int, float)) and not isinstance(value, bool)),
                booleans + isinstance(value, bool),
            )
    return {key: AttributeStats(*counts) for key, counts in stats.items()}


def _attribute_stats_in_sql() -> dict[str, AttributeStats]:
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT item.key,
                   count(*),
                   count(*) FILTER (WHERE jsonb_typeof(item.value) = 'string' AND item.value #>> '{{}}' ~ %s),
                   count(*) FILTER (WHERE jsonb_typeof(item.value) = 'number'),
                   count(*) FILTER (WHERE jsonb_typeof(item.value) = 'boolean')
            FROM (SELECT attributes FROM {table} ORDER BY id DESC LIMIT %s) AS sample,
                 jsonb_each(CASE WHEN jsonb_typeof(sample.attributes) = 'object' THEN sample.attributes END) AS item
            WHERE jsonb_typeof(item.value) <> 'null'
            GROUP BY item.key
            """,
            [conditions.DATE_TEXT, SAMPLE_SIZE],
        )
        return {key: AttributeStats(*counts) for key, *counts in cursor.fetchall()}


def attribute_keys() -> list[str]:
    """The attribute keys seen on the latest customers: the target's attribute fields."""
    return sorted(attribute_stats())


def date_fields() -> list[tuple[str, str]]:
    """The customer dates a date trigger can start on: date of birth, and each attribute whose
    values on the latest customers are mostly dates (YYYY-MM-DD…)."""
    dated = sorted(key for key, stats in attribute_stats().items() if stats.kind == "date")
    return [("date_of_birth", "Date of birth")] + [(f"attributes.{key}", f"{_words(key)} (attribute)") for key in dated]


# --- Condition fields and operators ------------------------------------------------------

#: Labels where the field's own name reads badly; any other field is labelled from its name.
_LABELS = {
    "email": "E-mail address",
    "phone": "Phone number",
    "country": "Country",
    "language": "Language",
    "timezone": "Time zone set by hand",
    "external_id": "Storefront id",
    "created_at": "Customer since",
    "attributes.<name>": "An attribute",
    "consent.email": "Agreed to marketing e-mail",
    "consent.sms": "Agreed to marketing SMS",
    "segment": "Segment",
    "zone": "Time zone or region",
    "orders.count": "Number of orders",
    "orders.total": "Total spent on orders",
    "events.<name>.count": "Number of events of a name",
    "events.<name>.sum.<property>": "Sum of an event property",
}

#: The kind of value each of the condition language's subjects compares with.
_KINDS = {
    conditions._TextColumn: "text",
    conditions._DateOfBirth: "date",
    conditions._CreatedAt: "date",
    conditions._Age: "number",
    conditions._Consent: "bool",
    conditions._SegmentMembership: "choice",
    conditions._Zone: "choice",
    conditions._EventCount: "number",
    conditions._EventSum: "number",
    conditions._Json: "text",
}


class ConditionField(NamedTuple):
    field: str
    label: str
    kind: str  # text, number, date, bool or choice
    choices: tuple  # (value, label) pairs where the values are finite; empty otherwise


def condition_fields() -> list[ConditionField]:
    """Every field of the condition language (``conditions.FIELDS``), then each attribute key
    seen on the latest customers with the kind its values have."""
    fields = [
        ConditionField(field, _LABELS.get(field) or _words(field), _kind_of(field), _choices_for(field))
        for field in conditions.FIELDS
    ]
    fields += [
        ConditionField(
            f"attributes.{key}",
            f"{_words(key)} (attribute)",
            stats.kind,
            _BOOLEAN_CHOICES if stats.kind == "bool" else (),
        )
        for key, stats in sorted(attribute_stats().items())
        if _subject(f"attributes.{key}") is not None
    ]
    return fields


def ops_for(field) -> list[tuple[str, str]]:
    """The operators the condition parser accepts for ``field``, with their words (empty for an unknown field)."""
    subject = _subject(field)
    if subject is None:
        return []
    return [(op, conditions.Op(op).label) for op in subject.ops]


def _subject(field):
    """The parser's own subject for ``field`` (what it compares and with which ops), or None."""
    try:
        return conditions._Parser(scope="customer", check_references=False)._subject(field, {})
    except conditions._Problem:
        return None


def _kind_of(field) -> str:
    subject = _subject(field)
    if field in ("country", "language", "timezone"):
        return "choice"
    return _KINDS.get(type(subject), "text")


_BOOLEAN_CHOICES = ((True, "yes"), (False, "no"))


def _choices_for(field) -> tuple:
    if field == "country":
        return tuple(sorted(pytz.country_names.items(), key=lambda pair: pair[1]))
    if field == "language":
        return _languages()
    if field == "timezone":
        return tuple((zone, zone) for zone in sorted(zoneinfo.available_timezones()))
    if field in ("consent.email", "consent.sms"):
        return ((True, "granted"), (False, "not granted"))
    if field == "segment":
        return tuple(Segment.objects.order_by("name").values_list("slug", "name"))
    if field == "zone":
        return _zone_choices()
    return ()


def _languages() -> tuple:
    """The languages the latest customers have, as stored (conditions compare them exactly),
    then the site's LANGUAGES that none of them has."""
    names = {code.lower(): name for code, name in settings.LANGUAGES}
    seen = Counter(
        Customer.objects.order_by("-pk").exclude(language="").values_list("language", flat=True)[:SAMPLE_SIZE]
    )
    choices = [(code, str(names.get(code.lower(), code))) for code, _ in seen.most_common()]
    taken = {code.lower() for code in seen}
    return tuple(choices + [(code, str(name)) for code, name in settings.LANGUAGES if code.lower() not in taken])


@lru_cache(maxsize=1)
def _zone_choices() -> tuple:
    zones = sorted(zoneinfo.available_timezones())
    areas = sorted({zone.split("/")[0] for zone in zones if "/" in zone and not zone.startswith("Etc/")})
    return tuple((area, f"{area} (every zone)") for area in areas) + tuple(
        (zone, zone) for zone in zones if "/" in zone
    )


def _words(name: str) -> str:
    """ "delivery_date" as "Delivery date", "orders.count" as "Orders count"."""
    text = re.sub(r"[._]+", " ", name).strip()
    return text[:1].upper() + text[1:] if text else name
