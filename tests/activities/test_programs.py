"""The example programs (activities/examples/) run as built: loaded from their files, fed
real events, driven by the clock's tasks, delivered by the delivery tasks.

Everything runs in this process on committed data: events are emitted as a storefront
would, and what gets published to Celery is run by ``Broker.run()`` as a worker would.
Only the broker (replaced by a list) and the providers (Django's locmem e-mail backend,
the locmem SMS backend) are fakes. time-machine moves the clock; beat's jobs run at
each stop.
"""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery.app.task import Task

from activities import engine, spec
from activities import tasks as activity_tasks
from activities.models import Coupon, Enrollment, EnrollmentState
from customers import consent
from customers.events import emit
from customers.models import Channel, ConsentSource
from examples.storefront import demo
from messaging import tasks as messaging_tasks
from messaging.backends.sms import locmem
from messaging.models import Message, Reason, Status
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

NEW_YORK = ZoneInfo("America/New_York")
#: A Monday, 10:00 in New York: inside the marketing SMS window, weeks from a DST change.
START = datetime(2026, 5, 4, 10, 0, tzinfo=NEW_YORK)


class Broker:
    """Celery's broker, in this process: published tasks wait here until ``run()``."""

    def __init__(self):
        self.queued = []

    def publish(self, task, args=None, kwargs=None, **options):
        self.queued.append((task, tuple(args or ()), dict(kwargs or {})))

    def run(self, *names):
        """Run the queued tasks (only those ``names``, if given) and what they publish, in order."""
        while ready := [job for job in self.queued if not names or job[0].name in names]:
            self.queued.remove(ready[0])
            task, args, kwargs = ready[0]
            task(*args, **kwargs)


@pytest.fixture
def broker(monkeypatch, settings):
    settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND = False  # publish on commit, in this thread
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    broker = Broker()
    monkeypatch.setattr(
        Task, "apply_async", lambda task, args=None, kwargs=None, **options: broker.publish(task, args, kwargs)
    )
    return broker


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def load_example(name, **changes):
    demo.create_example_content()
    data = json.loads((demo.EXAMPLES_DIR / f"{name}.json").read_text())
    return spec.load({**data, **changes})


def happen(broker, customer, name, **properties):
    """The storefront emits an event; a worker evaluates it (and delivers what it wrote)."""
    event = emit(customer, name, properties)
    broker.run()
    return event


def beat(broker, *, deliver=True):
    """Beat's jobs at this moment (waits that ended, the outbox sweep), run by a worker."""
    activity_tasks.advance_due.delay()
    messaging_tasks.sweep_outbox.delay()
    if deliver:
        broker.run()
    else:
        broker.run(activity_tasks.advance_due.name, messaging_tasks.sweep_outbox.name)


def at(clock, broker, moment, **options):
    """Move the clock to ``moment`` and let beat run."""
    clock.move_to(moment)
    beat(broker, **options)


def opted_in(channel, **fields):
    customer = factories.customer(**{"timezone": "America/New_York", **fields})
    consent.grant(customer, channel, ConsentSource.FORM, evidence="checkout form")
    return customer


def subjects(mailoutbox):
    return [email.subject for email in mailoutbox]


# --- 1. Welcome ------------------------------------------------------------------------


def test_a_registration_sends_the_welcome_email(broker, clock, mailoutbox):
    load_example("welcome")
    customer = factories.customer(first_name="Nia", email="nia@example.com")

    happen(broker, customer, "customer_registered")

    [email] = mailoutbox
    assert (email.to, email.subject) == (["nia@example.com"], "Welcome to the Example shop, Nia")


def test_a_second_registration_event_sends_nothing_more(broker, clock, mailoutbox):
    load_example("welcome")
    customer = factories.customer()
    happen(broker, customer, "customer_registered")
    clock.shift(timedelta(days=3))

    happen(broker, customer, "customer_registered")

    assert len(mailoutbox) == 1
    assert Message.objects.filter(customer=customer).count() == 1


# --- 2. Welcome series -----------------------------------------------------------------


def test_the_welcome_series_sends_on_days_0_2_5_and_10_after_the_first_order_the_last_with_a_survey(
    broker, clock, mailoutbox
):
    load_example("welcome-series")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "order_placed", order_id="1001", total=54.9)
    sent_on_days = [0]

    for day in range(1, 12):
        at(clock, broker, START + timedelta(days=day))
        sent_on_days += [day] * (len(mailoutbox) - len(sent_on_days))

    assert sent_on_days == [0, 2, 5, 10]
    assert subjects(mailoutbox) == [
        "Thank you for your first order, " + customer.first_name,
        "Three tips for a better espresso",
        "What goes well with your coffee",
        "Two minutes to tell us how we did?",
    ]
    assert "http://localhost:8000/survey/first-order/" in mailoutbox[3].alternatives[0].content
    assert Enrollment.objects.get().state == EnrollmentState.COMPLETED


def test_a_later_order_does_not_start_the_welcome_series_again(broker, clock, mailoutbox):
    load_example("welcome-series")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "order_placed", order_id="1001")
    for day in range(1, 21):
        at(clock, broker, START + timedelta(days=day))

    happen(broker, customer, "order_placed", order_id="1002")
    at(clock, broker, START + timedelta(days=22))

    assert Enrollment.objects.count() == 1
    assert len(mailoutbox) == 4


def test_a_customer_who_opts_out_on_day_3_gets_nothing_more_of_the_series(broker, clock, mailoutbox):
    load_example("welcome-series")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "order_placed", order_id="1001")
    at(clock, broker, START + timedelta(days=2))
    clock.move_to(START + timedelta(days=3))
    consent.revoke(customer, Channel.EMAIL, ConsentSource.UNSUBSCRIBE)

    at(clock, broker, START + timedelta(days=5))
    at(clock, broker, START + timedelta(days=10))

    assert len(mailoutbox) == 2
    later = Message.objects.filter(customer=customer, status=Status.BLOCKED)
    assert [(m.email_template.slug, m.reason) for m in later.order_by("pk")] == [
        ("welcome-series-range", Reason.OPTED_OUT),
        ("welcome-series-survey", Reason.OPTED_OUT),
    ]


# --- 3. Cart abandonment ---------------------------------------------------------------


def test_an_abandoned_cart_gets_a_reminder_after_an_hour_and_a_10_percent_coupon_a_day_later(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35.0)

    at(clock, broker, START + timedelta(minutes=59))
    assert mailoutbox == []
    at(clock, broker, START + timedelta(hours=1))
    assert subjects(mailoutbox) == ["You left something in your cart"]
    at(clock, broker, START + timedelta(hours=24, minutes=59))
    assert len(mailoutbox) == 1
    at(clock, broker, START + timedelta(hours=25))

    coupon = Coupon.objects.get(customer=customer)
    assert coupon.code.startswith("CART-") and coupon.percent_off == 10
    assert subjects(mailoutbox)[1] == f"10 % off your cart: {coupon.code}"
    assert coupon.code in mailoutbox[1].body
    assert Enrollment.objects.get().state == EnrollmentState.COMPLETED


def test_each_abandoned_cart_gets_its_own_coupon_code(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    for _ in range(3):
        happen(broker, opted_in(Channel.EMAIL), "cart_updated", total=20)
    at(clock, broker, START + timedelta(hours=1))
    at(clock, broker, START + timedelta(hours=25))

    codes = Coupon.objects.values_list("code", flat=True)
    assert len(set(codes)) == 3
    assert sorted(subject.split(": ")[1] for subject in subjects(mailoutbox)[3:]) == sorted(codes)


def test_a_cart_under_20_starts_nothing(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    happen(broker, opted_in(Channel.EMAIL), "cart_updated", total=19.99)
    at(clock, broker, START + timedelta(days=2))
    assert Enrollment.objects.count() == 0 and mailoutbox == []


def test_an_order_before_the_first_reminder_converts_the_cart_and_sends_nothing(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    clock.move_to(START + timedelta(minutes=30))

    happen(broker, customer, "order_placed", order_id="1001")
    at(clock, broker, START + timedelta(hours=1))
    at(clock, broker, START + timedelta(hours=25))

    assert Enrollment.objects.get().state == EnrollmentState.CONVERTED
    assert mailoutbox == [] and not Coupon.objects.exists()


def test_an_order_between_the_reminders_converts_the_cart_and_sends_no_coupon(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    at(clock, broker, START + timedelta(hours=1))
    clock.move_to(START + timedelta(hours=5))

    happen(broker, customer, "order_placed", order_id="1001")
    at(clock, broker, START + timedelta(hours=25))

    assert Enrollment.objects.get().state == EnrollmentState.CONVERTED
    assert subjects(mailoutbox) == ["You left something in your cart"]
    assert not Coupon.objects.exists()


def test_an_order_cancels_a_reminder_written_but_not_yet_sent(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    at(clock, broker, START + timedelta(hours=1), deliver=False)  # written; its delivery still queued
    reminder = Message.objects.get(customer=customer)

    emit(customer, "order_placed", {"order_id": "1001"})
    broker.run("customers.tasks.process_event")  # the events queue is quicker than the e-mail queue
    broker.run()

    reminder.refresh_from_db()
    assert (reminder.status, reminder.reason) == (Status.BLOCKED, Reason.ENROLLMENT_ENDED)
    assert mailoutbox == []


def test_two_cart_updates_a_minute_apart_start_one_enrollment(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=25)
    clock.move_to(START + timedelta(minutes=1))
    happen(broker, customer, "cart_updated", total=40)

    at(clock, broker, START + timedelta(hours=1, minutes=1))
    at(clock, broker, START + timedelta(hours=25, minutes=1))

    assert Enrollment.objects.count() == 1
    assert len(mailoutbox) == 2


# --- 7. Webinar reminder ---------------------------------------------------------------


def webinar_registration(broker, customer, starts_at, title="Espresso at home"):
    return happen(
        broker,
        customer,
        "webinar_registered",
        title=title,
        starts_at=starts_at.isoformat(),
        join_url="https://example.com/w/8f3k2",
    )


def test_a_webinar_registration_sends_an_sms_one_hour_before_it_starts(broker, clock):
    load_example("webinar-reminder")
    customer = factories.customer(phone="+12125550100", timezone="America/New_York")
    webinar_registration(broker, customer, START + timedelta(days=2, hours=8))  # Wednesday 18:00

    at(clock, broker, START + timedelta(days=2, hours=6, minutes=59))
    assert locmem.outbox == []
    at(clock, broker, START + timedelta(days=2, hours=7))

    [sms] = locmem.outbox
    assert sms.to == "+12125550100"
    assert sms.body == "Reminder: Espresso at home starts in one hour. https://example.com/w/8f3k2"


@pytest.mark.parametrize(
    "zone, phone, country",
    [
        ("Asia/Tokyo", "+819012345678", "JP"),
        ("Australia/Sydney", "+61412345678", "AU"),
    ],
)
def test_customers_who_may_be_in_asia_or_australia_get_no_webinar_reminder(broker, clock, zone, phone, country):
    load_example("webinar-reminder")
    customer = factories.customer(phone=phone, timezone=zone, country=country)
    webinar_registration(broker, customer, START + timedelta(days=2, hours=8))

    at(clock, broker, START + timedelta(days=2, hours=7))

    assert locmem.outbox == []
    message = Message.objects.get(customer=customer)
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.REGION_EXCLUDED)


def test_registering_for_two_webinars_reminds_of_each(broker, clock):
    load_example("webinar-reminder")
    customer = factories.customer(phone="+12125550100", timezone="America/New_York")
    webinar_registration(broker, customer, START + timedelta(days=2, hours=8), title="Espresso at home")
    webinar_registration(broker, customer, START + timedelta(days=4, hours=8), title="Milk foam")

    at(clock, broker, START + timedelta(days=2, hours=7))
    at(clock, broker, START + timedelta(days=4, hours=7))

    assert [sms.body.split(" starts")[0] for sms in locmem.outbox] == [
        "Reminder: Espresso at home",
        "Reminder: Milk foam",
    ]


# --- 8. Versioning and pause -----------------------------------------------------------


def test_editing_an_active_cart_activity_leaves_waiting_enrollments_on_their_version(broker, clock, mailoutbox):
    activity = load_example("cart-abandonment")
    first = opted_in(Channel.EMAIL, email="first@example.com")
    happen(broker, first, "cart_updated", total=35)

    clock.move_to(START + timedelta(minutes=30))
    factories.email_template(slug="cart-reminder-v2", subject="Your cart misses you")
    edited = [
        {"type": "wait", "hours": 3},
        {"type": "send", "channel": "email", "template": "cart-reminder-v2"},
        *activity.steps[2:],
    ]
    assert load_example("cart-abandonment", steps=edited).version == 2
    second = opted_in(Channel.EMAIL, email="second@example.com")
    happen(broker, second, "cart_updated", total=35)

    at(clock, broker, START + timedelta(hours=1))
    assert [(email.to, email.subject) for email in mailoutbox] == [
        (["first@example.com"], "You left something in your cart"),
    ]
    at(clock, broker, START + timedelta(hours=3, minutes=30))
    assert (mailoutbox[1].to, mailoutbox[1].subject) == (["second@example.com"], "Your cart misses you")
    assert [e.version.number for e in Enrollment.objects.order_by("pk")] == [1, 2]


def test_pausing_holds_waiting_enrollments_and_resuming_sends_their_messages(broker, clock, mailoutbox):
    activity = load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    clock.move_to(START + timedelta(minutes=30))

    engine.pause(activity)
    at(clock, broker, START + timedelta(hours=2))
    assert mailoutbox == []
    assert Enrollment.objects.get().state == EnrollmentState.HELD

    engine.resume(activity)
    broker.run()
    assert subjects(mailoutbox) == ["You left something in your cart"]
    at(clock, broker, START + timedelta(hours=26))  # the next wait counts from the reminder
    assert len(mailoutbox) == 2


def test_pausing_holds_a_message_already_written_and_resuming_sends_it(broker, clock, mailoutbox):
    activity = load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    at(clock, broker, START + timedelta(hours=1), deliver=False)  # written; its delivery still queued

    engine.pause(activity)
    broker.run()  # the worker picks up the delivery queued before the pause
    at(clock, broker, START + timedelta(hours=3))

    reminder = Message.objects.get(customer=customer)
    assert (reminder.status, reminder.reason) == (Status.DEFERRED, Reason.ACTIVITY_PAUSED)
    assert mailoutbox == []

    engine.resume(activity)
    broker.run()
    reminder.refresh_from_db()
    assert reminder.status == Status.SENT
    assert subjects(mailoutbox) == ["You left something in your cart"]


def test_the_version_an_enrollment_started_on_keeps_its_template_after_an_edit(broker, clock, mailoutbox):
    load_example("cart-abandonment")
    customer = opted_in(Channel.EMAIL)
    happen(broker, customer, "cart_updated", total=35)
    at(clock, broker, START + timedelta(hours=1))

    factories.email_template(slug="cart-discount-v2", subject="Last call: {{ coupon.code }}")
    data = json.loads((demo.EXAMPLES_DIR / "cart-abandonment.json").read_text())
    data["steps"][4]["template"] = "cart-discount-v2"
    assert spec.load(data).version == 2
    at(clock, broker, START + timedelta(hours=25))

    assert subjects(mailoutbox)[1].startswith("10 % off your cart: CART-")
    assert Message.objects.filter(email_template__slug="cart-discount-v2").count() == 0
