"""Quiet hours: marketing SMS only inside the send window, in every zone the customer may be in."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import override_settings

from customers import consent
from customers.models import ConsentSource
from messaging import outbox
from messaging.delivery import deliver
from messaging.models import Category, Channel, Reason, Status
from messaging.policy import Action, decide
from tests import factories

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SPREAD = timedelta(minutes=30)


def texter(phone="+12125550100", **fields):
    """A customer who opted in to marketing SMS."""
    customer = factories.customer(phone=phone, **fields)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    return customer


def decide_sms(customer, at, category=Category.MARKETING, **kwargs):
    return decide(customer, Channel.SMS, category, at, **kwargs)


def test_marketing_sms_at_2130_new_york_defers_to_0800_next_day_plus_the_spread():
    at = datetime(2026, 11, 24, 21, 30, tzinfo=NEW_YORK)
    decision = decide_sms(texter(), at)

    assert (decision.action, decision.reason) == (Action.DEFER, Reason.QUIET_HOURS)
    opens = datetime(2026, 11, 25, 8, 0, tzinfo=NEW_YORK)
    assert opens <= decision.until < opens + SPREAD


def test_marketing_sms_at_noon_new_york_is_sent():
    decision = decide_sms(texter(), datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK))
    assert decision.action == Action.SEND


def test_transactional_sms_at_2300_is_sent():
    customer = factories.customer(phone="+12125550100")  # no marketing consent needed either
    decision = decide_sms(customer, datetime(2026, 11, 24, 23, 0, tzinfo=NEW_YORK), Category.TRANSACTIONAL)
    assert decision.action == Action.SEND


def test_toll_free_number_at_0900_eastern_is_deferred_because_it_is_0600_pacific():
    customer = texter(phone="+18005550100", country="US")
    at = datetime(2026, 11, 24, 9, 0, tzinfo=NEW_YORK)

    decision = decide_sms(customer, at)

    assert (decision.action, decision.reason) == (Action.DEFER, Reason.QUIET_HOURS)
    # The common window of the US zones opens when it is 08:00 in Hawaii (13:00 in New York).
    opens = datetime(2026, 11, 24, 8, 0, tzinfo=ZoneInfo("Pacific/Honolulu"))
    assert opens <= decision.until < opens + SPREAD


def test_toll_free_number_of_unknown_country_waits_for_the_window_shared_from_guam_to_newfoundland():
    customer = texter(phone="+18005550100", country="")
    at = datetime(2026, 11, 24, 14, 0, tzinfo=NEW_YORK)  # 03:00 on Guam

    decision = decide_sms(customer, at)

    assert decision.action == Action.DEFER
    opens = datetime(2026, 11, 25, 8, 0, tzinfo=ZoneInfo("Pacific/Guam"))  # 17:00 in New York
    assert opens <= decision.until < opens + SPREAD


def test_toll_free_number_with_no_common_window_narrows_to_the_numbers_country():
    customer = texter(phone="+18005550100", country="")
    rules = {"send_window": {"start": "09:00", "end": "17:00"}}  # Guam and St John's share no such hour
    at = datetime(2026, 11, 24, 8, 0, tzinfo=NEW_YORK)

    decision = decide_sms(customer, at, rules=rules)

    opens = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Pacific/Honolulu"))  # 14:00 in New York
    assert decision.action == Action.DEFER and opens <= decision.until < opens + SPREAD


def test_zones_with_no_common_window_even_in_the_country_block_with_no_send_window():
    customer = texter(phone="+18005550100", country="")
    rules = {"send_window": {"start": "09:00", "end": "12:00"}}  # Hawaii and New York share no such hour
    decision = decide_sms(customer, datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK), rules=rules)
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.NO_SEND_WINDOW)
    assert "Pacific/Honolulu" in decision.detail and "America/New_York" in decision.detail


def test_a_zone_set_on_the_customer_wins_over_the_numbers_zone():
    customer = texter(timezone="Europe/Rome")  # a New York number, living in Rome
    at = datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK)  # 18:00 in Rome
    assert decide_sms(customer, at).action == Action.SEND
    late = datetime(2026, 11, 24, 16, 0, tzinfo=NEW_YORK)  # 22:00 in Rome
    assert decide_sms(customer, late).action == Action.DEFER


def test_the_spread_is_stable_for_a_customer_and_differs_between_customers():
    at = datetime(2026, 11, 24, 22, 0, tzinfo=NEW_YORK)
    customers = [texter(phone=f"+1212555{n:04d}") for n in range(20)]
    first = [decide_sms(customer, at).until for customer in customers]
    again = [decide_sms(customer, at).until for customer in customers]
    assert first == again
    assert len(set(first)) > 10


def test_an_activity_can_narrow_the_window():
    at = datetime(2026, 11, 24, 19, 30, tzinfo=NEW_YORK)
    rules = {"send_window": {"start": "10:00", "end": "19:00"}}
    decision = decide_sms(texter(), at, rules=rules)
    opens = datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK)
    assert decision.action == Action.DEFER and opens <= decision.until < opens + SPREAD


def test_no_weekends_defers_a_saturday_message_to_monday_morning():
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=NEW_YORK)
    decision = decide_sms(texter(), saturday, rules={"send_window": {"no_weekends": True}})
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=NEW_YORK)
    assert decision.action == Action.DEFER and monday <= decision.until < monday + SPREAD


@override_settings(TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS=True)
def test_the_site_can_exclude_weekends():
    assert decide_sms(texter(), datetime(2026, 11, 29, 12, 0, tzinfo=NEW_YORK)).action == Action.DEFER


@override_settings(TRIGGERHUB_SEND_WINDOW="09:00-17:00")
def test_the_site_window_is_a_setting():
    assert decide_sms(texter(), datetime(2026, 11, 24, 8, 30, tzinfo=NEW_YORK)).action == Action.DEFER
    assert decide_sms(texter(phone="+12125550111"), datetime(2026, 11, 24, 9, 0, tzinfo=NEW_YORK)).action == Action.SEND


def test_a_deferral_that_would_pass_the_expiry_blocks_instead():
    at = datetime(2026, 11, 24, 22, 0, tzinfo=NEW_YORK)
    decision = decide_sms(texter(), at, expires_at=at + timedelta(hours=2))
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.QUIET_HOURS)
    assert "expiry" in decision.detail


def test_dst_change_keeps_the_window_in_local_time():
    # 1 November 2026: New York falls back to EST; 08:00 local is 13:00 UTC, not 12:00.
    at = datetime(2026, 10, 31, 23, 0, tzinfo=NEW_YORK)
    decision = decide_sms(texter(), at)
    assert decision.until.astimezone(NEW_YORK).hour == 8


@override_settings(TRIGGERHUB_SMS_BACKEND="messaging.backends.sms.locmem.SmsBackend")
def test_a_message_written_at_night_waits_in_the_outbox_and_goes_at_0800():
    from messaging.backends.sms import locmem

    locmem.outbox.clear()
    customer = texter()
    with time_machine.travel(datetime(2026, 11, 24, 23, 0, tzinfo=NEW_YORK), tick=False) as clock:
        message = outbox.enqueue(
            customer=customer,
            channel=Channel.SMS,
            content=factories.sms_content(),
            category=Category.MARKETING,
            source="test",
            dedupe_key="night",
        )
        assert (message.status, message.reason) == (Status.DEFERRED, Reason.QUIET_HOURS)
        assert deliver(message.pk) is None  # not due: nothing happens

        clock.move_to(message.send_after)
        assert deliver(message.pk) == Status.SENT

    assert [sms.to for sms in locmem.outbox] == ["+12125550100"]
    assert message.send_after.astimezone(NEW_YORK).hour == 8


@override_settings(TRIGGERHUB_SMS_BACKEND="messaging.backends.sms.locmem.SmsBackend")
def test_a_message_due_at_noon_but_picked_up_at_night_is_deferred_at_send_time():
    customer = texter()
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK), tick=False) as clock:
        message = outbox.enqueue(
            customer=customer,
            channel=Channel.SMS,
            content=factories.sms_content(),
            category=Category.MARKETING,
            source="test",
            dedupe_key="late-worker",
        )
        assert message.status == Status.QUEUED
        clock.move_to(datetime(2026, 11, 24, 22, 0, tzinfo=NEW_YORK))  # the worker was down all day
        assert deliver(message.pk) == Status.DEFERRED

    message.refresh_from_db()
    assert message.reason == Reason.QUIET_HOURS
    assert message.send_after.astimezone(NEW_YORK).date().day == 25
