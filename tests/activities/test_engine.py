import pytest
from django.core.exceptions import ValidationError

from activities.engine import evaluate_event
from activities.models import Activity, ActivityStatus, Enrollment, EnrollmentState, Reentry
from customers.events import emit
from messaging.models import Message
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_registration_enrolls_the_customer_and_writes_the_welcome_message():
    activity = factories.welcome_activity()
    customer = factories.customer()
    event = emit(customer, "customer_registered")

    [enrollment] = evaluate_event(event)

    assert (enrollment.activity, enrollment.customer) == (activity, customer)
    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.COMPLETED
    message = Message.objects.get(customer=customer)
    assert message.email_template.slug == "welcome"
    assert message.source == f"activity:{activity.pk}/enrollment:{enrollment.pk}/step:0"


def test_evaluating_the_same_event_twice_enrolls_and_writes_once():
    factories.welcome_activity()
    event = emit(factories.customer(), "customer_registered")
    evaluate_event(event)
    evaluate_event(event)
    assert Enrollment.objects.count() == 1
    assert Message.objects.count() == 1


def test_reentry_once_ignores_a_second_registration_event():
    factories.welcome_activity(reentry=Reentry.ONCE)
    customer = factories.customer()
    evaluate_event(emit(customer, "customer_registered"))
    evaluate_event(emit(customer, "customer_registered"))
    assert Message.objects.filter(customer=customer).count() == 1


def test_reentry_always_enrolls_for_every_event():
    factories.welcome_activity(reentry=Reentry.ALWAYS)
    customer = factories.customer()
    evaluate_event(emit(customer, "customer_registered"))
    evaluate_event(emit(customer, "customer_registered"))
    assert Message.objects.filter(customer=customer).count() == 2


@pytest.mark.parametrize("status", [ActivityStatus.DRAFT, ActivityStatus.PAUSED, ActivityStatus.ENDED])
def test_only_active_activities_enroll(status):
    factories.welcome_activity(status=status)
    assert evaluate_event(emit(factories.customer(), "customer_registered")) == []
    assert Message.objects.count() == 0


def test_other_events_do_not_trigger_the_activity():
    factories.welcome_activity()
    assert evaluate_event(emit(factories.customer(), "order_placed")) == []


def test_an_activity_with_unknown_templates_and_steps_lists_every_problem():
    activity = Activity(
        name="Broken",
        trigger_event="customer_registered",
        steps=[
            {"type": "send", "channel": "email", "template": "nope"},
            {"type": "teleport"},
            {"type": "send", "channel": "fax"},
        ],
    )
    with pytest.raises(ValidationError) as error:
        activity.full_clean()
    problems = error.value.message_dict["steps"]
    assert problems == [
        "steps[0]: there is no e-mail template 'nope'",
        "steps[1]: unknown step type 'teleport'; known: send, wait, wait_until, wait_for_event, branch, "
        "issue_coupon, add_to_segment, remove_from_segment, exit",
        "steps[2]: channel must be 'email' or 'sms', not 'fax'",
    ]


def test_an_activitys_send_window_override_travels_with_its_messages():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    from customers import consent
    from customers.models import ConsentSource
    from messaging.models import Channel, Reason, Status

    content = factories.sms_content(slug="promo")
    rules = {"send_window": {"start": "10:00", "end": "19:00"}}
    factories.welcome_activity(
        category="marketing",
        send_rules=rules,
        steps=[{"type": "send", "channel": "sms", "content": content.slug}],
    )
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    with time_machine.travel(datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("America/New_York")), tick=False):
        evaluate_event(emit(customer, "customer_registered"))

    message = Message.objects.get(customer=customer)
    assert message.rules == rules
    assert (message.status, message.reason) == (Status.DEFERRED, Reason.QUIET_HOURS)
    assert message.send_after.astimezone(ZoneInfo("America/New_York")).hour == 10


def test_invalid_send_rules_are_a_form_error_naming_the_problem():
    activity = factories.welcome_activity(send_rules={"send_window": {"start": "8am"}})
    with pytest.raises(ValidationError) as error:
        activity.full_clean()
    assert error.value.message_dict["send_rules"] == [
        "send_rules: send_window.start must be a time such as 08:00, not '8am'"
    ]


def test_keys_a_step_or_trigger_does_not_read_are_refused_not_ignored():
    from activities import spec

    factories.email_template()
    problems = spec.problems_in(
        {
            "name": "Typos",
            "trigger": {"type": "date", "field": "date_of_birth", "offset": -7},
            "steps": [
                {"type": "wait", "hour": 1},
                {"type": "send", "channel": "email", "template": "welcome", "tempalte": "x"},
            ],
        }
    )
    assert "trigger: a date trigger does not take 'offset'; it takes at, field, offset_days, recurrence" in problems
    assert "steps[0]: wait does not take 'hour'; it takes days, hours, minutes" in problems
    assert any(problem.startswith("steps[1]: send does not take 'tempalte'") for problem in problems)


def test_a_bad_goal_is_shown_on_the_goal_field():
    activity = factories.welcome_activity(goal={"event": 3})
    with pytest.raises(ValidationError) as error:
        activity.full_clean()
    assert list(error.value.message_dict) == ["goal"]


def test_a_goal_reached_before_a_date_enrollment_starts_does_not_end_it():
    from datetime import timedelta

    from django.utils import timezone

    activity = factories.welcome_activity(goal={"event": "order_placed"}, reentry=Reentry.ALWAYS)
    customer = factories.customer()
    waiting = Enrollment.objects.create(
        activity=activity,
        version=activity.current_version(),
        customer=customer,
        occurrence_key="date_of_birth:2027",
        state=EnrollmentState.WAITING,
        position=[0],
        next_run_at=timezone.now() + timedelta(hours=5),
    )
    evaluate_event(emit(customer, "order_placed"))
    waiting.refresh_from_db()
    assert waiting.state == EnrollmentState.WAITING
