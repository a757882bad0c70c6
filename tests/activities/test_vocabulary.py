"""The builder's vocabulary: event names with their counts, date fields, attribute keys,
condition fields and their operators, read from the site and from the code that decides."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from activities import conditions, vocabulary
from customers.events import emit
from customers.models import Segment
from tests import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- Event names ------------------------------------------------------------------------------


def test_known_events_count_the_last_30_days_and_keep_older_names_at_zero():
    customer = factories.customer()
    with time_machine.travel(NOW - timedelta(days=40), tick=False):
        emit(customer, "webinar_booked", {})
        emit(customer, "cart_updated", {})
    with time_machine.travel(NOW - timedelta(days=5), tick=False):
        emit(customer, "cart_updated", {})
        emit(customer, "cart_updated", {})
    with time_machine.travel(NOW, tick=False):
        counts = dict(vocabulary.known_events())
    assert counts["cart_updated"] == 2
    assert counts["webinar_booked"] == 0


def test_known_events_offer_the_storefront_signals_before_any_is_stored():
    events = {event.name: event for event in vocabulary.known_events(now=NOW)}
    for name in ("customer_registered", "order_placed", "cart_updated", "profile_updated", "consent_changed"):
        assert events[name].count == 0 and events[name].from_code


def test_known_events_come_most_frequent_first_and_mark_only_the_signals():
    customer = factories.customer()
    for _ in range(3):
        emit(customer, "webinar_booked", {})
    events = vocabulary.known_events()
    assert events[0] == ("webinar_booked", 3) and not events[0].from_code


def test_every_event_name_the_code_emits_is_known():
    """Reads the code for emit(customer, "<name>"), so a new one cannot be left out of the builder."""
    emitted = set()
    for folder in ("customers", "messaging", "activities", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            emitted |= set(re.findall(r"\bemit\(\s*\w+,\s*\"([a-z_]+)\"", path.read_text()))
    assert emitted and emitted <= vocabulary.signal_event_names()


def test_an_event_name_with_a_lone_surrogate_was_never_stored():
    assert not vocabulary.event_was_ever_stored("cart\udc80")


# --- Attributes: keys and dates ----------------------------------------------------------------


def test_date_fields_find_an_attribute_that_holds_dates_and_not_one_that_holds_text():
    factories.customer(attributes={"delivery_date": "2025-06-01", "car_model": "Panda"})
    factories.customer(attributes={"delivery_date": "2025-07-14T10:00:00Z", "car_model": "2025 edition"})
    fields = dict(vocabulary.date_fields())
    assert "date_of_birth" in fields
    assert fields["attributes.delivery_date"] == "Delivery date (attribute)"
    assert "attributes.car_model" not in fields


def test_an_attribute_that_only_sometimes_holds_a_date_is_not_a_date_field():
    factories.customer(attributes={"note": "2025-06-01"})
    factories.customer(attributes={"note": "call back"})
    factories.customer(attributes={"note": "VIP"})
    assert "attributes.note" not in dict(vocabulary.date_fields())


def test_attribute_keys_are_those_seen_on_the_latest_customers():
    factories.customer(attributes={"loyalty_points": 120, "car_model": "Panda"})
    factories.customer(attributes={"newsletter": True, "empty": None})
    assert vocabulary.attribute_keys() == ["car_model", "loyalty_points", "newsletter"]


def test_attributes_of_customers_outside_the_sample_are_not_read(monkeypatch):
    factories.customer(attributes={"old_key": 1})
    factories.customer(attributes={"new_key": 1})
    monkeypatch.setattr(vocabulary, "SAMPLE_SIZE", 1)
    assert vocabulary.attribute_keys() == ["new_key"]


# --- Condition fields and operators ------------------------------------------------------------


def test_condition_fields_cover_every_field_of_the_condition_language():
    offered = [field.field for field in vocabulary.condition_fields()]
    assert offered[: len(conditions.FIELDS)] == list(conditions.FIELDS)


def test_condition_fields_have_the_kind_their_values_compare_as():
    kinds = {field.field: field.kind for field in vocabulary.condition_fields()}
    assert kinds["first_name"] == "text"
    assert kinds["country"] == kinds["language"] == kinds["segment"] == kinds["zone"] == "choice"
    assert kinds["date_of_birth"] == kinds["created_at"] == "date"
    assert kinds["age"] == kinds["orders.count"] == kinds["events.<name>.count"] == "number"
    assert kinds["consent.sms"] == "bool"
    assert set(kinds.values()) <= {"text", "number", "date", "bool", "choice"}


def test_finite_fields_offer_their_values():
    Segment.objects.create(name="VIP customers", slug="vip")
    factories.customer(language="pt-BR")
    choices = {field.field: dict(field.choices) for field in vocabulary.condition_fields()}
    assert choices["country"]["IT"] == "Italy"
    assert choices["segment"] == {"vip": "VIP customers"}
    assert "pt-BR" in choices["language"]  # as stored: conditions compare it exactly
    assert choices["consent.email"] == {True: "granted", False: "not granted"}
    assert "Asia" in choices["zone"] and "Europe/Rome" in choices["zone"]
    assert choices["first_name"] == {}


def test_attribute_keys_are_offered_as_fields_with_their_kind():
    factories.customer(attributes={"loyalty_points": 120, "delivery_date": "2025-06-01", "vip": True})
    kinds = {field.field: field.kind for field in vocabulary.condition_fields()}
    assert kinds["attributes.loyalty_points"] == "number"
    assert kinds["attributes.delivery_date"] == "date"
    assert kinds["attributes.vip"] == "bool"


def test_ops_for_a_field_are_the_ones_the_parser_accepts():
    for field in conditions.FIELDS:
        probe = field.replace("<name>", "x").replace("<property>", "total")
        for op, label in vocabulary.ops_for(probe):
            assert label == conditions.Op(op).label
            problems = conditions.validate([{"field": probe, "op": op, "value": "x"}])
            assert not any("does not apply here" in problem for problem in problems), (field, op, problems)


def test_ops_for_consent_is_only_is_and_for_an_unknown_field_none():
    assert vocabulary.ops_for("consent.sms") == [("is", "is")]
    assert vocabulary.ops_for("segment") == [("in", "is one of"), ("not_in", "is none of")]
    assert vocabulary.ops_for("favourite_colour") == []
    assert vocabulary.ops_for(None) == []
