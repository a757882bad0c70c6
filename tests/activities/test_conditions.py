"""The condition language, field by field and op by op.

Every case is asked of both sides — ``matches()`` for each customer and the one
query of ``filter_customers()`` — through ``selected()``, which fails when they differ.
"""

from datetime import UTC, date, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from activities.conditions import (
    InvalidConditions,
    describe,
    evaluate_event_conditions,
    event_condition_problems,
    filter_customers,
    matches,
    problems_in,
    to_q,
)
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Customer, Event, Segment
from customers.segments import add as add_to_segment

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
_numbers = count(1)


def customer(**fields) -> Customer:
    n = next(_numbers)
    return Customer.objects.create(**{"email": f"c{n}@example.com", **fields})


def selected(conditions, *, at=NOW) -> set:
    """The customers the conditions select; fails unless both sides select the same ones."""
    in_python = {one.pk for one in Customer.objects.all() if matches(conditions, one, at=at)}
    in_query = set(filter_customers(Customer.objects.all(), conditions, at=at).values_list("pk", flat=True))
    assert in_python == in_query, f"matches() chose {in_python}, the query {in_query}"
    return in_python


def where(field, op, value, **more):
    return [{"field": field, "op": op, "value": value, **more}]


def order(who, *, days_ago, **properties):
    return Event.objects.create(
        customer=who, name="order_placed", properties=properties, occurred_at=NOW - timedelta(days=days_ago)
    )


def consent_record(who, channel, action, *, minutes_ago):
    return ConsentRecord.objects.create(
        customer=who,
        channel=channel,
        action=action,
        source=ConsentSource.FORM,
        recorded_at=NOW - timedelta(minutes=minutes_ago),
    )


# Customer fields -----------------------------------------------------------------------


def test_country_in_selects_customers_of_those_countries():
    us, it, _fr = customer(country="US"), customer(country="IT"), customer(country="FR")
    assert selected(where("country", "in", ["US", "IT"])) == {us.pk, it.pk}


def test_a_country_written_in_small_letters_means_the_code():
    it = customer(country="IT")
    assert selected(where("country", "eq", "it")) == {it.pk}


def test_ne_includes_customers_without_the_field():
    _us, it, nowhere = customer(country="US"), customer(country="IT"), customer(country="")
    assert selected(where("country", "ne", "US")) == {it.pk, nowhere.pk}
    assert selected(where("country", "not_in", ["US", "IT"])) == {nowhere.pk}


def test_exists_false_finds_empty_and_null_fields():
    known, unknown = customer(external_id="shop-1"), customer(external_id=None)
    blank = customer(external_id="")
    assert selected(where("external_id", "exists", False)) == {unknown.pk, blank.pk}
    assert selected(where("external_id", "exists", True)) == {known.pk}


def test_text_compares_exactly_case_included():
    ann, lower = customer(first_name="Ann"), customer(first_name="ann")
    assert selected(where("first_name", "eq", "Ann")) == {ann.pk}
    assert selected(where("first_name", "in", ["ann", "Bob"])) == {lower.pk}


def test_contains_finds_text_inside_case_included():
    gmail, shouting = customer(email="ann@gmail.com"), customer(email="BOB@GMAIL.COM")
    customer(email="carl@example.com")
    assert selected(where("email", "contains", "@gmail.")) == {gmail.pk}
    assert selected(where("email", "contains", "GMAIL")) == {shouting.pk}


def test_date_of_birth_between_includes_both_ends():
    first, last = customer(date_of_birth=date(1990, 1, 1)), customer(date_of_birth=date(1999, 12, 31))
    customer(date_of_birth=date(2000, 1, 1))
    customer(date_of_birth=None)
    assert selected(where("date_of_birth", "between", ["1990-01-01", "1999-12-31"])) == {first.pk, last.pk}


def test_created_at_compares_the_date_in_utc():
    late = customer()
    Customer.objects.filter(pk=late.pk).update(created_at=datetime(2027, 2, 28, 23, 30, tzinfo=UTC))
    early = customer()
    Customer.objects.filter(pk=early.pk).update(created_at=datetime(2027, 2, 28, 0, 0, tzinfo=UTC))
    later = customer()
    Customer.objects.filter(pk=later.pk).update(created_at=datetime(2027, 3, 1, 0, 0, tzinfo=UTC))

    assert selected(where("created_at", "eq", "2027-02-28")) == {late.pk, early.pk}
    assert selected(where("created_at", "gt", "2027-02-28")) == {later.pk}
    assert selected(where("created_at", "lte", "2027-02-28")) == {late.pk, early.pk}


# Age -----------------------------------------------------------------------------------


def test_age_counts_whole_years_and_the_birthday_itself():
    eighteen_today = customer(date_of_birth=date(2009, 3, 1))
    eighteen_tomorrow = customer(date_of_birth=date(2009, 3, 2))
    customer(date_of_birth=None)
    assert selected(where("age", "gte", 18)) == {eighteen_today.pk}
    assert selected(where("age", "lt", 18)) == {eighteen_tomorrow.pk}
    assert selected(where("age", "eq", 17)) == {eighteen_tomorrow.pk}


def test_age_of_a_29_february_birthday_turns_on_28_february_in_a_common_year():
    leapling = customer(date_of_birth=date(2000, 2, 29))
    on_the_28th = datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert selected(where("age", "eq", 27), at=on_the_28th) == {leapling.pk}
    assert selected(where("age", "eq", 26), at=on_the_28th - timedelta(days=1)) == {leapling.pk}


def test_age_is_counted_on_the_date_of_at_in_its_own_zone():
    born = customer(date_of_birth=date(2009, 3, 2))
    # 1 March 20:00 UTC is already 2 March in Sydney: the 18th birthday there.
    moment = datetime(2027, 3, 1, 20, 0, tzinfo=UTC)
    assert selected(where("age", "gte", 18), at=moment) == set()
    assert selected(where("age", "gte", 18), at=moment.astimezone(ZoneInfo("Australia/Sydney"))) == {born.pk}


def test_age_between_and_in():
    twenty, thirty, forty = (customer(date_of_birth=date(2027 - years, 1, 1)) for years in (20, 30, 40))
    assert selected(where("age", "between", [20, 30])) == {twenty.pk, thirty.pk}
    assert selected(where("age", "in", [20, 40])) == {twenty.pk, forty.pk}
    assert selected(where("age", "ne", 30)) == {twenty.pk, forty.pk}


# Attributes ----------------------------------------------------------------------------


def test_numbers_compare_as_numbers():
    rich, poor = customer(attributes={"loyalty_points": 1200}), customer(attributes={"loyalty_points": 999.5})
    assert selected(where("attributes.loyalty_points", "gte", 1000)) == {rich.pk}
    assert selected(where("attributes.loyalty_points", "lt", 1000)) == {poor.pk}
    assert selected(where("attributes.loyalty_points", "between", [999.5, 1200])) == {rich.pk, poor.pk}


def test_text_written_as_a_decimal_counts_as_a_number():
    money, code = customer(attributes={"balance": "59.90"}), customer(attributes={"balance": "007"})
    assert selected(where("attributes.balance", "gt", 20)) == {money.pk}
    assert selected(where("attributes.balance", "eq", 59.9)) == {money.pk}
    assert selected(where("attributes.balance", "eq", "007")) == {code.pk}


def test_a_number_is_not_equal_to_text_in_the_condition():
    five = customer(attributes={"level": 5})
    assert selected(where("attributes.level", "eq", "5")) == set()
    assert selected(where("attributes.level", "eq", 5)) == {five.pk}


def test_a_missing_attribute_fails_every_comparison_but_ne_and_exists_false():
    has, missing, null = (
        customer(attributes={"plan": "gold"}),
        customer(attributes={}),
        customer(attributes={"plan": None}),
    )
    assert selected(where("attributes.plan", "eq", "gold")) == {has.pk}
    assert selected(where("attributes.plan", "ne", "gold")) == {missing.pk, null.pk}
    assert selected(where("attributes.plan", "exists", False)) == {missing.pk, null.pk}
    assert selected(where("attributes.plan", "gt", 3)) == set()
    assert selected([{"not": {"field": "attributes.plan", "op": "gt", "value": 3}}]) == {has.pk, missing.pk, null.pk}


def test_booleans_compare_with_is_and_are_not_numbers():
    yes, no, one = (
        customer(attributes={"vip": True}),
        customer(attributes={"vip": False}),
        customer(attributes={"vip": 1}),
    )
    assert selected(where("attributes.vip", "is", True)) == {yes.pk}
    assert selected(where("attributes.vip", "is", False)) == {no.pk}
    assert selected(where("attributes.vip", "gte", 0)) == {one.pk}


def test_numbers_too_large_to_compare_fail_every_comparison():
    customer(attributes={"points": 1e300}), customer(attributes={"points": 10**400})
    assert selected(where("attributes.points", "gt", 0)) == set()


def test_dates_in_attributes_compare_by_their_date_part():
    day, moment = (
        customer(attributes={"delivery_date": "2024-05-01"}),
        customer(attributes={"delivery_date": "2024-05-01T18:00:00+02:00"}),
    )
    later = customer(attributes={"delivery_date": "2024-06-01"})
    for not_a_date in ("soon", "5", "2024-05", 20240601):
        customer(attributes={"delivery_date": not_a_date})
    assert selected(where("attributes.delivery_date", "eq", "2024-05-01")) == {day.pk, moment.pk}
    assert selected(where("attributes.delivery_date", "gt", "2024-05-01")) == {later.pk}
    assert selected(where("attributes.delivery_date", "lt", "2024-06-01")) == {day.pk, moment.pk}


def test_nested_attributes_are_reached_by_dots_and_arrays_are_not_indexed():
    golf = customer(attributes={"car": {"model": "Golf"}, "items": ["a"]})
    customer(attributes={"car": "Golf", "items": {"0": "b"}})
    assert selected(where("attributes.car.model", "eq", "Golf")) == {golf.pk}
    assert selected(where("attributes.items.0", "exists", True)) != {golf.pk}


def test_contains_on_an_attribute_looks_inside_text_only():
    gold = customer(attributes={"plan": "gold yearly"})
    customer(attributes={"plan": ["gold"]})
    assert selected(where("attributes.plan", "contains", "gold")) == {gold.pk}


# Consent, segments, zones --------------------------------------------------------------


def test_consent_is_the_latest_record_for_the_channel():
    granted, revoked, never = customer(), customer(), customer()
    consent_record(granted, Channel.SMS, ConsentAction.GRANTED, minutes_ago=5)
    consent_record(revoked, Channel.SMS, ConsentAction.GRANTED, minutes_ago=10)
    consent_record(revoked, Channel.SMS, ConsentAction.REVOKED, minutes_ago=5)
    consent_record(never, Channel.EMAIL, ConsentAction.GRANTED, minutes_ago=5)

    assert selected(where("consent.sms", "is", True)) == {granted.pk}
    assert selected(where("consent.sms", "is", False)) == {revoked.pk, never.pk}
    assert selected(where("consent.email", "is", True)) == {never.pk}


def test_segment_membership_by_slug_or_name():
    vip, plain = customer(), customer()
    add_to_segment(Segment.objects.create(name="Very important", slug="vip"), [vip])
    assert selected(where("segment", "in", ["vip"])) == {vip.pk}
    assert selected(where("segment", "in", ["Very important"])) == {vip.pk}
    assert selected(where("segment", "not_in", ["vip"])) == {plain.pk}


def test_zone_is_the_customers_own_zone_else_their_countrys():
    tokyo = customer(country="US", timezone="Asia/Tokyo")
    japan = customer(country="JP")
    customer(country="JP", timezone="Europe/Rome")
    customer(country="")
    assert selected(where("zone", "in", ["Asia"])) == {tokyo.pk, japan.pk}
    assert selected(where("zone", "in", ["Asia/Tokyo"])) == {tokyo.pk, japan.pk}


def test_without_zone_or_country_the_phone_numbers_zone_counts():
    tokyo_number = customer(country="", phone="+81312345678")
    customer(country="", phone="")
    assert selected(where("zone", "in", ["Asia"])) == {tokyo_number.pk}


def test_a_country_with_zones_in_two_areas_is_in_both():
    russia = customer(country="RU")
    assert selected(where("zone", "in", ["Asia"])) == {russia.pk}
    assert selected(where("zone", "in", ["Europe"])) == {russia.pk}


def test_zone_not_in_keeps_customers_of_unknown_zone():
    customer(country="AU")
    rome, unknown = customer(country="IT"), customer(country="")
    assert selected(where("zone", "not_in", ["Asia", "Australia"])) == {rome.pk, unknown.pk}


# Behaviour from events -----------------------------------------------------------------


def test_placed_an_order_in_the_last_30_days():
    recent, old, never = customer(), customer(), customer()
    order(recent, days_ago=3)
    order(old, days_ago=45)
    assert selected(where("orders.count", "gte", 1, days=30)) == {recent.pk}
    assert selected(where("events.order_placed.count", "eq", 0, days=30)) == {old.pk, never.pk}


def test_events_after_the_moment_do_not_count():
    later = customer()
    order(later, days_ago=-1)
    assert selected(where("orders.count", "gte", 1)) == set()


def test_order_count_compares_as_a_whole_number():
    two, three = customer(), customer()
    for _ in range(2):
        order(two, days_ago=1)
    for _ in range(3):
        order(three, days_ago=1)
    assert selected(where("orders.count", "eq", 2)) == {two.pk}
    assert selected(where("orders.count", "gt", 2)) == {three.pk}
    assert selected(where("orders.count", "lt", 3)) == {two.pk}
    assert selected(where("orders.count", "gt", 2.5)) == {three.pk}
    assert selected(where("orders.count", "lte", 2.5)) == {two.pk}
    assert selected(where("orders.count", "between", [2, 3])) == {two.pk, three.pk}


def test_order_total_sums_numbers_and_decimal_text_over_the_window():
    big, small = customer(), customer()
    order(big, days_ago=1, total="59.90")
    order(big, days_ago=2, total=40.1)
    order(big, days_ago=3, total="free")
    order(big, days_ago=60, total=500)
    order(small, days_ago=1, total=20)
    assert selected(where("orders.total", "eq", 100, days=30)) == {big.pk}
    assert selected(where("events.order_placed.sum.total", "lt", 50, days=30)) == {small.pk}
    assert selected(where("orders.total", "gte", 600)) == {big.pk}


# Composition ---------------------------------------------------------------------------


def test_any_holds_when_one_option_holds_and_not_negates():
    us, it, fr = customer(country="US"), customer(country="IT", date_of_birth=date(2000, 1, 1)), customer(country="FR")
    either = [{"any": [{"field": "country", "op": "eq", "value": "US"}, {"field": "age", "op": "gte", "value": 18}]}]
    assert selected(either) == {us.pk, it.pk}
    assert selected([{"not": either[0]}]) == {fr.pk}
    assert selected([{"not": [{"field": "country", "op": "eq", "value": "US"}]}]) == {it.pk, fr.pk}


def test_no_conditions_select_everyone():
    ann, bob = customer(), customer()
    assert selected([]) == {ann.pk, bob.pk}


def test_the_bulk_query_is_one_query_whatever_the_conditions(django_assert_num_queries):
    for _ in range(3):
        order(customer(country="US", attributes={"points": 5}), days_ago=1, total=10)
    Segment.objects.create(name="VIP", slug="vip")
    conditions = [
        {"field": "attributes.points", "op": "gt", "value": 1},
        {"field": "consent.sms", "op": "is", "value": False},
        {"field": "segment", "op": "not_in", "value": ["vip"]},
        {"field": "orders.count", "op": "between", "value": [1, 4], "days": 7},
        {"field": "orders.total", "op": "gt", "value": 5},
        {"field": "zone", "op": "in", "value": ["America"]},
    ]
    with django_assert_num_queries(1):
        assert len(list(filter_customers(Customer.objects.all(), conditions, at=NOW))) == 3


def test_to_q_can_be_combined_with_other_filters():
    ann = customer(country="IT")
    customer(country="IT")
    assert list(Customer.objects.filter(to_q(where("country", "eq", "IT"), at=NOW), pk=ann.pk)) == [ann]


# Event properties ----------------------------------------------------------------------


def test_event_conditions_compare_properties():
    conditions = where("properties.total", "gte", 20)
    assert evaluate_event_conditions(conditions, {"total": "59.90"}) is True
    assert evaluate_event_conditions(conditions, {"total": 19}) is False
    assert evaluate_event_conditions(conditions, {}) is False
    assert evaluate_event_conditions(where("properties.cart.items", "gt", 2), {"cart": {"items": 3}}) is True


def test_event_conditions_test_only_properties():
    assert event_condition_problems(where("country", "eq", "US")) == [
        "Condition 1 (country): unknown field 'country' (did you mean 'properties.country'?): conditions on an "
        "event test its properties, e.g. properties.total."
    ]
    assert event_condition_problems(where("properties.total", "gte", 20)) == []


# Validation ----------------------------------------------------------------------------


def test_valid_conditions_have_no_problems():
    Segment.objects.create(name="VIP", slug="vip")
    assert (
        problems_in(
            [
                {"field": "country", "op": "in", "value": ["US", "IT"]},
                {"field": "age", "op": "between", "value": [18, 30]},
                {"field": "segment", "op": "in", "value": ["vip"]},
                {"field": "zone", "op": "not_in", "value": ["Asia", "Australia/Sydney"]},
                {
                    "any": [
                        {"field": "orders.count", "op": "eq", "value": 0, "days": 30},
                        {"not": {"field": "attributes.vip", "op": "is", "value": True}},
                    ]
                },
            ]
        )
        == []
    )


def test_validation_names_every_problem_with_what_to_do():
    problems = problems_in(
        [
            {"field": "contry", "op": "eq", "value": "US"},
            {"field": "country", "op": "equals", "value": "US"},
            {"field": "age", "op": "between", "value": [30]},
            {"field": "age", "op": "gte", "value": "18"},
            {"field": "country", "op": "gt", "value": "US"},
            {"field": "segment", "op": "in", "value": ["nobody-made-this"]},
            {"field": "zone", "op": "in", "value": ["Asia/Tokio"]},
            {"field": "country", "op": "in", "value": []},
            {"field": "country", "op": "eq", "value": "US", "days": 3},
            {"field": "attributes.points", "op": "gt", "value": "many"},
            {"field": "attributes.points", "op": "between", "value": [10, 1]},
            {"any": []},
        ]
    )
    assert problems == [
        "Condition 1 (contry): unknown field 'contry' (did you mean 'country'?). Fields: email, phone, country, "
        "language, timezone, first_name, last_name, external_id, date_of_birth, created_at, age, "
        "attributes.<name>, consent.email, consent.sms, segment, zone, orders.count, orders.total, "
        "events.<name>.count, events.<name>.sum.<property>.",
        "Condition 2 (country): unknown op 'equals'. Ops: eq, ne, in, not_in, gt, gte, lt, lte, between, exists, "
        "contains, is.",
        "Condition 3 (age): 'between' needs two values, low then high, e.g. [18, 30].",
        "Condition 4 (age): age is counted in whole years from 0 to 200: write 30, not '18'.",
        "Condition 5 (country): 'gt' does not apply here; use one of eq, ne, in, not_in, contains, exists.",
        "Condition 6 (segment): no segment 'nobody-made-this': create it first, or use one of: none yet.",
        "Condition 7 (zone): 'Asia/Tokio': not a time zone or zone area; write areas such as Asia, Australia, "
        "America, and zones such as Asia/Tokyo.",
        'Condition 8 (country): \'in\' needs a list of one or more values, e.g. ["US", "IT"].',
        "Condition 9 (country): 'days' only applies to orders and events fields (a window back from now).",
        "Condition 10 (attributes.points): only numbers and dates (YYYY-MM-DD) have an order; 'many' is neither.",
        "Condition 11 (attributes.points): 'between' takes the low value first: [1, 10].",
        "Condition 12: 'any' needs a list of one or more conditions, any of which may hold.",
    ]


def test_conditions_that_are_not_a_list_are_refused():
    assert problems_in({"field": "country", "op": "eq", "value": "US"}) == [
        'Conditions are a list, e.g. [{"field": "country", "op": "in", "value": ["US"]}].'
    ]


def test_evaluating_invalid_conditions_raises_with_the_problems():
    with pytest.raises(InvalidConditions) as raised:
        to_q(where("age", "gte", "old"), at=NOW)
    assert raised.value.problems == [
        "Condition 1 (age): age is counted in whole years from 0 to 200: write 30, not 'old'."
    ]


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="aware datetime"):
        matches([], customer(), at=datetime(2027, 3, 1))


def test_describe_reads_as_words():
    assert describe(
        [
            {"field": "country", "op": "in", "value": ["US", "IT"]},
            {"field": "orders.count", "op": "eq", "value": 0, "days": 30},
            {
                "any": [
                    {"field": "age", "op": "between", "value": [18, 30]},
                    {"not": {"field": "attributes.vip", "op": "exists", "value": True}},
                ]
            },
        ]
    ) == (
        "country is one of US, IT and orders.count in the last 30 days is 0 and "
        "(age is between 18 and 30 or not (attributes.vip is set))"
    )


@pytest.mark.parametrize(
    "conditions_",
    [
        [{"field": "attributes.points", "op": "gt", "value": 10**400}],
        [{"field": "orders.total", "op": "gt", "value": 10**400}],
        [{"field": "orders.count", "op": "gte", "value": 1, "days": 10**6}],
    ],
)
def test_numbers_beyond_any_float_and_windows_beyond_year_one_are_problems_not_errors(conditions_):
    problems = problems_in(conditions_)
    assert len(problems) == 1 and (
        "out of range" in problems[0] or "36,500" in problems[0] or "compares with a number" in problems[0]
    )
