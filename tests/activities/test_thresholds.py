"""Threshold triggers: a figure crossing a line fires once per crossing (acceptance 6, loyalty).

SMS go through the real send step, the outbox and delivery to the locmem backend, at
midday in the customers' own zone (New York) so quiet hours stay out of the way.
"""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities import spec
from activities.models import Activity, ActivityStatus, Enrollment, Reentry, ThresholdMark
from activities.thresholds import scan_thresholds
from customers import consent
from customers.events import emit, process_event
from customers.models import ConsentSource, Customer, Event
from messaging import outbox
from messaging.backends.sms import locmem
from messaging.delivery import deliver
from messaging.models import Category, Channel, Message, Status
from tests import factories

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
MIDDAY = datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK)


@pytest.fixture(autouse=True)
def sms_to_locmem(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()


@pytest.fixture
def clock():
    with time_machine.travel(MIDDAY, tick=False) as traveller:
        yield traveller


def threshold_activity(
    *,
    name="Loyalty reward",
    field="attributes.loyalty_points",
    value=1000,
    direction="up",
    days=None,
    text="You reached {{ event.value }} points, {{ customer.first_name }}!",
    **fields,
):
    content = factories.sms_content(slug=name.lower().replace(" ", "-"), text=text)
    trigger = {"type": "threshold", "field": field, "value": value, "direction": direction}
    if days:
        trigger["days"] = days
    defaults = {
        "name": name,
        "status": ActivityStatus.ACTIVE,
        "category": Category.MARKETING,
        "trigger": trigger,
        "reentry": Reentry.ONCE,
        "steps": [{"type": "send", "channel": "sms", "content": content.slug}],
    }
    return Activity.objects.create(**{**defaults, **fields})


def sms_customer(**attributes) -> Customer:
    customer = factories.customer(phone="+12125550100", first_name="Zoe", attributes=attributes)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    return customer


def update_attribute(customer, name, value) -> None:
    """What a storefront does: save the customer; its profile_updated event is then evaluated."""
    customer.attributes = {**customer.attributes, name: value}
    customer.save()
    process_event(Event.objects.filter(customer=customer, name="profile_updated").latest("pk").pk)


def sms_sent() -> list[str]:
    """Deliver what waits in the outbox; the bodies of every SMS handed to the gateway so far."""
    for message in Message.objects.filter(status=Status.QUEUED).order_by("pk"):
        deliver(message.pk)
    return [sms.body for sms in locmem.outbox]


# Loyalty: crossing 1,000 points --------------------------------------------------


def test_crossing_1000_points_sends_one_reward_sms(clock):
    threshold_activity()
    customer = sms_customer(loyalty_points=900)

    update_attribute(customer, "loyalty_points", 1100)

    assert sms_sent() == ["You reached 1100 points, Zoe!"]


def test_updates_that_stay_above_1000_send_nothing_more(clock):
    threshold_activity(reentry=Reentry.ALWAYS)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    sms_sent()

    clock.shift(timedelta(days=2))
    update_attribute(customer, "loyalty_points", 1500)
    update_attribute(customer, "loyalty_points", 1000)

    assert sms_sent() == ["You reached 1100 points, Zoe!"]


def test_updates_below_the_line_send_nothing(clock):
    threshold_activity()
    customer = sms_customer(loyalty_points=100)
    update_attribute(customer, "loyalty_points", 999)
    assert sms_sent() == []
    assert not ThresholdMark.objects.exists()


def test_crossing_again_after_dropping_below_sends_nothing_with_reentry_once(clock):
    threshold_activity(reentry=Reentry.ONCE)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    sms_sent()

    clock.shift(timedelta(days=2))
    update_attribute(customer, "loyalty_points", 400)
    update_attribute(customer, "loyalty_points", 1200)

    assert sms_sent() == ["You reached 1100 points, Zoe!"]
    assert list(Enrollment.objects.values_list("occurrence_key", flat=True)) == ["once"]


def test_crossing_again_after_dropping_below_sends_again_with_reentry_always(clock):
    threshold_activity(reentry=Reentry.ALWAYS)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    sms_sent()

    clock.shift(timedelta(days=2))  # past the site's cap of one marketing SMS a day
    update_attribute(customer, "loyalty_points", 400)
    update_attribute(customer, "loyalty_points", 1200)

    assert sms_sent() == ["You reached 1100 points, Zoe!", "You reached 1200 points, Zoe!"]
    assert sorted(Enrollment.objects.values_list("occurrence_key", flat=True)) == ["crossing:1", "crossing:2"]


def test_reentry_after_days_lets_a_second_crossing_in_only_after_them(clock):
    threshold_activity(reentry=Reentry.AFTER_DAYS, reentry_days=30)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    sms_sent()

    clock.shift(timedelta(days=2))
    update_attribute(customer, "loyalty_points", 400)
    update_attribute(customer, "loyalty_points", 1200)  # too soon: nothing
    sms_sent()
    clock.shift(timedelta(days=30))
    update_attribute(customer, "loyalty_points", 400)
    update_attribute(customer, "loyalty_points", 1300)

    assert sms_sent() == ["You reached 1100 points, Zoe!", "You reached 1300 points, Zoe!"]


def test_points_written_as_decimal_text_count_as_numbers(clock):
    threshold_activity()
    customer = sms_customer(loyalty_points="900")
    update_attribute(customer, "loyalty_points", "1000.5")
    assert sms_sent() == ["You reached 1000.5 points, Zoe!"]


def test_a_nested_attribute_is_read_from_the_changed_top_level_attribute(clock):
    threshold_activity(field="attributes.wallet.points")
    customer = sms_customer(wallet={"points": 10, "tier": "bronze"})
    update_attribute(customer, "wallet", {"points": 1000, "tier": "silver"})
    assert sms_sent() == ["You reached 1000 points, Zoe!"]


def test_a_profile_updated_event_from_elsewhere_with_odd_changes_is_ignored(clock):
    threshold_activity()
    customer = sms_customer()
    for changes in ({"attributes.loyalty_points": 5000}, "points", {"attributes.loyalty_points": [1, 2, 3]}):
        process_event(emit(customer, "profile_updated", {"changes": changes}).pk)
    assert not Enrollment.objects.exists()


def test_a_customer_outside_the_target_gets_nothing(clock):
    threshold_activity(target=[{"field": "country", "op": "eq", "value": "IT"}])
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    assert sms_sent() == []
    assert not Enrollment.objects.exists()


def test_a_paused_activity_does_not_fire(clock):
    threshold_activity(status=ActivityStatus.PAUSED)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    assert scan_thresholds()["activities"] == 0
    assert sms_sent() == []


# The daily scan ----------------------------------------------------------------------


def test_a_bulk_update_over_the_line_is_caught_by_the_daily_scan_once(clock):
    threshold_activity()
    crossing, staying = sms_customer(loyalty_points=900), sms_customer(loyalty_points=10)

    Customer.objects.filter(pk=crossing.pk).update(attributes={"loyalty_points": 1500})
    first, second = scan_thresholds(), scan_thresholds()

    assert (first["crossings"], first["enrolled"], second["crossings"]) == (1, 1, 0)
    assert sms_sent() == ["You reached 1500 points, Zoe!"]
    assert Enrollment.objects.get().customer == crossing
    assert not ThresholdMark.objects.filter(customer=staying).exists()


def test_a_crossing_seen_in_its_event_is_not_fired_again_by_the_scan(clock):
    threshold_activity(reentry=Reentry.ALWAYS)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)

    assert scan_thresholds()["crossings"] == 0
    assert Enrollment.objects.count() == 1


def test_a_crossing_the_scan_fired_is_not_fired_again_by_its_late_event(clock):
    threshold_activity(reentry=Reentry.ALWAYS)
    customer = sms_customer(loyalty_points=900)
    customer.attributes = {"loyalty_points": 1100}
    customer.save()  # its event waits in the queue while the scan runs

    assert scan_thresholds()["enrolled"] == 1
    process_event(Event.objects.get(name="profile_updated").pk)

    assert Enrollment.objects.count() == 1


def test_a_bulk_drop_below_the_line_rearms_the_trigger(clock):
    threshold_activity(reentry=Reentry.ALWAYS)
    customer = sms_customer(loyalty_points=900)
    update_attribute(customer, "loyalty_points", 1100)
    sms_sent()

    clock.shift(timedelta(days=2))
    Customer.objects.filter(pk=customer.pk).update(attributes={"loyalty_points": 0})
    assert scan_thresholds()["rearmed"] == 1
    customer.refresh_from_db()
    update_attribute(customer, "loyalty_points", 1050)

    assert sms_sent() == ["You reached 1100 points, Zoe!", "You reached 1050 points, Zoe!"]


def test_the_scans_queries_do_not_grow_with_the_number_of_customers(clock):
    threshold_activity(reentry=Reentry.ALWAYS)

    def queries_of_a_scan(customers: int) -> int:
        Customer.objects.bulk_create(
            Customer(email=f"bulk{n}@example.com", attributes={"loyalty_points": 1200 if n % 10 == 0 else 10})
            for n in range(customers)
        )
        scan_thresholds()  # the ones over the line cross
        Customer.objects.filter(attributes__loyalty_points=1200).update(attributes={"loyalty_points": 1300})
        Customer.objects.filter(attributes__loyalty_points=10).update(attributes={"loyalty_points": 20})
        factories.customer(attributes={"loyalty_points": 5000})
        with CaptureQueriesContext(connection) as queries:
            assert scan_thresholds()["crossings"] == 1
        Customer.objects.all().delete()
        return len(queries)

    assert queries_of_a_scan(10) == queries_of_a_scan(200)


def at_once(*jobs) -> None:
    """Run ``jobs`` in threads released together, each on its own database connection."""
    start, errors = threading.Barrier(len(jobs)), []

    def run(job):
        start.wait()
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_enroll_each_crossing_customer_once():
    threshold_activity(reentry=Reentry.ALWAYS)
    for _ in range(10):
        factories.customer(attributes={"loyalty_points": 1500})

    at_once(scan_thresholds, scan_thresholds)

    assert Enrollment.objects.count() == 10
    assert set(Enrollment.objects.values_list("occurrence_key", flat=True)) == {"crossing:1"}


@pytest.mark.django_db(transaction=True)
def test_a_crossing_seen_by_its_event_and_the_scan_at_once_enrolls_once():
    threshold_activity(reentry=Reentry.ALWAYS)
    for _ in range(6):
        customer = factories.customer(attributes={"loyalty_points": 900})
        customer.attributes = {"loyalty_points": 1100}
        customer.save()
        event = Event.objects.filter(customer=customer, name="profile_updated").get()

        at_once(lambda event=event: process_event(event.pk), scan_thresholds)

        assert Enrollment.objects.filter(customer=customer).count() == 1


# Direction down, counts ------------------------------------------------------------


def test_an_account_balance_falling_below_10_sends_the_low_balance_sms(clock):
    threshold_activity(
        name="Low balance",
        field="attributes.account_balance",
        value=10,
        direction="down",
        text="Your balance is {{ event.value }}. Top up?",
    )
    customer = sms_customer(account_balance=50)

    update_attribute(customer, "account_balance", 25)
    update_attribute(customer, "account_balance", 7.5)
    update_attribute(customer, "account_balance", 3)

    assert sms_sent() == ["Your balance is 7.5. Top up?"]


def test_a_balance_dropped_in_bulk_is_caught_by_the_scan(clock):
    threshold_activity(name="Low balance", field="attributes.account_balance", value=10, direction="down")
    low, unknown, fine = sms_customer(account_balance=5), sms_customer(), sms_customer(account_balance=80)

    assert scan_thresholds()["enrolled"] == 1  # never seen below: the balance of 5 counts as crossing
    Customer.objects.filter(pk=fine.pk).update(attributes={"account_balance": 2})
    assert scan_thresholds()["enrolled"] == 1

    assert sorted(Enrollment.objects.values_list("customer", flat=True)) == sorted([low.pk, fine.pk])
    assert unknown.pk not in ThresholdMark.objects.values_list("customer", flat=True)


def test_a_third_order_in_30_days_crosses_the_order_count_line(clock):
    threshold_activity(
        name="Third order",
        field="events.order_placed.count",
        value=3,
        days=30,
        text="{{ event.value }} orders this month, thank you!",
    )
    customer = sms_customer()
    emit(customer, "order_placed", {"order_id": "1"}, occurred_at=MIDDAY - timedelta(days=45))
    for order_id in ("2", "3"):
        process_event(emit(customer, "order_placed", {"order_id": order_id}).pk)
    assert sms_sent() == []  # the first order is too old to count

    process_event(emit(customer, "order_placed", {"order_id": "4"}).pk)
    process_event(emit(customer, "order_placed", {"order_id": "5"}).pk)

    assert sms_sent() == ["3 orders this month, thank you!"]


def test_failed_sends_crossing_the_line_are_found_by_the_scan(clock):
    template = factories.email_template(slug="check-your-number", subject="Is your number right?")
    activity = Activity.objects.create(
        name="Failing number",
        status=ActivityStatus.ACTIVE,
        category=Category.TRANSACTIONAL,
        trigger={"type": "threshold", "field": "messages.failed.count", "value": 2, "direction": "up", "days": 7},
        steps=[{"type": "send", "channel": "email", "template": template.slug}],
    )
    customer, other = sms_customer(), sms_customer()
    content = factories.sms_content(slug="notice")
    for n, (who, age) in enumerate([(customer, 1), (customer, 3), (other, 2), (other, 20)]):
        with time_machine.travel(MIDDAY - timedelta(days=age), tick=False):
            message = outbox.enqueue(
                customer=who,
                channel=Channel.SMS,
                content=content,
                category=Category.TRANSACTIONAL,
                source="test",
                dedupe_key=f"failed:{n}",
            )
        Message.objects.filter(pk=message.pk).update(status=Status.FAILED)

    assert scan_thresholds()["enrolled"] == 1

    enrollment = Enrollment.objects.get(activity=activity)
    assert enrollment.customer == customer
    assert enrollment.context["event"]["value"] == 2
    assert Message.objects.get(customer=customer, channel=Channel.EMAIL).email_template == template


def test_activity_files_accept_failed_sends_and_refuse_unknown_figures():
    steps = [{"type": "send", "channel": "email", "template": factories.email_template().slug}]
    good = {
        "name": "x",
        "trigger": {"type": "threshold", "field": "messages.failed.count", "value": 3, "days": 7},
        "steps": steps,
    }
    bad = {**good, "trigger": {"type": "threshold", "field": "messages.opened.count", "value": 3}}
    assert spec.problems_in(good) == []
    assert spec.problems_in(bad) == [
        "trigger.field must be attributes.<name> (a number), events.<name>.count or messages.failed.count"
    ]


def test_the_daily_beat_task_runs_the_scan(clock):
    from activities import tasks

    threshold_activity()
    sms_customer(loyalty_points=2000)
    assert tasks.scan_thresholds() == {"activities": 1, "crossings": 1, "enrolled": 1, "rearmed": 0}
    assert sms_sent() == ["You reached 2000 points, Zoe!"]
