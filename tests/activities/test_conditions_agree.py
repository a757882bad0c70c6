"""The two evaluators of the condition language always agree.

Over random customers — text fields (blank, null, odd case, accents), attributes of
every JSON type (missing keys, null, booleans, numbers from tiny to beyond what is
compared, decimals written as text, dates, nested objects, lists), dates of birth
around the moment's birthdays (29 February included), countries, zones and phones
(unknown ones too), consent histories with ties, segment memberships, and orders and
carts at random times around the moment and the edges of the windows — and random
conditions of every field and op, nested in any/not, ``matches()`` for each customer
selects exactly the customers the one query of ``filter_customers()`` selects, on the
database the tests run on.

The conditions are drawn after the customers, with values taken from them (their
ages, dates, attribute values, order counts and totals, each a step either side), so
that they fall on the boundaries where the two evaluators could part.

The generated data stays within what docs/conditions.md documents as supported:
amounts summed have at most six decimals.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from activities.conditions import NUMBER_TEXT, age_on, filter_customers, matches, problems_in
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Customer, Event, Segment
from customers.segments import add as add_to_segment
from tests.transactions import rolled_back

pytestmark = pytest.mark.django_db


# Customers ---------------------------------------------------------------------------

FIRST_NAMES = ["Ann", "ann", "Zoë", "Ann-Marie", "東京"]
EMAILS = ["ann@gmail.com", "BOB@GMAIL.COM", "zoë@example.com"]
COUNTRIES = ["US", "IT", "JP", "AU", "RU", "us", "XX"]
TIMEZONES = ["Asia/Tokyo", "Europe/Rome", "America/New_York", "Australia/Sydney", "Mars/Base"]
PHONES = ["+12125550100", "+61412345678", "+393471234567", "+81312345678"]
LANGUAGES = ["it", "pt-BR", "en"]
ZONE_VALUES = ["Asia", "Europe", "America", "Australia", "Asia/Tokyo", "Europe/Rome", "America/New_York", "Pacific"]
SEGMENTS = {"vip": "VIP", "news": "News letter"}
EVENT_NAMES = ["order_placed", "cart_updated"]
WINDOWS = [None, 1, 7, 30]
TEXTS = [
    "gold",
    "Gold",
    "gold yearly",
    "59.90",
    "5",
    "-3",
    "0",
    "0.50",
    "007",
    "1e5",
    "5.",
    ".5",
    "-0",
    " 5",
    "12345678901234567",
    "2024-05-01",
    "2024-05-01T10:00:00+02:00",
    "2024-13-45",
    "2024-05",
    "Zoë",
    "東京",
]
MOMENTS = [
    datetime(2027, 2, 28, 12, tzinfo=UTC),
    datetime(2027, 3, 1, 9, tzinfo=UTC),
    datetime(2028, 2, 29, 12, tzinfo=UTC),
    datetime(2027, 12, 31, 23, 30, tzinfo=UTC),
]
MOMENT_ZONES = ["UTC", "Australia/Sydney", "America/Los_Angeles"]

numbers = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.5, 1.5, -0.0, 2.0, 59.9, 100, 999.5, 1000, 10**20, 2**62 + 1]),
    # Around the largest number compared (1e300): read as floats first on every side.
    st.sampled_from([1e300, 9.999999999999999e299, 10**300, 10**300 - 1, -(10**300), 1.7e308, 10**400]),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
)
texts = st.one_of(
    st.sampled_from(TEXTS),
    st.sampled_from(TEXTS),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=4),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, st.lists(st.integers(0, 2), max_size=2))
money = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["free", "", "007", "1e3", "5."]),
    st.integers(-(10**6), 10**6).map(lambda cents: cents / 100),
    st.integers(-(10**6), 10**6).map(lambda cents: f"{cents / 100:.2f}"),
    st.integers(-1000, 1000),
    st.sampled_from([10**9, 2 * 10**9, -(10**10)]),
)
#: Hours before the moment: around it, and on the edges of the 1, 7 and 30 day windows.
event_hours = st.one_of(st.integers(-72, 60 * 24), st.sampled_from([0, 1, -1, 24, 25, 168, 167, 720, 721]))


@st.composite
def attributes(draw):
    values = {}
    for key in draw(st.lists(st.sampled_from(["points", "plan", "vip", "since", "car"]), unique=True)):
        if key == "car" and draw(st.booleans()):
            values[key] = draw(st.dictionaries(st.sampled_from(["model", "year"]), scalars, max_size=2))
        else:
            values[key] = draw(scalars)
    return values


@st.composite
def birth_dates(draw, at):
    """Dates of birth on and around the moment's anniversaries, where ages change."""
    if draw(st.integers(0, 4)) == 0:
        return None
    if draw(st.integers(0, 3)) == 0:
        return date(draw(st.sampled_from([1960, 1996, 2000, 2004, 2028])), 2, 29)
    years = draw(st.integers(-1, 90))
    day = at.date()
    anniversary = (
        date(day.year - years, 2, 28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year - years)
    )
    return anniversary + timedelta(days=draw(st.integers(-2, 2)))


@st.composite
def creation_moments(draw, at):
    """Some near midnight in UTC, where the UTC date and the moment's local date part."""
    day = at.astimezone(UTC).date() - timedelta(days=draw(st.integers(-1, 400)))
    clock = draw(st.one_of(st.sampled_from([time(0, 0), time(0, 30), time(23, 59)]), st.times()))
    return datetime.combine(day, clock, tzinfo=UTC)


@st.composite
def worlds(draw):
    at = draw(st.sampled_from(MOMENTS)).astimezone(ZoneInfo(draw(st.sampled_from(MOMENT_ZONES))))
    people = []
    for index in range(draw(st.integers(1, 8))):
        people.append(
            {
                "first_name": draw(st.sampled_from(["", *FIRST_NAMES])),
                "email": draw(st.sampled_from(["", *EMAILS])),
                "external_id": draw(st.sampled_from([None, f"shop-{index}"])),
                "country": draw(st.sampled_from(["", *COUNTRIES])),
                "timezone": draw(st.sampled_from(["", "", *TIMEZONES])),
                "phone": draw(st.sampled_from(["", *PHONES])),
                "language": draw(st.sampled_from(["", *LANGUAGES])),
                "date_of_birth": draw(birth_dates(at)),
                "created_at": draw(creation_moments(at)),
                "attributes": draw(attributes()),
                "consent": draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(list(Channel)), st.sampled_from(list(ConsentAction)), st.integers(0, 3)
                        ),
                        max_size=4,
                    )
                ),
                "segments": draw(st.lists(st.sampled_from(list(SEGMENTS)), unique=True)),
                "events": draw(st.lists(st.tuples(st.sampled_from(EVENT_NAMES), event_hours, money), max_size=6)),
            }
        )
    return at, people


def build(at, people) -> None:
    segments = {slug: Segment.objects.create(slug=slug, name=name) for slug, name in SEGMENTS.items()}
    for person in people:
        customer = Customer.objects.create(
            **{
                key: person[key]
                for key in (
                    "first_name",
                    "email",
                    "external_id",
                    "country",
                    "timezone",
                    "phone",
                    "language",
                    "date_of_birth",
                    "attributes",
                )
            }
        )
        Customer.objects.filter(pk=customer.pk).update(created_at=person["created_at"])
        for channel, action, minutes in person["consent"]:
            ConsentRecord.objects.create(
                customer=customer,
                channel=channel,
                action=action,
                source=ConsentSource.FORM,
                recorded_at=at - timedelta(minutes=minutes),
            )
        for slug in person["segments"]:
            add_to_segment(segments[slug], [customer])
        Event.objects.bulk_create(
            [
                Event(
                    customer=customer,
                    name=name,
                    occurred_at=at - timedelta(hours=hours),
                    properties={} if total is None else {"total": total},
                )
                for name, hours, total in person["events"]
            ]
        )


# Values from the world, for conditions that fall on its boundaries --------------------


@dataclass
class Pools:
    texts: dict = field(default_factory=dict)
    dates: set = field(default_factory=set)
    ages: set = field(default_factory=set)
    numbers: set = field(default_factory=set)
    words: set = field(default_factory=set)
    counts: set = field(default_factory=set)
    sums: set = field(default_factory=set)
    paths: set = field(default_factory=lambda: {"nothing", "car.model"})

    @classmethod
    def of(cls, at, people):
        pools = cls(
            texts={
                "first_name": set(FIRST_NAMES),
                "email": set(EMAILS),
                "country": set(COUNTRIES),
                "timezone": set(TIMEZONES),
                "language": set(LANGUAGES),
                "phone": set(PHONES),
                "external_id": {"shop-0", "shop-1"},
            },
            dates={"1999-12-31", "2000-02-29", "2024-05-01", "2027-02-28", "2027-03-01"},
            ages={0, 18, 27, 31},
            numbers={0, 5, -3, 0.5, 59.9, 1000, 10**20, -0.0},
            words={"gold", "Gold", "a", "007", "1e5", "Zoë"},
            counts={0, 0.5, 1, 1.5},
            sums={0, 10, 59.9, -3},
        )
        for person in people:
            for name in pools.texts:
                if person[name]:
                    pools.texts[name].add(person[name].upper() if name == "country" else person[name])
            born = person["date_of_birth"]
            if born:
                pools.dates.update(str(born + timedelta(days=step)) for step in (-1, 0, 1))
                age = age_on(born, at.date())
                pools.ages.update(years for years in (age - 1, age, age + 1) if 0 <= years <= 200)
            created = person["created_at"]
            pools.dates.update(str(moment.date()) for moment in (created, created.astimezone(at.tzinfo)))
            for path, value in _scalars_in(person["attributes"]):
                pools.paths.add(path)
                pools.add_attribute_value(value)
            for name in EVENT_NAMES:
                for days in WINDOWS:
                    counted = [
                        total
                        for event, hours, total in person["events"]
                        if event == name and 0 <= hours and (days is None or hours <= days * 24)
                    ]
                    pools.counts.update({len(counted), len(counted) + 1})
                    total = sum(_money(one) for one in counted)
                    pools.sums.update(float(total + step) for step in (Decimal("-0.01"), 0, Decimal("0.01")))
        return pools

    def add_attribute_value(self, value):
        if isinstance(value, (bool, dict, list)) or value is None:
            return
        if isinstance(value, (int, float)):
            if abs(value) < 1e299:
                self.numbers.add(value)
            return
        if value and _is_date_text(value):
            self.dates.add(value[:10])
        elif value and _is_number_text(value):
            self.numbers.add(float(value))
        elif value and len(value) != 10:
            self.words.add(value)


def _scalars_in(document, prefix=""):
    """(path, value) of every value in ``document``, objects walked into."""
    for key, value in document.items():
        yield prefix + key, value
        if isinstance(value, dict):
            yield from _scalars_in(value, f"{prefix}{key}.")


def _is_date_text(text):
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return text[4:5] == "-" and text[:4].isdigit()


def _is_number_text(text):
    return bool(re.search(NUMBER_TEXT, text))


def _money(total) -> Decimal:
    if isinstance(total, bool) or total is None:
        return Decimal(0)
    if isinstance(total, (int, float)):
        return Decimal(str(total)) if abs(total) < 1e9 else Decimal(0)
    return Decimal(total) if _is_number_text(total) and abs(float(total)) < 1e9 else Decimal(0)


# Conditions --------------------------------------------------------------------------


def leaf(name, op, value, **more):
    return {"field": name, "op": op, "value": value, **more}


def ordered_conditions(name, values):
    return st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), values).map(lambda c: leaf(name, *c)),
        st.tuples(st.sampled_from(["in", "not_in"]), st.lists(values, min_size=1, max_size=3)).map(
            lambda c: leaf(name, *c)
        ),
        st.lists(values, min_size=2, max_size=2).map(sorted).map(lambda low_high: leaf(name, "between", low_high)),
        st.booleans().map(lambda present: leaf(name, "exists", present)),
    )


def from_pool(pool):
    return st.sampled_from(sorted(pool, key=repr))


@st.composite
def text_conditions(draw, pools):
    name = draw(st.sampled_from(sorted(pools.texts)))
    values = from_pool(pools.texts[name])
    op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "contains", "exists"]))
    if op == "exists":
        return leaf(name, op, draw(st.booleans()))
    if op == "contains":
        return leaf(
            name,
            op,
            draw(st.one_of(st.sampled_from(["a", "A", "GMAIL", "@gmail.", "ë", "京", "shop", "/", "+1"]), values)),
        )
    if op in ("in", "not_in"):
        return leaf(name, op, draw(st.lists(values, min_size=1, max_size=3)))
    return leaf(name, op, draw(values))


@st.composite
def attribute_conditions(draw, pools):
    name = "attributes." + draw(from_pool(pools.paths))
    kind = draw(st.sampled_from(["number", "date", "text", "bool", "exists"]))
    if kind == "exists":
        return leaf(name, "exists", draw(st.booleans()))
    if kind == "bool":
        return leaf(name, draw(st.sampled_from(["is", "eq", "ne"])), draw(st.booleans()))
    numbers, words = from_pool(pools.numbers), from_pool(pools.words)
    if kind == "text":
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "contains"]))
        if op in ("in", "not_in"):
            return leaf(
                name, op, draw(st.lists(st.one_of(words, numbers, from_pool(pools.dates)), min_size=1, max_size=3))
            )
        return leaf(name, op, draw(words))
    values = numbers if kind == "number" else from_pool(pools.dates)
    return draw(ordered_conditions(name, values).filter(lambda c: c["op"] != "exists"))


@st.composite
def event_conditions(draw, pools):
    name = draw(st.sampled_from(EVENT_NAMES))
    if draw(st.booleans()):
        field_name = "orders.count" if name == "order_placed" and draw(st.booleans()) else f"events.{name}.count"
        values = from_pool(pools.counts)
    else:
        field_name = "orders.total" if name == "order_placed" and draw(st.booleans()) else f"events.{name}.sum.total"
        values = from_pool(pools.sums)
    condition = draw(ordered_conditions(field_name, values).filter(lambda c: c["op"] != "exists"))
    days = draw(st.sampled_from(WINDOWS))
    return condition if days is None else {**condition, "days": days}


def condition_lists(pools):
    dates = from_pool(pools.dates)
    leaves = st.one_of(
        text_conditions(pools),
        ordered_conditions("date_of_birth", dates),
        ordered_conditions("created_at", dates),
        ordered_conditions("age", from_pool(pools.ages)),
        attribute_conditions(pools),
        attribute_conditions(pools),
        attribute_conditions(pools),
        st.tuples(st.sampled_from(["consent.email", "consent.sms"]), st.booleans()).map(
            lambda c: leaf(c[0], "is", c[1])
        ),
        st.tuples(
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from([*SEGMENTS, *SEGMENTS.values()]), min_size=1, max_size=2),
        ).map(lambda c: leaf("segment", *c)),
        st.tuples(
            st.sampled_from(["in", "not_in"]), st.lists(st.sampled_from(ZONE_VALUES), min_size=1, max_size=3)
        ).map(lambda c: leaf("zone", *c)),
        event_conditions(pools),
        event_conditions(pools),
    )
    trees = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda options: {"any": options}),
            children.map(lambda negated: {"not": negated}),
        ),
        max_leaves=3,
    )
    # Mostly one condition: several ANDed together often select nobody, and prove little.
    single = leaves.map(lambda one: [one])
    return st.one_of(single, single, single, st.lists(trees, max_size=3))


@given(data=st.data())
@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_matches_and_the_bulk_query_select_the_same_customers(data):
    at, people = data.draw(worlds(), label="world")
    condition_sets = data.draw(
        st.lists(condition_lists(Pools.of(at, people)), min_size=20, max_size=40), label="conditions"
    )
    with rolled_back():
        build(at, people)
        customers = list(Customer.objects.all())
        for conditions in condition_sets:
            note(f"conditions: {conditions}")
            assert problems_in(conditions) == []
            one_by_one = {customer.pk for customer in customers if matches(conditions, customer, at=at)}
            in_one_query = set(filter_customers(Customer.objects.all(), conditions, at=at).values_list("pk", flat=True))
            assert one_by_one == in_one_query, (
                f"at {at}, matches() chose {sorted(one_by_one)} and the query {sorted(in_one_query)} for {conditions}"
            )
