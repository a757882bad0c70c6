"""The roles (Marketer, Ops, Viewer) let each person do what their work needs and nothing more.

The groups are the ones the data migration (activities/migrations/0008_roles.py) created; each
test logs in a staff user who is in one group only and tries the admin's pages as they would.
"""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import connection
from django.urls import reverse

from messaging import outbox
from messaging.models import Category, Channel, CreditEntry
from tests import factories

pytestmark = pytest.mark.django_db

roles_migration = importlib.import_module("activities.migrations.0008_roles")
PROJECT_APPS = ("activities", "customers", "messaging", "storefront")


def member_of(group_name: str) -> User:
    user = User.objects.create_user(group_name.lower(), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def marketer(client):
    client.force_login(member_of("Marketer"))
    return client


@pytest.fixture
def ops(client):
    client.force_login(member_of("Ops"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(member_of("Viewer"))
    return client


def changelist(label: str) -> str:
    return reverse(f"admin:{label.replace('.', '_').lower()}_changelist")


def add_page(label: str) -> str:
    return reverse(f"admin:{label.replace('.', '_').lower()}_add")


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.filter(name__in=("Marketer", "Ops", "Viewer")).prefetch_related(
            "permissions__content_type"
        )
    }


def unknown_sms():
    return outbox.enqueue(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="roles:1",
    )


# --- Marketer ---------------------------------------------------------------------------------

MARKETER_OPENS = [
    "activities.Activity",
    "activities.Enrollment",
    "activities.CouponPool",
    "activities.Coupon",
    "messaging.EmailTemplate",
    "messaging.SmsContent",
    "customers.Customer",
    "customers.Segment",
    "customers.Event",
    "customers.ConsentRecord",
    "messaging.Message",
]
MARKETER_ADDS = [
    "activities.Activity",
    "activities.CouponPool",
    "messaging.EmailTemplate",
    "messaging.SmsContent",
    "customers.Segment",
]
OPERATIONS = [
    "customers.ApiKey",
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.ClockedSchedule",
    "django_celery_beat.SolarSchedule",
    "messaging.CreditEntry",
    "messaging.SmsRate",
    "messaging.Suppression",
    "auth.User",
    "auth.Group",
    "axes.AccessAttempt",
    "axes.AccessLog",
    "axes.AccessFailureLog",
]


@pytest.mark.parametrize("label", MARKETER_OPENS)
def test_a_marketer_opens_activities_content_customers_and_reports(marketer, label):
    assert marketer.get(changelist(label)).status_code == 200


@pytest.mark.parametrize("label", MARKETER_ADDS)
def test_a_marketer_may_add_activities_templates_sms_content_coupon_pools_and_segments(marketer, label):
    assert marketer.get(add_page(label)).status_code == 200


@pytest.mark.parametrize("label", OPERATIONS)
def test_a_marketer_is_refused_api_keys_periodic_tasks_credits_suppressions_users_and_login_locks(marketer, label):
    assert marketer.get(changelist(label)).status_code == 403


def test_a_marketer_may_record_consent_but_not_rewrite_the_ledger():
    marketer = member_of("Marketer")

    assert marketer.has_perm("customers.add_consentrecord")
    assert not marketer.has_perm("customers.change_consentrecord")
    assert not marketer.has_perm("customers.delete_consentrecord")


def test_a_marketer_may_not_delete_an_activity(marketer):
    activity = factories.welcome_activity()

    response = marketer.get(reverse("admin:activities_activity_delete", args=[activity.pk]))

    assert response.status_code == 403


def test_a_marketer_reads_messages_but_cannot_act_on_unknown_ones(marketer):
    message = unknown_sms()

    assert marketer.get(reverse("admin:messaging_message_change", args=[message.pk])).status_code == 200
    url = reverse("admin:messaging_message_uncertain", args=[message.pk, "resend"])
    assert marketer.post(url, {"post": "yes"}).status_code == 403


def test_a_marketer_cannot_add_credits_by_posting_the_form(marketer):
    response = marketer.post(add_page("messaging.CreditEntry"), {"kind": "purchase", "amount": "1000", "note": ""})

    assert response.status_code == 403
    assert not CreditEntry.objects.exists()


# --- Ops ----------------------------------------------------------------------------------------

OPS_MANAGES = [
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.ClockedSchedule",
    "django_celery_beat.SolarSchedule",
    "customers.ApiKey",
    "messaging.CreditEntry",
    "messaging.SmsRate",
    "messaging.Suppression",
]


@pytest.mark.parametrize("label", OPS_MANAGES)
def test_ops_open_and_add_schedules_api_keys_credits_rates_and_suppressions(ops, label):
    assert ops.get(changelist(label)).status_code == 200
    assert ops.get(add_page(label)).status_code == 200


@pytest.mark.parametrize(
    "label",
    [
        "messaging.Message",
        "axes.AccessAttempt",
        "axes.AccessLog",
        "axes.AccessFailureLog",
        "activities.Activity",
        "customers.Customer",
    ],
)
def test_ops_read_messages_login_records_activities_and_customers(ops, label):
    assert ops.get(changelist(label)).status_code == 200


def test_ops_may_act_on_unknown_messages():
    assert member_of("Ops").has_perm("messaging.change_message")


def test_ops_are_offered_the_actions_on_unknown_messages(ops):
    action_form = ops.get(changelist("messaging.Message")).context["action_form"]

    offered = {name for name, _ in action_form.fields["action"].choices}
    assert {"check_with_provider", "resend", "close_as_sent", "close_as_not_sent"} <= offered


@pytest.mark.parametrize(
    "label",
    [
        "activities.Activity",
        "messaging.EmailTemplate",
        "messaging.SmsContent",
        "customers.Segment",
        "activities.CouponPool",
    ],
)
def test_ops_cannot_add_what_marketers_build(ops, label):
    assert ops.get(add_page(label)).status_code == 403


def test_ops_cannot_change_an_activity(ops):
    activity = factories.welcome_activity()
    url = reverse("admin:activities_activity_change", args=[activity.pk])

    response = ops.post(url, {"name": "Renamed by ops"})

    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.name == "Welcome"


@pytest.mark.parametrize("label", ["auth.User", "auth.Group"])
def test_ops_do_not_manage_users_or_groups(ops, label):
    assert ops.get(changelist(label)).status_code == 403


# --- Viewer -------------------------------------------------------------------------------------


def registered_project_models():
    return [model for model in admin.site._registry if model._meta.app_label in PROJECT_APPS]


@pytest.mark.parametrize("model", registered_project_models(), ids=lambda model: model._meta.label)
def test_a_viewer_opens_every_list_of_the_project_apps(viewer, model):
    assert viewer.get(changelist(model._meta.label)).status_code == 200


def test_a_viewer_opens_an_activity_but_cannot_change_it(viewer):
    activity = factories.welcome_activity()
    url = reverse("admin:activities_activity_change", args=[activity.pk])

    assert viewer.get(url).status_code == 200
    response = viewer.post(url, {"name": "Renamed by a viewer"})

    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.name == "Welcome"


@pytest.mark.parametrize("label", ["activities.Activity", "messaging.SmsContent", "customers.Segment"])
def test_a_viewer_cannot_add_anything(viewer, label):
    assert viewer.get(add_page(label)).status_code == 403


def test_the_index_shows_a_viewer_no_add_link(viewer):
    page = viewer.get(reverse("admin:index")).content.decode()

    assert 'class="viewlink"' in page
    assert 'class="addlink"' not in page and 'class="changelink"' not in page


@pytest.mark.parametrize("label", ["django_celery_beat.PeriodicTask", "auth.User", "axes.AccessAttempt"])
def test_a_viewer_sees_nothing_outside_the_project_apps(viewer, label):
    assert viewer.get(changelist(label)).status_code == 403


# --- The groups themselves ------------------------------------------------------------------------

FORBIDDEN_TO_MARKETERS = (
    "customers.add_apikey",
    "customers.change_apikey",
    "customers.view_apikey",
    "messaging.add_creditentry",
    "messaging.view_creditentry",
    "messaging.add_smsrate",
    "messaging.add_suppression",
    "messaging.delete_suppression",
    "messaging.change_message",
    "customers.change_consentrecord",
    "customers.delete_customer",
    "activities.delete_activity",
)


def test_marketers_hold_no_permission_on_operations():
    granted = group_permissions()["Marketer"]

    assert not {p for p in granted if p.split(".")[0] in ("django_celery_beat", "axes", "auth", "admin")}
    assert not granted & set(FORBIDDEN_TO_MARKETERS)


def test_viewers_hold_only_view_permissions_of_the_project_apps():
    granted = group_permissions()["Viewer"]

    assert granted
    assert all(p.split(".")[1].startswith("view_") and p.split(".")[0] in PROJECT_APPS for p in granted)
    every_model = {
        f"{model._meta.app_label}.view_{model._meta.model_name}"
        for label in PROJECT_APPS
        if label in apps.app_configs
        for model in apps.get_app_config(label).get_models()
    }
    assert granted == every_model


def test_creating_the_roles_again_gives_the_same_permissions():
    created_by_the_migration = group_permissions()

    roles_migration.create_roles(apps, SimpleNamespace(connection=connection))
    roles_migration.create_roles(apps, SimpleNamespace(connection=connection))

    assert group_permissions() == created_by_the_migration
    assert Group.objects.filter(name__in=("Marketer", "Ops", "Viewer")).count() == 3


def test_creating_the_roles_again_takes_back_a_permission_added_by_hand():
    created_by_the_migration = group_permissions()
    marketer = Group.objects.get(name="Marketer")
    marketer.permissions.add(*Group.objects.get(name="Ops").permissions.all())

    roles_migration.create_roles(apps, SimpleNamespace(connection=connection))

    assert group_permissions() == created_by_the_migration


def test_reversing_the_migration_deletes_the_groups_and_applying_it_again_restores_them():
    created_by_the_migration = group_permissions()
    schema_editor = SimpleNamespace(connection=connection)

    roles_migration.delete_roles(apps, schema_editor)
    assert not Group.objects.filter(name__in=("Marketer", "Ops", "Viewer")).exists()

    roles_migration.create_roles(apps, schema_editor)
    assert group_permissions() == created_by_the_migration
