"""Frequency caps over rolling windows, and region exclusion."""

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
from messaging.policy import Action, FrequencyCap, SendRules, decide
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("locmem_sms"),
]

NEW_YORK = ZoneInfo("America/New_York")
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK)


@pytest.fixture
def locmem_sms(settings):
    from messaging.backends.sms import locmem

    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    return locmem.outbox


@pytest.fixture
def content():
    return factories.sms_content()


def texter(**fields):
    customer = factories.customer(phone=fields.pop("phone", "+12125550100"), **fields)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    return customer


def send_now(customer, content, key, category=Category.MARKETING, **kwargs):
    """Write a message now and run its delivery; return it refreshed."""
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=content,
        category=category,
        source="test",
        dedupe_key=key,
        **kwargs,
    )
    deliver(message.pk)
    message.refresh_from_db()
    return message


def test_second_marketing_sms_within_a_day_is_deferred_until_the_first_is_a_day_old(content):
    customer = texter()
    with time_machine.travel(NOON, tick=False) as clock:
        first = send_now(customer, content, "first")
        clock.shift(timedelta(hours=1))
        second = send_now(customer, content, "second")

    assert first.status == Status.SENT
    assert (second.status, second.reason) == (Status.DEFERRED, Reason.FREQUENCY_CAP)
    assert second.send_after == first.sent_at + timedelta(days=1)
    assert "1 per day" in second.detail


def test_fourth_marketing_sms_in_seven_days_waits_for_the_first_to_leave_the_window(content):
    customer = texter()
    with time_machine.travel(NOON, tick=False) as clock:
        sent = []
        for day in range(3):
            sent.append(send_now(customer, content, f"day-{day}"))
            clock.shift(timedelta(days=1))
        fourth = send_now(customer, content, "day-3")

    assert [message.status for message in sent] == [Status.SENT] * 3
    assert (fourth.status, fourth.reason) == (Status.DEFERRED, Reason.FREQUENCY_CAP)
    assert fourth.send_after == sent[0].sent_at + timedelta(days=7)


def test_a_cap_that_frees_inside_the_window_defers_to_that_moment(content):
    customer = texter()
    with time_machine.travel(datetime(2026, 11, 24, 20, 50, tzinfo=NEW_YORK), tick=False):
        first = send_now(customer, content, "evening")
    decision = decide(customer, Channel.SMS, Category.MARKETING, datetime(2026, 11, 25, 9, 0, tzinfo=NEW_YORK))
    assert (decision.action, decision.reason) == (Action.DEFER, Reason.FREQUENCY_CAP)
    assert decision.until == first.sent_at + timedelta(days=1)  # 20:50, still inside 08:00-21:00


def test_a_cap_that_frees_after_the_window_closes_defers_to_the_next_morning(content):
    customer = texter()
    with time_machine.travel(datetime(2026, 11, 24, 20, 50, tzinfo=NEW_YORK), tick=False):
        send_now(customer, content, "evening", rules={"send_window": {"end": "21:00"}})
    rules = {"send_window": {"end": "20:30"}}  # the cap frees at 20:50, after this window shuts

    decision = decide(
        customer, Channel.SMS, Category.MARKETING, datetime(2026, 11, 25, 9, 0, tzinfo=NEW_YORK), rules=rules
    )

    assert (decision.action, decision.reason) == (Action.DEFER, Reason.FREQUENCY_CAP)
    morning = datetime(2026, 11, 26, 8, 0, tzinfo=NEW_YORK)
    assert morning <= decision.until < morning + timedelta(minutes=30)


def test_transactional_sms_is_not_capped(content):
    customer = texter()
    with time_machine.travel(NOON, tick=False):
        first = send_now(customer, content, "marketing")
        receipt = send_now(customer, content, "receipt", category=Category.TRANSACTIONAL)
    assert (first.status, receipt.status) == (Status.SENT, Status.SENT)


def test_a_failed_send_does_not_count_toward_the_cap(content, locmem_sms):
    customer = texter()
    with time_machine.travel(NOON, tick=False):
        blocked = send_now(factories.customer(phone="+12125550199"), content, "no-consent")
        first = send_now(customer, content, "first")
    assert blocked.status == Status.BLOCKED and first.status == Status.SENT


def test_an_activity_can_override_the_caps(content):
    customer = texter()
    rules = {"caps": [{"channel": "sms", "category": "marketing", "count": 2, "days": 1}]}
    with time_machine.travel(NOON, tick=False) as clock:
        first = send_now(customer, content, "a", rules=rules)
        clock.shift(timedelta(minutes=5))
        second = send_now(customer, content, "b", rules=rules)
        clock.shift(timedelta(minutes=5))
        third = send_now(customer, content, "c", rules=rules)
    assert [first.status, second.status, third.status] == [Status.SENT, Status.SENT, Status.DEFERRED]


def test_a_capped_message_that_would_wait_past_its_expiry_is_blocked(content):
    customer = texter()
    with time_machine.travel(NOON, tick=False) as clock:
        send_now(customer, content, "first")
        clock.shift(timedelta(hours=1))
        late = send_now(customer, content, "second", expires_at=NOON + timedelta(hours=6))
    assert (late.status, late.reason) == (Status.BLOCKED, Reason.FREQUENCY_CAP)


@override_settings(TRIGGERHUB_FREQUENCY_CAPS="email:marketing:1/12h")
def test_site_caps_are_a_setting_and_apply_to_email_too():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    template = factories.email_template()
    with time_machine.travel(NOON, tick=False) as clock:
        first = outbox.enqueue(
            customer=customer,
            channel=Channel.EMAIL,
            content=template,
            category=Category.MARKETING,
            source="t",
            dedupe_key="e1",
        )
        deliver(first.pk)
        clock.shift(timedelta(hours=2))
        second = outbox.enqueue(
            customer=customer,
            channel=Channel.EMAIL,
            content=template,
            category=Category.MARKETING,
            source="t",
            dedupe_key="e2",
        )
    assert (second.status, second.reason) == (Status.DEFERRED, Reason.FREQUENCY_CAP)


def test_frequency_cap_text_is_parsed_and_bad_text_explained():
    assert FrequencyCap.parse("sms:marketing:3/7d") == FrequencyCap("sms", "marketing", 3, timedelta(days=7))
    with pytest.raises(ValueError, match="channel:category:count/window"):
        FrequencyCap.parse("sms:marketing:3 per week")


# --- regions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone, regions",
    [
        ("+81312345678", ["Asia"]),  # a Tokyo number
        ("+61412345678", ["Australia"]),  # an Australian mobile
        ("+81312345678", ["JP"]),  # by country code
        ("+81312345678", ["Asia/Tokyo"]),  # by zone
    ],
)
def test_customers_who_may_be_in_an_excluded_region_are_skipped(content, phone, regions):
    customer = texter(phone=phone, country="")
    decision = decide(customer, Channel.SMS, Category.MARKETING, NOON, rules={"excluded_regions": regions})
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.REGION_EXCLUDED)


def test_customers_outside_the_excluded_regions_are_not_skipped(content):
    customer = texter()
    decision = decide(
        customer, Channel.SMS, Category.MARKETING, NOON, rules={"excluded_regions": ["Asia", "Australia"]}
    )
    assert decision.action == Action.SEND


def test_region_exclusion_applies_to_email_by_the_customers_country():
    customer = factories.customer(country="IT")
    decision = decide(customer, Channel.EMAIL, Category.TRANSACTIONAL, NOON, rules={"excluded_regions": ["Europe"]})
    assert decision.reason == Reason.REGION_EXCLUDED


def test_send_rules_errors_name_every_problem():
    errors = SendRules.errors_in(
        {
            "send_window": {"start": "25:00", "end": "08:00"},
            "caps": [{"channel": "fax", "category": "marketing", "count": -1}],
            "excluded_regions": ["Atlantis"],
            "colour": "blue",
        }
    )
    assert errors == [
        "unknown send rule 'colour': use send_window, caps or excluded_regions",
        "send_window.start must be a time such as 08:00, not '25:00'",
        "caps[0].channel must be one of email, sms",
        "caps[0].count must be a whole number, 0 or more",
        "caps[0] needs a window: days or hours greater than 0",
        "excluded region 'Atlantis' is not a zone area (Asia), a zone (Asia/Tokyo) or a country code (JP)",
    ]
    assert SendRules.errors_in({"send_window": {"start": "20:00", "end": "09:00"}}) == [
        "send_window.start must be before send_window.end"
    ]
