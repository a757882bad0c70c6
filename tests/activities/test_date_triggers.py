"""Date triggers: birthdays and a car's lifecycle, each at 10:00 in the customer's own zone."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities import dates, spec, tasks
from activities.models import Activity, ActivityStatus, Enrollment, EnrollmentState, Reentry
from customers import consent
from customers.models import Channel, ConsentSource
from examples.storefront import demo
from messaging.backends.sms import locmem
from messaging.delivery import deliver
from messaging.models import Category, Message, Status
from tests import factories

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


def beat(moment):
    """What beat and a worker do at ``moment``: the date job, the clock, then delivery."""
    with time_machine.travel(moment, tick=False):
        tasks.run_date_triggers()
        tasks.advance_due()
        for pk in Message.objects.filter(status=Status.QUEUED).values_list("pk", flat=True):
            deliver(pk)


def sent_to(phone) -> list[str]:
    return [sms.body for sms in locmem.outbox if sms.to == phone]


def reachable_customer(**fields):
    customer = factories.customer(**fields)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    return customer


def date_activity(name, text, *, trigger, steps_before=(), **fields):
    content = factories.sms_content(slug=name.lower().replace(" ", "-"), text=text)
    defaults = {
        "status": ActivityStatus.ACTIVE,
        "category": Category.MARKETING,
        "reentry": Reentry.ALWAYS,
        "trigger": {"type": "date", "at": "10:00", **trigger},
        "steps": [*steps_before, {"type": "send", "channel": "sms", "content": content.slug}],
    }
    activity = Activity(name=name, **{**defaults, **fields})
    activity.full_clean()
    activity.save()
    return activity


def birthday_activity(**fields):
    return date_activity(
        "Birthday",
        "Happy birthday week, {{ customer.first_name }}! 20% off: {{ coupon.code }}",
        trigger={"field": "date_of_birth", "offset_days": -7, "recurrence": "yearly"},
        steps_before=[{"type": "issue_coupon", "percent_off": 20, "prefix": "BDAY", "valid_days": 30}],
        **fields,
    )


# Birthdays ------------------------------------------------------------------------------


def test_a_birthday_sms_with_a_unique_code_arrives_a_week_before_at_10_in_each_customers_own_zone():
    birthday_activity()
    by_hand = reachable_customer(
        first_name="Mia",
        phone="+61412345678",
        timezone="Australia/Sydney",
        country="AU",
        date_of_birth=date(1990, 6, 10),
    )
    by_number = reachable_customer(
        first_name="Jack", phone="+61291234567", country="AU", date_of_birth=date(1985, 6, 10)
    )
    angeleno = reachable_customer(first_name="Ana", phone="+13105550100", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 3, 9, 59, tzinfo=SYDNEY))
    assert locmem.outbox == []

    beat(datetime(2027, 6, 3, 10, 0, tzinfo=SYDNEY))
    [mia] = sent_to(by_hand.phone)
    [jack] = sent_to(by_number.phone)
    assert mia.startswith("Happy birthday week, Mia! 20% off: BDAY-")
    assert jack.startswith("Happy birthday week, Jack! 20% off: BDAY-")
    assert mia.split()[-1] != jack.split()[-1]
    assert sent_to(angeleno.phone) == []

    beat(datetime(2027, 6, 3, 9, 59, tzinfo=LOS_ANGELES))
    assert sent_to(angeleno.phone) == []

    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES))
    [ana] = sent_to(angeleno.phone)
    assert ana.startswith("Happy birthday week, Ana! 20% off: BDAY-")
    assert len(locmem.outbox) == 3


def test_the_day_before_the_job_enrolls_the_customer_waiting_for_10_local():
    activity = birthday_activity()
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    with time_machine.travel(datetime(2027, 6, 2, 12, 0, tzinfo=LOS_ANGELES), tick=False):
        result = tasks.run_date_triggers()

    assert result["enrolled"] == 1
    enrollment = Enrollment.objects.get(activity=activity, customer=customer)
    assert enrollment.state == EnrollmentState.WAITING
    assert enrollment.next_run_at == datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES)
    assert enrollment.occurrence_key == "date_of_birth:2027"
    assert enrollment.version.number == activity.version


def test_running_the_daily_job_twice_sends_once():
    birthday_activity()
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))
    moment = datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES)

    with time_machine.travel(moment - timedelta(hours=3), tick=False):
        assert tasks.run_date_triggers()["enrolled"] == 1
        assert tasks.run_date_triggers()["enrolled"] == 0
    beat(moment)
    beat(moment + timedelta(minutes=30))

    assert len(sent_to(customer.phone)) == 1
    assert Enrollment.objects.count() == 1


def test_a_29_february_birthday_fires_on_28_february_2027():
    date_activity(
        "Birthday today",
        "Happy birthday {{ customer.first_name }}!",
        trigger={"field": "date_of_birth", "recurrence": "yearly"},
    )
    leapling = reachable_customer(first_name="Leo", phone="+13105550100", date_of_birth=date(2000, 2, 29))

    beat(datetime(2027, 2, 27, 10, 0, tzinfo=LOS_ANGELES))
    assert sent_to(leapling.phone) == []
    beat(datetime(2027, 2, 28, 10, 0, tzinfo=LOS_ANGELES))
    assert sent_to(leapling.phone) == ["Happy birthday Leo!"]
    beat(datetime(2027, 3, 1, 10, 0, tzinfo=LOS_ANGELES))
    assert len(sent_to(leapling.phone)) == 1


def test_in_a_leap_year_a_29_february_birthday_waits_for_29_february():
    date_activity(
        "Birthday today",
        "Happy birthday {{ customer.first_name }}!",
        trigger={"field": "date_of_birth", "recurrence": "yearly"},
    )
    leapling = reachable_customer(phone="+13105550100", date_of_birth=date(2000, 2, 29))
    born_28th = reachable_customer(phone="+13105550101", date_of_birth=date(2000, 2, 28))

    beat(datetime(2028, 2, 28, 10, 0, tzinfo=LOS_ANGELES))
    assert (len(sent_to(leapling.phone)), len(sent_to(born_28th.phone))) == (0, 1)
    beat(datetime(2028, 2, 29, 10, 0, tzinfo=LOS_ANGELES))
    assert len(sent_to(leapling.phone)) == 1


def test_customers_outside_the_target_are_not_enrolled():
    birthday_activity(target=[{"field": "country", "op": "in", "value": ["US"]}])
    american = reachable_customer(phone="+13105550100", country="US", date_of_birth=date(1992, 6, 10))
    canadian = reachable_customer(phone="+16045550100", country="CA", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES))

    assert len(sent_to(american.phone)) == 1
    assert sent_to(canadian.phone) == []


def test_an_age_target_counts_on_the_local_date_of_sending():
    date_activity(
        "Eighteen",
        "You are 18!",
        trigger={"field": "date_of_birth", "recurrence": "yearly"},
        target=[{"field": "age", "op": "eq", "value": 18}],
    )
    turning_18 = reachable_customer(phone="+13105550100", date_of_birth=date(2009, 6, 10))
    turning_19 = reachable_customer(phone="+13105550101", date_of_birth=date(2008, 6, 10))

    beat(datetime(2027, 6, 9, 12, 0, tzinfo=LOS_ANGELES))  # enrolled the day before
    beat(datetime(2027, 6, 10, 10, 0, tzinfo=LOS_ANGELES))

    assert sent_to(turning_18.phone) == ["You are 18!"]
    assert sent_to(turning_19.phone) == []


def test_reentry_once_sends_only_the_first_birthday():
    birthday_activity(reentry=Reentry.ONCE)
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES))
    beat(datetime(2028, 6, 3, 10, 0, tzinfo=LOS_ANGELES))

    assert len(sent_to(customer.phone)) == 1
    assert Enrollment.objects.get().occurrence_key == "once"


def test_reentry_always_sends_every_birthday():
    birthday_activity()
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES))
    beat(datetime(2028, 6, 3, 10, 0, tzinfo=LOS_ANGELES))

    assert len(sent_to(customer.phone)) == 2
    assert set(Enrollment.objects.values_list("occurrence_key", flat=True)) == {
        "date_of_birth:2027",
        "date_of_birth:2028",
    }


def test_a_half_birthday_comes_round_every_six_months_from_the_date_of_birth():
    date_activity(
        "Half birthday", "Half way there!", trigger={"field": "date_of_birth", "recurrence": {"every_months": 6}}
    )
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 10, 10, 0, tzinfo=LOS_ANGELES))
    beat(datetime(2027, 9, 10, 10, 0, tzinfo=LOS_ANGELES))
    beat(datetime(2027, 12, 10, 10, 0, tzinfo=LOS_ANGELES))

    assert len(sent_to(customer.phone)) == 2
    assert sorted(Enrollment.objects.values_list("occurrence_key", flat=True)) == [
        "date_of_birth:2027-06",
        "date_of_birth:2027-12",
    ]


def test_reentry_after_days_skips_the_occurrences_that_come_too_soon():
    date_activity(
        "Service",
        "Service time",
        reentry=Reentry.AFTER_DAYS,
        reentry_days=200,
        trigger={"field": "attributes.delivery_date", "recurrence": {"every_months": 6}},
    )
    reachable_customer(phone="+13105550100", attributes={"delivery_date": "2027-03-15"})

    for day in (date(2027, 9, 15), date(2028, 3, 15), date(2028, 9, 15)):
        beat(datetime.combine(day, datetime.min.time(), tzinfo=LOS_ANGELES) - timedelta(hours=4))

    assert sorted(Enrollment.objects.values_list("occurrence_key", flat=True)) == [
        "attributes.delivery_date:2027-09",
        "attributes.delivery_date:2028-09",
    ]


@pytest.mark.parametrize("status", [ActivityStatus.DRAFT, ActivityStatus.PAUSED, ActivityStatus.ENDED])
def test_only_active_activities_enroll(status):
    birthday_activity(status=status)
    reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))
    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES))
    assert Enrollment.objects.count() == 0


def test_an_activity_that_ends_before_the_moment_does_not_enroll_for_it():
    birthday_activity(ends_at=datetime(2027, 6, 3, 9, 0, tzinfo=LOS_ANGELES))
    reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))
    beat(datetime(2027, 6, 2, 12, 0, tzinfo=LOS_ANGELES))
    assert Enrollment.objects.count() == 0


def test_an_activity_saved_with_a_broken_trigger_is_skipped_and_the_others_run():
    birthday_activity()
    Activity.objects.create(
        name="Broken", status=ActivityStatus.ACTIVE, trigger={"type": "date", "field": "dob"}, steps=[{"type": "exit"}]
    )
    reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    with time_machine.travel(datetime(2027, 6, 3, 9, 0, tzinfo=LOS_ANGELES), tick=False):
        result = tasks.run_date_triggers()

    assert result["by_activity"] == {"Birthday": 1}
    assert result["skipped"] == {
        "Broken": ["trigger.field must be date_of_birth or attributes.<name>, e.g. attributes.delivery_date"]
    }


def test_a_moment_missed_by_the_previous_run_is_caught_up_at_once():
    birthday_activity()
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))

    beat(datetime(2027, 6, 3, 11, 30, tzinfo=LOS_ANGELES))  # the 10:00 and 11:00 runs did not happen

    assert len(sent_to(customer.phone)) == 1


def test_a_moment_long_past_is_not_sent_late():
    birthday_activity()
    customer = reachable_customer(phone="+13105550100", date_of_birth=date(1992, 6, 10))
    beat(datetime(2027, 6, 3, 10, 0, tzinfo=LOS_ANGELES) + dates.CATCH_UP + timedelta(minutes=1))
    assert sent_to(customer.phone) == []


def test_a_customer_of_whom_no_zone_is_known_gets_it_at_10_in_the_site_default_zone(settings):
    settings.TRIGGERHUB_DEFAULT_TIMEZONE = "Europe/Rome"
    date_activity(
        "Birthday today",
        "Happy birthday!",
        trigger={"field": "date_of_birth", "recurrence": "yearly"},
        category=Category.TRANSACTIONAL,
    )
    customer = factories.customer(country="", email="nowhere@example.com", date_of_birth=date(1990, 6, 10))
    assert customer.local_zone == ""

    with time_machine.travel(datetime(2027, 6, 9, 12, 0, tzinfo=ZoneInfo("Europe/Rome")), tick=False):
        tasks.run_date_triggers()

    assert Enrollment.objects.get().next_run_at == datetime(2027, 6, 10, 10, 0, tzinfo=ZoneInfo("Europe/Rome"))


def test_the_number_of_queries_does_not_grow_with_the_customers_enrolled():
    birthday_activity(
        target=[{"field": "country", "op": "in", "value": ["US"]}, {"field": "age", "op": "gte", "value": 18}]
    )
    date_activity(
        "Service",
        "Service due for your {{ customer.attributes.car_model }}",
        trigger={"field": "attributes.delivery_date", "recurrence": {"every_months": 6}},
    )

    def queries_to_enroll(customers, year):
        for n in range(customers):
            factories.customer(
                phone=f"+1310555{n:04d}",
                date_of_birth=date(1990, 6, 10),
                attributes={"delivery_date": "2026-12-03", "car_model": "Golf"},
            )
        with time_machine.travel(datetime(2027 + year, 6, 2, 12, 0, tzinfo=LOS_ANGELES), tick=False):
            with CaptureQueriesContext(connection) as queries:
                result = dates.run_date_triggers()
        return len(queries), result["by_activity"]

    few, enrolled_few = queries_to_enroll(10, 0)
    Enrollment.objects.all().delete()
    many, enrolled_many = queries_to_enroll(190, 0)

    assert enrolled_few == {"Birthday": 10, "Service": 10}
    assert enrolled_many == {"Birthday": 200, "Service": 200}
    assert many == few


def test_the_shipped_birthday_example_sends_its_code_a_week_before():
    demo.create_example_content()
    spec.load(json.loads((demo.EXAMPLES_DIR / "birthday.json").read_text()))
    customer = reachable_customer(first_name="Mia", phone="+61291234567", country="AU", date_of_birth=date(1990, 6, 10))

    beat(datetime(2027, 6, 3, 9, 59, tzinfo=SYDNEY))
    assert sent_to(customer.phone) == []
    beat(datetime(2027, 6, 3, 10, 0, tzinfo=SYDNEY))
    [text] = sent_to(customer.phone)
    assert "BDAY-" in text


# A car's lifecycle from attributes.delivery_date --------------------------------------------


@pytest.fixture
def car_activities(settings):
    settings.TRIGGERHUB_FREQUENCY_CAPS = ""  # the 36th month brings a service and the prompt on one day
    date_activity(
        "Welcome to your car",
        "Enjoy your new {{ customer.attributes.car_model }}!",
        trigger={"field": "attributes.delivery_date", "offset_days": 1, "recurrence": "once"},
    )
    date_activity(
        "Service reminder",
        "Time for your {{ customer.attributes.car_model }}'s service.",
        trigger={"field": "attributes.delivery_date", "recurrence": {"every_months": 6}},
    )
    # Three years on, once: 36 months keep the day of delivery, where 3 * 365 days would drift by the leap day.
    date_activity(
        "New car",
        "Your {{ customer.attributes.car_model }} is 3 years old: see what's new.",
        trigger={"field": "attributes.delivery_date", "recurrence": {"every_months": 36}},
        reentry=Reentry.ONCE,
    )


def sent_on(day, phone) -> list[str]:
    """Run the clock through ``day`` (its date job the evening before, and 10:00) and what it sent."""
    already = len(sent_to(phone))
    evening_before = datetime.combine(day, datetime.min.time(), tzinfo=LOS_ANGELES) - timedelta(hours=4)
    beat(evening_before)
    beat(evening_before + timedelta(hours=14))
    return sent_to(phone)[already:]


def test_a_car_owner_gets_the_welcome_the_services_and_the_new_car_prompt_on_their_days(car_activities):
    owner = reachable_customer(phone="+13105550100", attributes={"delivery_date": "2027-03-15", "car_model": "Model Y"})

    assert sent_on(date(2027, 3, 16), owner.phone) == ["Enjoy your new Model Y!"]
    assert sent_on(date(2027, 9, 15), owner.phone) == ["Time for your Model Y's service."]
    assert sent_on(date(2028, 3, 15), owner.phone) == ["Time for your Model Y's service."]
    assert sorted(sent_on(date(2030, 3, 15), owner.phone)) == [
        "Time for your Model Y's service.",
        "Your Model Y is 3 years old: see what's new.",
    ]
    assert sent_on(date(2033, 3, 15), owner.phone) == ["Time for your Model Y's service."]


def test_nothing_is_sent_between_the_service_dates(car_activities):
    owner = reachable_customer(phone="+13105550100", attributes={"delivery_date": "2027-03-15", "car_model": "Model Y"})
    for day in (date(2027, 3, 15), date(2027, 6, 15), date(2027, 12, 15), date(2028, 3, 14)):
        assert sent_on(day, owner.phone) == []


def test_a_delivery_on_the_31st_is_serviced_on_the_last_day_of_shorter_months(car_activities):
    owner = reachable_customer(
        phone="+13105550100", attributes={"delivery_date": "2026-08-31T15:20:00Z", "car_model": "Golf"}
    )
    beat(datetime(2027, 2, 28, 10, 0, tzinfo=LOS_ANGELES))
    assert sent_to(owner.phone) == ["Time for your Golf's service."]


def test_an_attribute_that_is_not_a_date_is_left_alone(car_activities):
    reachable_customer(phone="+13105550100", attributes={"delivery_date": "soon", "car_model": "Golf"})
    reachable_customer(phone="+13105550101", attributes={"delivery_date": 20270315, "car_model": "Golf"})
    beat(datetime(2027, 9, 15, 10, 0, tzinfo=LOS_ANGELES))
    assert Enrollment.objects.count() == 0
