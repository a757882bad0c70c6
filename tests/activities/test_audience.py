"""The audience estimate: who a target matches now, and whom a channel's consent lets it reach.

``matching`` agrees with ``conditions.matches()`` customer by customer; ``reachable``
agrees with the send policy's first checks (address, suppression, the latest consent
record); the number of statements does not grow with the customers; and whatever a
target holds, the answer is problems or counts, never an exception.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities import audience
from activities.conditions import matches
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Customer, Segment
from customers.segments import add as add_to_segment
from messaging import policy
from messaging.models import Category, Suppression, SuppressionReason
from messaging.policy import Action
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 6, 2, 12, 0, tzinfo=UTC)
BIRTHDAY_SMS = [
    {"field": "consent.sms", "op": "is", "value": True},
    {"field": "country", "op": "in", "value": ["AU", "NZ"]},
    {"field": "age", "op": "gte", "value": 18},
]
AUSTRALIA = [{"field": "country", "op": "in", "value": ["AU"]}]


def consent(customer, channel, *actions, start=NOW - timedelta(days=30)):
    """Consent records for ``customer`` in the order given, a day apart."""
    for day, action in enumerate(actions):
        ConsentRecord.objects.create(
            customer=customer,
            channel=channel,
            action=action,
            source=ConsentSource.FORM,
            recorded_at=start + timedelta(days=day),
        )


def population() -> list[Customer]:
    """Customers on every side of the birthday SMS target and of the channel's checks."""
    granted, revoked = ConsentAction.GRANTED, ConsentAction.REVOKED
    people = []
    for n, (country, born, phone, email, sms, mail) in enumerate(
        [
            ("AU", "1990-01-01", "+61412345678", "ann@example.com", [granted], [granted]),
            ("AU", "2009-06-02", "+61412345679", "bob@example.com", [granted], []),  # 18 today
            ("AU", "2009-06-03", "+61412345670", "cat@example.com", [granted], []),  # 18 tomorrow
            ("NZ", "1980-05-05", "", "dan@example.com", [granted], [revoked]),  # no phone
            ("NZ", "1970-07-07", "+6421234567", "", [granted, revoked], [granted]),  # revoked later
            ("NZ", "1975-07-07", "+6421234568", "Eve@Example.com", [revoked, granted], [granted]),  # granted again
            ("AU", None, "+61412345671", "fay@example.com", [granted], [granted]),  # no date of birth
            ("US", "1960-01-01", "+12125550100", "gus@example.com", [granted], [granted]),
            ("IT", "2000-02-29", "+393471234567", "hal@example.com", [], [granted]),
        ]
    ):
        customer = factories.customer(country=country, date_of_birth=born, phone=phone, email=email, first_name=f"P{n}")
        consent(customer, Channel.SMS, *sms)
        consent(customer, Channel.EMAIL, *mail)
        people.append(customer)
    Suppression.objects.create(channel=Channel.EMAIL, address="eve@example.com", reason=SuppressionReason.BOUNCE)
    return people


def matched_in_python(target, at=NOW) -> list[Customer]:
    return [customer for customer in Customer.objects.all() if matches(target, customer, at=at)]


def not_blocked(customers, channel, category, at=NOW) -> int:
    """How many of ``customers`` the send policy would not block (it may defer them)."""
    return sum(policy.decide(customer, channel, category, at).action != Action.BLOCK for customer in customers)


# What it counts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        BIRTHDAY_SMS,
        AUSTRALIA,
        [],
        [{"field": "age", "op": "between", "value": [18, 40]}, {"field": "consent.email", "op": "is", "value": False}],
        [
            {
                "any": [
                    {"field": "country", "op": "eq", "value": "us"},
                    {"not": {"field": "phone", "op": "exists", "value": True}},
                ]
            }
        ],
    ],
)
def test_matching_is_the_number_of_customers_matches_accepts(target):
    population()

    estimate = audience.estimate(target, at=NOW)

    assert estimate.matching == len(matched_in_python(target))
    assert estimate.problems == ()


@pytest.mark.parametrize(
    ("channel", "category"),
    [
        (Channel.SMS, Category.MARKETING),
        (Channel.EMAIL, Category.MARKETING),
        (Channel.SMS, Category.TRANSACTIONAL),
        (Channel.EMAIL, Category.TRANSACTIONAL),
    ],
)
def test_reachable_is_the_number_of_matching_customers_the_send_policy_would_not_block(channel, category):
    population()
    target = [{"field": "country", "op": "in", "value": ["AU", "NZ"]}]

    estimate = audience.estimate(target, channel=channel, category=category, at=NOW)

    assert estimate.reachable == not_blocked(matched_in_python(target), channel, category)


def test_birthday_sms_target_matches_adults_in_australia_and_new_zealand_with_sms_consent_now():
    population()

    estimate = audience.estimate(BIRTHDAY_SMS, channel="sms", at=NOW)

    # ann, bob (18 today), dan (no phone), eve (granted again); not cat (17), the revoked one, fay (no birth date)
    assert (estimate.matching, estimate.reachable) == (4, 3)


def test_age_is_counted_now_when_no_moment_is_given():
    population()

    with time_machine.travel(NOW, tick=False):
        today = audience.estimate(BIRTHDAY_SMS, channel="sms")
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        tomorrow = audience.estimate(BIRTHDAY_SMS, channel="sms")

    assert tomorrow.matching == today.matching + 1  # cat turns 18


def test_consent_granted_then_revoked_is_matched_by_country_but_not_reachable():
    customer = factories.customer(country="AU", phone="+61412345678")
    consent(customer, Channel.SMS, ConsentAction.GRANTED, ConsentAction.REVOKED)

    estimate = audience.estimate(AUSTRALIA, channel="sms", at=NOW)

    assert (estimate.matching, estimate.reachable) == (1, 0)


def test_consent_revoked_then_granted_again_is_reachable():
    customer = factories.customer(country="AU", phone="+61412345678")
    consent(customer, Channel.SMS, ConsentAction.REVOKED, ConsentAction.GRANTED)

    assert audience.estimate(AUSTRALIA, channel="sms", at=NOW).reachable == 1


def test_consent_on_the_other_channel_does_not_make_a_customer_reachable():
    customer = factories.customer(country="AU", phone="+61412345678")
    consent(customer, Channel.EMAIL, ConsentAction.GRANTED)

    assert audience.estimate(AUSTRALIA, channel="sms", at=NOW).reachable == 0


def test_suppressed_email_address_is_not_reachable_whatever_its_case():
    customer = factories.customer(country="AU", email="Ann@Example.COM")
    consent(customer, Channel.EMAIL, ConsentAction.GRANTED)
    Suppression.objects.create(channel=Channel.EMAIL, address="ann@example.com", reason=SuppressionReason.COMPLAINT)

    marketing = audience.estimate(AUSTRALIA, channel="email", at=NOW)
    transactional = audience.estimate(AUSTRALIA, channel="email", category="transactional", at=NOW)

    assert (marketing.matching, marketing.reachable, transactional.reachable) == (1, 0, 0)


def test_customer_without_a_phone_is_matched_but_not_reachable_by_sms():
    customer = factories.customer(country="AU", phone="")
    consent(customer, Channel.SMS, ConsentAction.GRANTED)

    estimate = audience.estimate(AUSTRALIA, channel="sms", at=NOW)

    assert (estimate.matching, estimate.reachable) == (1, 0)


def test_transactional_needs_the_address_but_no_consent():
    factories.customer(country="AU", phone="+61412345678")
    factories.customer(country="AU", phone="")

    estimate = audience.estimate(AUSTRALIA, channel="sms", category="transactional", at=NOW)

    assert (estimate.matching, estimate.reachable) == (2, 1)


def test_without_a_channel_only_the_matching_customers_are_counted():
    factories.customer(country="AU")

    assert audience.estimate(AUSTRALIA, at=NOW) == audience.Estimate(matching=1, reachable=None)


def test_segment_and_orders_conditions_are_counted():
    members = [factories.customer(country="AU") for _ in range(3)]
    add_to_segment(Segment.objects.create(name="VIP", slug="vip"), members[:2])
    target = [{"field": "segment", "op": "in", "value": ["vip"]}, {"field": "orders.count", "op": "gte", "value": 0}]

    assert audience.estimate(target, at=NOW).matching == 2


# What it answers for targets it cannot count -------------------------------------------


def test_an_invalid_target_comes_back_with_its_problems_and_no_counts():
    estimate = audience.estimate([{"field": "contry", "op": "in", "value": ["AU"]}], channel="sms", at=NOW)

    assert (estimate.matching, estimate.reachable) == (None, None)
    assert "unknown field 'contry' (did you mean 'country'?)" in estimate.problems[0]


def test_an_unknown_channel_or_category_is_a_problem():
    assert "'fax' is not a channel" in audience.estimate([], channel="fax", at=NOW).problems[0]
    assert "'spam' is not a category" in audience.estimate([], channel="sms", category="spam", at=NOW).problems[0]


@pytest.mark.parametrize(
    "target",
    [
        None,
        "everyone",
        {"field": "country", "op": "eq", "value": "AU"},
        [[]],
        [{"field": "age", "op": "gte", "value": 10**400}],
        [{"field": "age", "op": "gte", "value": float("nan")}],
        [{"field": "orders.count", "op": "gte", "value": float("inf")}],
        [{"field": "orders.count", "op": "gte", "value": 10**11}],
        [{"field": "orders.count", "op": "gte", "value": 1, "days": 10**12}],
        [{"field": "orders.count", "op": "gte", "value": 1, "days": 10**8}],
        [{"field": "orders.total", "op": "gt", "value": 1e308}],
        [{"field": "attributes.points", "op": "gt", "value": 10**400}],
        [{"field": "attributes.points", "op": "gt", "value": 1e299}],
        [{"field": "attributes.points", "op": "eq", "value": float("nan")}],
        [{"field": "attributes.points", "op": "in", "value": [1, float("-inf")]}],
        [{"field": "country", "op": "eq", "value": "\ud83c"}],
        [{"field": "first_name", "op": "contains", "value": "Ann\udfff"}],
        [{"field": "attributes.\ud800name", "op": "exists", "value": True}],
        [{"field": "attributes.tier", "op": "eq", "value": "gold\x00"}],
        [{"field": "segment", "op": "in", "value": ["\udc00"]}],
        [{"field": "segment", "op": "in", "value": ["no-such-segment"]}],
        [{"field": "date_of_birth", "op": "eq", "value": "9999-12-31"}],
        [{"field": "created_at", "op": "gt", "value": "9999-12-31"}],
        [{"field": "age", "op": "lte", "value": 200}],
        [{"field": "zone", "op": "in", "value": ["Mars"]}],
        [{"field": "email", "op": "eq", "value": "x" * 100_000}],
    ],
)
def test_worst_targets_are_answered_with_problems_or_counts_never_an_exception(target):
    factories.customer(country="AU", date_of_birth="1990-01-01", attributes={"points": 5, "tier": "gold"})

    estimate = audience.estimate(target, channel="sms", at=NOW)

    if estimate.problems:
        assert (estimate.matching, estimate.reachable) == (None, None)
        assert all(isinstance(problem, str) and problem for problem in estimate.problems)
    else:
        assert isinstance(estimate.matching, int) and isinstance(estimate.reachable, int)


def test_a_lone_surrogate_is_named_as_text_to_type_again():
    estimate = audience.estimate([{"field": "country", "op": "eq", "value": "A\ud83c"}], at=NOW)

    assert estimate.problems == (
        "'A\\ud83c' holds characters that are not text (a NUL or half of an emoji); type the value again.",
    )


def test_a_number_too_large_for_any_comparison_is_out_of_range():
    estimate = audience.estimate([{"field": "attributes.points", "op": "gt", "value": 10**400}], at=NOW)

    assert estimate.problems == (f"{str(10**400)[:40]}… is out of range: conditions compare with numbers below 1e300.",)


def test_a_window_of_days_reaching_before_the_calendar_is_a_problem():
    estimate = audience.estimate([{"field": "orders.count", "op": "gte", "value": 1, "days": 10**8}], at=NOW)

    assert estimate.matching is None and len(estimate.problems) == 1
    assert "days is a whole number of days back from now, from 1 to 36,500" in estimate.problems[0]


# What it costs -------------------------------------------------------------------------


def statements_for(target, channel) -> int:
    with CaptureQueriesContext(connection) as queries:
        audience.estimate(target, channel=channel, at=NOW)
    return len(queries)


@pytest.mark.parametrize("channel", ["sms", "email", None])
def test_the_statements_do_not_grow_with_the_customers(channel, django_assert_max_num_queries):
    population()
    few = statements_for(BIRTHDAY_SMS, channel)
    for n in range(30):
        customer = factories.customer(country="NZ", date_of_birth="1990-01-01", phone=f"+642123456{n:02}")
        consent(customer, Channel.SMS, ConsentAction.GRANTED)

    # One count; on PostgreSQL with its time limit set and put back, in a savepoint of its own.
    with django_assert_max_num_queries(1 if connection.vendor == "sqlite" else 5):
        many = audience.estimate(BIRTHDAY_SMS, channel=channel, at=NOW)

    assert statements_for(BIRTHDAY_SMS, channel) == few
    assert many.matching == 34


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the time limit and JIT are PostgreSQL's")
def test_the_time_limit_and_jit_setting_bind_the_count_only():
    def settings():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('jit')")
            return cursor.fetchone()

    before = settings()
    audience.estimate(AUSTRALIA, channel="sms", at=NOW)

    assert settings() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the time limit is PostgreSQL's")
def test_a_count_past_the_time_limit_is_stopped_and_named_as_a_problem(monkeypatch):
    Customer.objects.bulk_create(
        [Customer(email=f"c{n}@example.com", attributes={"note": "x" * 200}) for n in range(3_000)]
    )
    monkeypatch.setattr(audience, "ESTIMATE_TIMEOUT_MS", 1)
    slow = [{"field": f"attributes.note{n}", "op": "contains", "value": "y"} for n in range(20)]

    estimate = audience.estimate([{"any": slow}], channel="email", at=NOW)

    assert estimate == audience.Estimate(
        None,
        None,
        (
            "Counting this target took more than 0.001 s and was stopped; a condition on attributes or events over "
            "every customer is the usual cause.",
        ),
    )
    assert audience.estimate(AUSTRALIA, at=NOW).problems == ()  # the transaction goes on


# Overlap -------------------------------------------------------------------------------


def test_overlap_counts_the_customers_both_targets_match():
    population()
    adults = [{"field": "age", "op": "gte", "value": 18}]

    both = audience.overlap(BIRTHDAY_SMS, [{"field": "country", "op": "eq", "value": "NZ"}], at=NOW)

    assert both == 2  # dan and eve
    assert audience.overlap(AUSTRALIA, adults, at=NOW) == len(
        [one for one in matched_in_python(AUSTRALIA) if matches(adults, one, at=NOW)]
    )


def test_overlaps_tells_whether_any_customer_is_in_both():
    population()

    assert audience.overlaps(AUSTRALIA, BIRTHDAY_SMS, at=NOW) is True
    assert audience.overlaps(AUSTRALIA, [{"field": "country", "op": "eq", "value": "IT"}], at=NOW) is False


def test_a_target_that_cannot_be_evaluated_overlaps_nothing():
    population()
    invalid = [{"field": "country", "op": "gt", "value": "AU"}]

    assert audience.overlap(AUSTRALIA, invalid, at=NOW) == 0
    assert audience.overlaps(invalid, AUSTRALIA, at=NOW) is False
