"""Admin actions check the permission they need: a staff user who may only view cannot run them.

Each action that changes something is neither offered to a viewer nor run when a viewer
posts it to the changelist by hand; a user with the model's change permission runs it.
"""

from datetime import timedelta
from functools import partial

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from activities.models import Activity, ActivityStatus
from customers import api_keys
from customers.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db


staff_with = partial(factories.staff_with, username="viewer")


def offered_actions(client, changelist) -> set[str]:
    action_form = client.get(changelist).context["action_form"]
    if action_form is None:
        return set()
    return {name for name, _ in action_form.fields["action"].choices if name}


def run_action(client, changelist, action, *objects):
    return client.post(changelist, {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0})


ACTIVITIES = reverse("admin:activities_activity_changelist")


@pytest.mark.parametrize(
    "action, status",
    [
        ("activate", ActivityStatus.DRAFT),
        ("pause", ActivityStatus.ACTIVE),
        ("resume", ActivityStatus.PAUSED),
        ("end", ActivityStatus.ACTIVE),
    ],
)
def test_a_viewer_of_activities_cannot_activate_pause_resume_or_end_them(client, action, status):
    activity = factories.welcome_activity(status=status)
    client.force_login(staff_with("view_activity"))

    assert action not in offered_actions(client, ACTIVITIES)
    run_action(client, ACTIVITIES, action, activity)

    activity.refresh_from_db()
    assert activity.status == status


@pytest.mark.parametrize(
    "action, status, outcome",
    [
        ("activate", ActivityStatus.DRAFT, ActivityStatus.ACTIVE),
        ("pause", ActivityStatus.ACTIVE, ActivityStatus.PAUSED),
        ("resume", ActivityStatus.PAUSED, ActivityStatus.ACTIVE),
        ("end", ActivityStatus.ACTIVE, ActivityStatus.ENDED),
    ],
)
def test_staff_who_may_change_activities_run_the_actions(client, action, status, outcome):
    factories.customer()  # an audience of one: activating an activity nobody would get is a warning to confirm
    activity = factories.welcome_activity(status=status)
    client.force_login(staff_with("view_activity", "change_activity", username="editor"))

    assert action in offered_actions(client, ACTIVITIES)
    run_action(client, ACTIVITIES, action, activity)

    assert Activity.objects.get(pk=activity.pk).status == outcome


def test_a_viewer_of_activities_may_still_export_them_as_files(client):
    activity = factories.welcome_activity()
    client.force_login(staff_with("view_activity"))

    assert "export_files" in offered_actions(client, ACTIVITIES)
    response = run_action(client, ACTIVITIES, "export_files", activity)
    assert response["Content-Disposition"].startswith("attachment;")


API_KEYS = reverse("admin:customers_apikey_changelist")


def test_a_viewer_of_api_keys_cannot_revoke_them(client):
    api_key, key = api_keys.create("my-shop")
    client.force_login(staff_with("view_apikey"))

    assert "revoke" not in offered_actions(client, API_KEYS)
    run_action(client, API_KEYS, "revoke", api_key)

    assert api_keys.authenticate(key) == api_key


def test_staff_who_may_change_api_keys_revoke_them(client):
    api_key, key = api_keys.create("my-shop")
    client.force_login(staff_with("view_apikey", "change_apikey", username="editor"))

    run_action(client, API_KEYS, "revoke", api_key)

    assert api_keys.authenticate(key) is None
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None


PERIODIC_TASKS = reverse("admin:django_celery_beat_periodictask_changelist")
BEAT_ACTIONS = ["enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"]


@pytest.fixture
def sweeper():
    """The outbox sweeper's schedule, as its migration created it (enabled)."""
    return PeriodicTask.objects.get(task="messaging.tasks.sweep_outbox")


def test_a_viewer_of_periodic_tasks_is_offered_none_of_their_actions(client, sweeper):
    client.force_login(staff_with("view_periodictask"))
    assert offered_actions(client, PERIODIC_TASKS).isdisjoint(BEAT_ACTIONS)


@pytest.mark.parametrize(
    "action, enabled",
    [
        ("enable_tasks", False),
        ("disable_tasks", True),
        ("toggle_tasks", True),
        ("run_tasks", True),
    ],
)
def test_a_viewer_of_periodic_tasks_cannot_run_their_actions(client, sweeper, action, enabled, monkeypatch):
    PeriodicTask.objects.filter(pk=sweeper.pk).update(enabled=enabled)
    published = []
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda task, *a, **kw: published.append(task.name))
    client.force_login(staff_with("view_periodictask"))

    run_action(client, PERIODIC_TASKS, action, sweeper)

    assert PeriodicTask.objects.get(pk=sweeper.pk).enabled == enabled
    assert published == []


def test_staff_who_may_change_periodic_tasks_disable_them(client, sweeper):
    client.force_login(staff_with("view_periodictask", "change_periodictask", username="editor"))

    assert set(BEAT_ACTIONS) <= offered_actions(client, PERIODIC_TASKS)
    run_action(client, PERIODIC_TASKS, "disable_tasks", sweeper)

    assert not PeriodicTask.objects.get(pk=sweeper.pk).enabled


@pytest.mark.parametrize(
    "model, build",
    [
        ("emailtemplate", factories.email_template),
        ("smscontent", factories.sms_content),
    ],
)
def test_a_viewer_of_message_contents_is_not_offered_a_test_send(client, model, build):
    content = build()
    client.force_login(staff_with(f"view_{model}"))
    changelist = reverse(f"admin:messaging_{model}_changelist")

    assert "send_test" not in offered_actions(client, changelist)
    response = run_action(client, changelist, "send_test", content)
    assert response.status_code == 200  # the changelist again, not the send-test page


def test_staff_who_may_change_a_template_are_taken_to_its_test_send(client):
    template = factories.email_template()
    client.force_login(staff_with("view_emailtemplate", "change_emailtemplate", username="editor"))

    response = run_action(client, reverse("admin:messaging_emailtemplate_changelist"), "send_test", template)

    assert response["Location"] == reverse("admin:messaging_emailtemplate_send_test", args=[template.pk])


ACCESS_ATTEMPTS = reverse("admin:axes_accessattempt_changelist")


def expired_login_failure() -> AccessAttempt:
    attempt = AccessAttempt.objects.create(
        username="ops",
        ip_address="203.0.113.9",
        user_agent="",
        get_data="",
        post_data="",
        http_accept="",
        path_info="/admin/login/",
        failures_since_start=1,
    )
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=timezone.now() - timedelta(days=2))
    return attempt


def test_a_viewer_of_login_failures_cannot_clean_them_up(client):
    client.force_login(staff_with("view_accessattempt"))  # a login cleans up expired failures itself
    attempt = expired_login_failure()

    assert "cleanup_expired_attempts" not in offered_actions(client, ACCESS_ATTEMPTS)
    run_action(client, ACCESS_ATTEMPTS, "cleanup_expired_attempts", attempt)

    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


def test_staff_who_may_delete_login_failures_clean_up_the_expired(client):
    client.force_login(staff_with("view_accessattempt", "delete_accessattempt", username="editor"))
    attempt = expired_login_failure()

    run_action(client, ACCESS_ATTEMPTS, "cleanup_expired_attempts", attempt)

    assert not AccessAttempt.objects.filter(pk=attempt.pk).exists()
