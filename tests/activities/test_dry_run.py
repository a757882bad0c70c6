"""Trying an activity on one customer: the timeline of the real engine, templates and policy, and no trace left."""

from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from activities import dry_run
from activities.models import Activity, ActivityStatus, ActivityVersion, Coupon, Enrollment, Reentry
from customers import consent
from customers.models import Channel, ConsentRecord, ConsentSource, Event, Segment, SegmentMembership
from messaging import outbox
from messaging.models import Category, Message, MessageEvent, SmsContent
from tests import factories

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
UTC = UTC
#: A January morning: the next birthday of a customer born 15 March is in March.
JANUARY = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def sydney_customer(**fields):
    defaults = {
        "first_name": "Mia",
        "country": "AU",
        "phone": "+61412345678",
        "timezone": "Australia/Sydney",
        "date_of_birth": date(1990, 3, 15),
    }
    customer = factories.customer(**{**defaults, **fields})
    return customer


def with_sms_consent(customer):
    consent.grant(customer, Channel.SMS, ConsentSource.FORM, evidence="signup form")
    return customer


def birthday_sms_activity(**fields) -> Activity:
    content = SmsContent.objects.filter(slug="birthday-sms").first() or factories.sms_content(
        slug="birthday-sms",
        text="Happy birthday week, {{ customer.first_name }}! 10% off with {{ coupon.code }}",
    )
    defaults = {
        "name": "Birthday SMS",
        "status": ActivityStatus.ACTIVE,
        "category": Category.MARKETING,
        "reentry": Reentry.ALWAYS,
        "trigger": {"type": "date", "field": "date_of_birth", "offset_days": -7, "recurrence": "yearly", "at": "10:00"},
        "steps": [
            {"type": "issue_coupon", "percent_off": 10, "prefix": "BDAY", "valid_days": 14},
            {"type": "send", "channel": "sms", "content": content.slug},
        ],
    }
    return Activity.objects.create(**{**defaults, **fields})


def event_activity(steps, **fields) -> Activity:
    defaults = {
        "name": "After an order",
        "status": ActivityStatus.ACTIVE,
        "category": Category.TRANSACTIONAL,
        "reentry": Reentry.ALWAYS,
        "trigger": {"type": "event", "event": "order_placed"},
        "steps": steps,
    }
    return Activity.objects.create(**{**defaults, **fields})


def the_send(timeline):
    (entry,) = timeline.sends
    return entry


# The birthday SMS -----------------------------------------------------------------------


def test_birthday_sms_runs_at_10_sydney_time_seven_days_before_the_birthday_with_the_issued_code():
    customer = with_sms_consent(sydney_customer())

    timeline = dry_run.try_on(birthday_sms_activity(), customer, JANUARY)

    assert [entry.step_type for entry in timeline.entries] == ["start", "issue_coupon", "send", "end"]
    coupon_entry, send_entry = timeline.entries[1], timeline.entries[2]
    assert send_entry.local_moment == datetime(2027, 3, 8, 10, 0, tzinfo=SYDNEY)
    assert send_entry.moment == datetime(2027, 3, 7, 23, 0, tzinfo=UTC)  # AEDT is UTC+11
    assert send_entry.zone == "Australia/Sydney"
    code = coupon_entry.happens.split("issues coupon ")[1].split(" ")[0]
    assert code.startswith("BDAY-") and "10% off" in coupon_entry.happens
    assert send_entry.send.body == f"Happy birthday week, Mia! 10% off with {code}"
    assert send_entry.send.action == "send"
    assert send_entry.send.segments.segments == 1 and send_entry.send.segments.encoding == "GSM-7"
    assert timeline.entries[0].happens == (
        "starts: date_of_birth (1990-03-15) comes round on Mon 15 Mar 2027 (yearly); 7 days before, at 10:00 in Australia/Sydney"
    )


def test_without_a_start_the_dry_run_starts_from_now():
    customer = with_sms_consent(sydney_customer())

    with time_machine.travel(JANUARY, tick=False):
        timeline = dry_run.try_on(birthday_sms_activity(), customer)

    assert the_send(timeline).local_moment == datetime(2027, 3, 8, 10, 0, tzinfo=SYDNEY)


def test_a_start_after_this_years_moment_finds_next_years_birthday():
    customer = with_sms_consent(sydney_customer())

    timeline = dry_run.try_on(birthday_sms_activity(), customer, datetime(2027, 3, 7, 23, 0, 1, tzinfo=UTC))

    assert the_send(timeline).local_moment == datetime(2028, 3, 8, 10, 0, tzinfo=SYDNEY)


def test_a_29_february_birthday_comes_round_on_28_february_in_a_common_year():
    customer = with_sms_consent(sydney_customer(date_of_birth=date(2000, 2, 29)))

    timeline = dry_run.try_on(birthday_sms_activity(), customer, JANUARY)

    assert the_send(timeline).local_moment == datetime(2027, 2, 21, 10, 0, tzinfo=SYDNEY)


def test_a_send_window_that_excludes_the_moment_defers_the_sms_with_its_reason():
    customer = with_sms_consent(sydney_customer())
    activity = birthday_sms_activity(send_rules={"send_window": {"start": "12:00", "end": "20:00"}})

    send = the_send(dry_run.try_on(activity, customer, JANUARY)).send

    assert send.action == "defer" and send.reason == "quiet hours"
    assert send.detail == "outside 12:00-20:00 in Australia/Sydney"
    opens = datetime(2027, 3, 8, 12, 0, tzinfo=SYDNEY)
    assert opens <= send.until < opens + timedelta(minutes=30)  # spread over the window's first minutes
    assert send.answer.startswith("defer until 2027-03-08T01:")


def test_without_sms_consent_the_sms_is_blocked_and_says_why():
    customer = sydney_customer()

    send = the_send(dry_run.try_on(birthday_sms_activity(), customer, JANUARY)).send

    assert send.action == "block" and send.reason == "no consent"
    assert send.answer == "block (No consent)"
    assert send.body.startswith("Happy birthday week, Mia!")  # still shown, so the text can be checked


def test_a_customer_with_no_date_of_birth_would_never_start():
    customer = sydney_customer(date_of_birth=None)

    timeline = dry_run.try_on(birthday_sms_activity(), customer, JANUARY)

    assert timeline.does_not_start == "would never start: no date_of_birth"
    assert timeline.entries == []


def test_a_customer_outside_the_target_would_not_start_and_the_target_is_named():
    customer = sydney_customer()  # no SMS consent
    activity = birthday_sms_activity(target=[{"field": "consent.sms", "op": "is", "value": True}])

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert timeline.does_not_start.startswith("would not start at Mon 8 Mar 2027 10:00 AEDT (Australia/Sydney)")
    assert "not in the target" in timeline.does_not_start and timeline.entries == []


# Waits, events and branches -------------------------------------------------------------


def test_a_wait_moves_the_clock_to_its_end_for_the_next_step():
    factories.email_template("thanks")
    factories.email_template("review", subject="How was it, {{ customer.first_name }}?")
    activity = event_activity(
        [
            {"type": "send", "channel": "email", "template": "thanks"},
            {"type": "wait", "days": 3, "hours": 2},
            {"type": "send", "channel": "email", "template": "review"},
        ]
    )
    customer = factories.customer(first_name="Ann", timezone="Europe/Rome")

    timeline = dry_run.try_on(activity, customer, JANUARY)

    first, wait, second = timeline.entries[1:4]
    assert first.moment == JANUARY and wait.moment == JANUARY
    assert wait.happens.startswith("waits 3 days 2 hours, until Wed 13 Jan 2027 12:00 CET (Europe/Rome)")
    assert second.moment == JANUARY + timedelta(days=3, hours=2)
    assert second.send.subject == "How was it, Ann?"
    assert timeline.entries[-1].moment == second.moment


def test_an_event_trigger_uses_the_customers_latest_event_of_that_name_as_the_sample():
    factories.email_template("thanks", subject="Thanks for order {{ event.order_id }}")
    activity = event_activity([{"type": "send", "channel": "email", "template": "thanks"}])
    customer = factories.customer()
    Event.objects.create(
        customer=customer, name="order_placed", occurred_at=JANUARY - timedelta(days=9), properties={"order_id": "A-1"}
    )
    Event.objects.create(
        customer=customer, name="order_placed", occurred_at=JANUARY - timedelta(days=2), properties={"order_id": "A-2"}
    )

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert the_send(timeline).send.subject == "Thanks for order A-2"
    assert "this customer's latest order_placed" in timeline.entries[0].happens


def test_without_such_an_event_the_sample_is_empty_and_says_so():
    factories.email_template("thanks", subject="Thanks for order {{ event.order_id }}")
    activity = event_activity([{"type": "send", "channel": "email", "template": "thanks"}])

    timeline = dry_run.try_on(activity, factories.customer(), JANUARY)

    assert the_send(timeline).send.subject == "Thanks for order"
    assert "a sample with no properties" in timeline.entries[0].happens


def test_a_wait_for_an_event_takes_the_timeout_path_and_says_so():
    factories.email_template("reminder")
    activity = event_activity(
        [
            {"type": "wait_for_event", "event": "order_paid", "timeout_days": 2, "on_timeout": "exit"},
            {"type": "send", "channel": "email", "template": "reminder"},
        ]
    )

    timeline = dry_run.try_on(activity, factories.customer(timezone="UTC"), JANUARY)

    wait, end = timeline.entries[1], timeline.entries[-1]
    assert "if no order_paid arrives by Tue 12 Jan 2027 09:00 UTC, it ends; if one arrives, it goes on" in wait.happens
    assert end.step_type == "end" and end.moment == JANUARY + timedelta(days=2)
    assert end.happens == "exited: no order_paid in time"
    assert timeline.sends == []


def test_a_branch_is_decided_by_its_conditions_at_that_moment():
    factories.email_template("for-italy")
    factories.email_template("for-others")
    activity = event_activity(
        [
            {
                "type": "branch",
                "if": [{"field": "country", "op": "eq", "value": "IT"}],
                "then": [{"type": "send", "channel": "email", "template": "for-italy"}],
                "else": [{"type": "send", "channel": "email", "template": "for-others"}],
            }
        ]
    )

    italian = dry_run.try_on(activity, factories.customer(country="IT"), JANUARY)
    american = dry_run.try_on(activity, factories.customer(country="US"), JANUARY)

    assert italian.entries[1].happens.startswith("takes the 'then' path: the customer meets country")
    assert (the_send(italian).key, the_send(italian).send.content) == ("0.then.0", "for-italy")
    assert (the_send(american).key, the_send(american).send.content) == ("0.else.0", "for-others")


def test_a_frequency_cap_counts_the_walks_earlier_messages():
    factories.email_template("first")
    factories.email_template("second")
    activity = event_activity(
        [
            {"type": "send", "channel": "email", "template": "first"},
            {"type": "wait", "hours": 1},
            {"type": "send", "channel": "email", "template": "second"},
        ],
        category=Category.MARKETING,
        send_rules={"caps": [{"channel": "email", "category": "marketing", "count": 1, "days": 1}]},
    )
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM, evidence="form")

    first, second = dry_run.try_on(activity, customer, JANUARY).sends

    assert first.send.action == "send"
    assert (second.send.action, second.send.reason) == ("defer", "frequency cap")
    assert second.send.until == JANUARY + timedelta(days=1)


def test_a_message_followed_at_once_by_an_exit_is_shown_cancelled():
    factories.email_template("last-word")
    activity = event_activity(
        [
            {"type": "send", "channel": "email", "template": "last-word"},
            {"type": "exit", "note": "done here"},
        ]
    )

    timeline = dry_run.try_on(activity, factories.customer(), JANUARY)

    assert the_send(timeline).send.cancelled.startswith("cancelled before it left")
    assert timeline.entries[-1].happens == "exited: done here"


def test_a_template_that_cannot_render_shows_its_error_in_the_timeline():
    SmsContent.objects.create(slug="broken", name="Broken", text="Hi {% include 'secret.txt' %}")  # saved unchecked
    activity = event_activity([{"type": "send", "channel": "sms", "content": "broken"}])

    send = the_send(dry_run.try_on(activity, sydney_customer(), JANUARY)).send

    assert "include" in send.render_error and send.body == ""


def test_an_sms_with_an_emoji_reports_ucs2_and_its_parts():
    factories.sms_content(slug="party", text="🎉 " + "Party time! " * 10)
    activity = event_activity([{"type": "send", "channel": "sms", "content": "party"}])

    send = the_send(dry_run.try_on(activity, sydney_customer(), JANUARY)).send

    assert send.segments.encoding == "UCS-2" and send.segments.segments == 2
    assert send.ucs2_characters == "🎉"
    assert send.segment_report == "2 parts, UCS-2, 122 units; UCS-2 because of 🎉"


def test_the_walk_stops_after_fifty_steps():
    Segment.objects.create(slug="vip", name="VIP")
    activity = event_activity([{"type": "add_to_segment", "segment": "vip"}] * 60)

    timeline = dry_run.try_on(activity, factories.customer(), JANUARY)

    assert len([entry for entry in timeline.entries if entry.key]) == 50
    assert timeline.notes == ["Stopped after 50 steps; the rest is not shown."]


def test_a_definition_not_saved_yet_is_tried_instead_of_the_saved_one():
    activity = birthday_sms_activity()
    factories.sms_content(slug="other", text="Other text {{ coupon.code }}")
    edited = {
        **activity.definition(),
        "steps": [
            {"type": "issue_coupon", "percent_off": 10},
            {"type": "send", "channel": "sms", "content": "other"},
        ],
    }
    versions = ActivityVersion.objects.count()

    timeline = dry_run.try_on(activity, with_sms_consent(sydney_customer()), JANUARY, definition=edited)

    assert the_send(timeline).send.body.startswith("Other text ")
    assert ActivityVersion.objects.count() == versions


def test_an_unsaved_activity_can_be_tried():
    factories.sms_content(slug="birthday-sms", text="Hi {{ coupon.code }}")
    unsaved = Activity(
        name="Not saved",
        category=Category.MARKETING,
        reentry=Reentry.ALWAYS,
        trigger={"type": "date", "field": "date_of_birth", "offset_days": -7, "at": "10:00"},
        steps=[
            {"type": "issue_coupon", "percent_off": 10},
            {"type": "send", "channel": "sms", "content": "birthday-sms"},
        ],
    )

    timeline = dry_run.try_on(unsaved, with_sms_consent(sydney_customer()), JANUARY)

    assert the_send(timeline).local_moment == datetime(2027, 3, 8, 10, 0, tzinfo=SYDNEY)
    assert unsaved.pk is None and not Activity.objects.exists()


def test_a_definition_with_problems_is_not_tried_and_they_are_listed():
    activity = birthday_sms_activity()
    broken = {**activity.definition(), "steps": [{"type": "send", "channel": "sms", "content": "nowhere"}]}

    timeline = dry_run.try_on(activity, sydney_customer(), JANUARY, definition=broken)

    assert timeline.problems == ["steps[0]: there is no SMS content 'nowhere'"] and timeline.entries == []


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="aware"):
        dry_run.try_on(birthday_sms_activity(), sydney_customer(), datetime(2027, 1, 10))


def test_a_customer_who_went_through_a_once_activity_is_tried_with_a_note_that_the_engine_would_not_start_it():
    customer = with_sms_consent(sydney_customer())
    activity = birthday_sms_activity(reentry=Reentry.ONCE)
    Enrollment.objects.create(
        activity=activity,
        version=activity.current_version(),
        customer=customer,
        occurrence_key="once",
        state="completed",
    )

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert any("would not start again" in note for note in timeline.notes)
    assert the_send(timeline).send.action == "send"


# No trace ---------------------------------------------------------------------------------


COUNTED = (Enrollment, Message, MessageEvent, Coupon, Event, ConsentRecord, SegmentMembership, ActivityVersion)


def counts():
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_a_dry_run_leaves_no_row_behind():
    customer = with_sms_consent(sydney_customer())
    Segment.objects.create(slug="birthday-club", name="Birthday club")
    Event.objects.create(customer=customer, name="order_placed", occurred_at=JANUARY, properties={})
    activity = birthday_sms_activity(
        steps=[
            {"type": "issue_coupon", "percent_off": 10, "prefix": "BDAY"},
            {"type": "add_to_segment", "segment": "birthday-club"},
            {"type": "send", "channel": "sms", "content": factories.sms_content("birthday-sms").slug},
            {"type": "wait", "days": 1},
            {"type": "send", "channel": "sms", "content": "birthday-sms"},
        ]
    )
    before = counts()

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert len(timeline.sends) == 2  # it did write them, inside the dry run
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_publishes_nothing_to_the_broker(settings):
    settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND = False  # a publish would happen here, where it is seen
    customer = with_sms_consent(sydney_customer())
    factories.email_template("welcome")
    activity = birthday_sms_activity()
    email_activity = event_activity([{"type": "send", "channel": "email", "template": "welcome"}], name="Mail")

    with mock.patch("triggerhub.queueing.publish") as published, mock.patch("messaging.outbox.publish") as drains:
        dry_run.try_on(activity, customer, JANUARY)
        dry_run.try_on(email_activity, customer, JANUARY)
        nothing = (published.call_count, drains.call_count)
        with transaction.atomic():  # the observer sees a real enqueue that commits
            outbox.enqueue(
                customer=customer,
                channel=Channel.SMS,
                content=SmsContent.objects.get(slug="birthday-sms"),
                category=Category.TRANSACTIONAL,
                source="test",
                dedupe_key="control",
            )

    assert nothing == (0, 0)
    assert published.call_count == 1


# Other triggers -----------------------------------------------------------------------------


def test_a_threshold_trigger_starts_at_the_start_with_the_figure_as_it_is_now():
    factories.email_template("reward", subject="You have {{ event.value }} points")
    activity = event_activity(
        [{"type": "send", "channel": "email", "template": "reward"}],
        trigger={"type": "threshold", "field": "attributes.loyalty_points", "value": 100, "direction": "up"},
    )

    timeline = dry_run.try_on(activity, factories.customer(attributes={"loyalty_points": 150}), JANUARY)

    assert timeline.entries[0].moment == JANUARY
    assert timeline.entries[0].happens == "starts: attributes.loyalty_points crosses 100 upward (its value now: 150)"
    assert the_send(timeline).send.subject == "You have 150 points"


def test_a_date_attribute_every_six_months_comes_round_on_the_months_last_day_when_shorter():
    factories.email_template("service")
    activity = event_activity(
        [{"type": "send", "channel": "email", "template": "service"}],
        trigger={"type": "date", "field": "attributes.delivered_on", "recurrence": {"every_months": 6}, "at": "09:30"},
    )
    customer = factories.customer(timezone="Europe/Rome", attributes={"delivered_on": "2026-08-31"})

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert the_send(timeline).local_moment == datetime(2027, 2, 28, 9, 30, tzinfo=ZoneInfo("Europe/Rome"))


def test_a_once_date_that_has_passed_would_never_start_again():
    factories.email_template("welcome-car")
    activity = event_activity(
        [{"type": "send", "channel": "email", "template": "welcome-car"}],
        trigger={"type": "date", "field": "attributes.delivered_on", "recurrence": "once", "at": "09:30"},
    )
    customer = factories.customer(timezone="UTC", attributes={"delivered_on": "2026-08-31"})

    timeline = dry_run.try_on(activity, customer, JANUARY)

    assert timeline.does_not_start == (
        "would never start from Sun 10 Jan 2027 09:00 UTC: attributes.delivered_on (2026-08-31) does not come round "
        "again (once)"
    )


def test_a_sample_event_that_misses_the_triggers_conditions_is_tried_with_a_note():
    factories.email_template("big-order")
    activity = event_activity(
        [{"type": "send", "channel": "email", "template": "big-order"}],
        trigger={
            "type": "event",
            "event": "order_placed",
            "where": [{"field": "properties.total", "op": "gte", "value": 100}],
        },
    )

    timeline = dry_run.try_on(activity, factories.customer(), JANUARY)

    assert timeline.notes[0].startswith("The sample event does not meet the trigger's conditions (properties.total")
    assert len(timeline.sends) == 1


def test_a_goal_is_named_in_a_note_since_the_walk_goes_on_without_it():
    factories.email_template("nudge")
    activity = event_activity([{"type": "send", "channel": "email", "template": "nudge"}], goal={"event": "order_paid"})

    timeline = dry_run.try_on(activity, factories.customer(), JANUARY)

    assert timeline.notes == [
        "Tried without its goal: an event order_paid once it has begun ends it as converted, and its messages not "
        "yet sent are cancelled."
    ]
