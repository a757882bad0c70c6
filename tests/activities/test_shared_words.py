"""The words activities share have one owner each: outcomes and wait endings (steps), the
messages' source prefix (steps), the date pattern (conditions), and "problems" for every
list of what is wrong. The old names stay importable."""

import pathlib
import re

import pytest

from activities import conditions, engine, steps
from activities.engine import evaluate_event
from activities.models import Enrollment, EnrollmentState
from activities.steps import AfterWait, OutcomeKind, source_prefix, step_source
from customers.events import emit
from messaging.models import Message, Reason, Status
from messaging.policy import SendRules
from tests import factories

pytestmark = pytest.mark.django_db

ACTIVITIES = pathlib.Path(conditions.__file__).parent


def test_a_sent_message_carries_its_enrollments_prefix_which_begins_with_its_activitys():
    activity = factories.welcome_activity()
    [enrollment] = evaluate_event(emit(factories.customer(), "customer_registered"))

    message = Message.objects.get()
    assert message.source == step_source(enrollment, "0")
    assert message.source.startswith(source_prefix(enrollment))
    assert source_prefix(enrollment) == f"activity:{activity.pk}/enrollment:{enrollment.pk}/"
    assert source_prefix(enrollment).startswith(source_prefix(activity))


def test_pausing_an_activity_holds_the_message_written_under_its_enrollments_prefix():
    activity = factories.welcome_activity()
    [enrollment] = evaluate_event(emit(factories.customer(), "customer_registered"))

    engine.pause(activity)

    held = Message.objects.get(source=step_source(enrollment, "0"))
    assert (held.status, held.reason) == (Status.DEFERRED, Reason.ACTIVITY_PAUSED)


def test_a_wait_for_event_stores_its_endings_as_their_words():
    factories.welcome_activity(
        steps=[
            {"type": "wait_for_event", "event": "order_placed", "timeout_days": 2, "on_event": "exit"},
        ]
    )
    [enrollment] = evaluate_event(emit(factories.customer(), "customer_registered"))

    enrollment = Enrollment.objects.get(pk=enrollment.pk)
    assert enrollment.state == EnrollmentState.WAITING
    assert enrollment.waiting_for["on_event"] == "exit"
    assert enrollment.waiting_for["on_timeout"] == "continue"
    assert type(enrollment.waiting_for["on_timeout"]) is str


def test_outcome_kinds_and_wait_endings_are_the_words_activity_files_and_histories_use():
    assert list(OutcomeKind) == ["next", "wait", "wait_for_event", "branch", "exit"]
    assert AfterWait.values == ["continue", "exit"]
    assert steps.Outcome().kind == OutcomeKind.NEXT


def test_a_wait_until_with_an_unknown_ending_is_a_problem_naming_both_endings():
    problems = steps.problems_in([{"type": "wait_until", "field": "date_of_birth", "if_past": "stop"}])
    assert problems == ["steps[0]: if_past must be continue or exit"]


def test_no_module_of_activities_but_conditions_writes_the_date_pattern():
    written = [
        path.name
        for path in ACTIVITIES.glob("*.py")
        if path.name != "conditions.py" and re.search(r"\{4\}-\[0-9\]\{2\}-", path.read_text())
    ]
    assert written == []


def test_the_date_pattern_reads_a_date_at_the_start_of_text_only():
    date = re.compile(conditions.DATE_TEXT)
    assert date.match("2024-05-31") and date.match("2024-05-31T10:00:00+02:00")
    assert not date.match(" 2024-05-31") and not date.match("31/05/2024") and not date.match("")


def test_every_list_of_problems_answers_to_its_new_name_and_its_old_one():
    assert conditions.validate is conditions.problems_in
    assert conditions.validate_event_conditions is conditions.event_condition_problems
    assert steps.step_list_problems is steps.problems_in
    assert SendRules.errors_in is SendRules.problems_in
    assert (
        conditions.problems_in([{"field": "country", "op": "eq"}])
        == conditions.validate([{"field": "country", "op": "eq"}])
        != []
    )
    assert SendRules.problems_in({"send_window": {"start": "20:00", "end": "09:00"}}) == [
        "send_window.start must be before send_window.end"
    ]


def test_the_public_ways_in_of_activities_keep_their_paths():
    from activities.spec import SpecError, dump, load, problems_in  # noqa: F401
    from activities.steps import source_prefix as prefix  # noqa: F401
