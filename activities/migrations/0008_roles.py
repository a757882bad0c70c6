"""The console's roles as groups: Marketer, Ops and Viewer, each with exactly its permissions.

A person gets a role by being put in its group (Users > the user > Groups); superusers have
every permission anyway. Running this again sets each group back to the permissions below
(nothing added by hand survives it); reversing it deletes the three groups.

Marketers build activities, content, coupons and segments, read customers and reports, and
record consent; they never touch what runs or bills the platform (API keys, periodic tasks,
SMS credits and rates, suppressions, users, login locks). Ops run the platform: the messages
and their unknown sends, schedules, credits, API keys, suppressions and login locks, with
read access to what marketers build. Viewers read every model of the project's apps.
"""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("add", "change", "delete", "view")
# The project's own apps, whose every model a Viewer reads (the example shop only where it is installed).
PROJECT_APPS = ("activities", "customers", "messaging", "storefront")

MARKETER = {
    "activities": {
        "activity": ("add", "change", "view"),
        "activityversion": ("view",),
        "enrollment": ("view",),
        "couponpool": ("add", "change", "view"),
        "coupon": ("view",),
    },
    "messaging": {
        "emailtemplate": ("add", "change", "view"),
        # A template's languages are edited on its page, so adding or removing one is part of editing it.
        "emailtemplatevariant": ALL,
        "smscontent": ("add", "change", "view"),
        "smscontentvariant": ALL,
        "message": ("view",),  # the reports
        "messageevent": ("view",),
    },
    "customers": {
        "customer": ("view",),
        "event": ("view",),
        # Recording consent appends a record; the ledger is never changed or deleted.
        "consentrecord": ("add", "view"),
        "segment": ("add", "change", "view"),
        # Members are added and removed on the segment's page.
        "segmentmembership": ALL,
    },
}

OPS = {
    "messaging": {
        # The change permission on messages is what the actions on unknown sends ask for
        # (check with the provider, resend, close: messaging/admin.py); no field is editable.
        "message": ("view", "change"),
        "messageevent": ("view",),
        "handover": ("view",),
        "creditentry": ("add", "view"),  # entries are appended, never edited
        "creditbalance": ("view",),
        "smsrate": ALL,
        "suppression": ("add", "delete", "view"),  # deleting one lifts it
        # Read, to find why a message failed (a template error names its template).
        "emailtemplate": ("view",),
        "emailtemplatevariant": ("view",),
        "smscontent": ("view",),
        "smscontentvariant": ("view",),
    },
    "customers": {
        "apikey": ("add", "change", "view"),  # revoked by changing it, not deleted: its name stays on record
        "customer": ("view",),
        "event": ("view",),
        "consentrecord": ("view",),
        "segment": ("view",),
    },
    "activities": {
        "activity": ("view",),
        "activityversion": ("view",),
        "enrollment": ("view",),
    },
    "django_celery_beat": {
        model: ALL
        for model in (
            "periodictask",
            "periodictasks",
            "crontabschedule",
            "intervalschedule",
            "clockedschedule",
            "solarschedule",
        )
    },
    "axes": {
        "accessattempt": ("view", "delete"),  # deleting an attempt unlocks that username and address
        "accessfailurelog": ("view",),
        "accesslog": ("view",),
    },
}


def viewer_grants(apps) -> dict:
    """The view permission on every model of the project's apps present in this state."""
    grants = {}
    for app_label in PROJECT_APPS:
        try:
            models = apps.get_app_config(app_label).get_models()
        except LookupError:  # the example shop is not installed in production
            continue
        grants[app_label] = {model._meta.model_name: ("view",) for model in models}
    return grants


def roles(apps) -> dict:
    return {"Marketer": MARKETER, "Ops": OPS, "Viewer": viewer_grants(apps)}


def permissions_for(apps, grants: dict) -> list:
    Permission = apps.get_model("auth", "Permission")
    permissions = []
    for app_label, models in grants.items():
        for model_name, actions in models.items():
            codenames = [f"{action}_{model_name}" for action in actions]
            found = list(
                Permission.objects.filter(
                    content_type__app_label=app_label,
                    content_type__model=model_name,
                    codename__in=codenames,
                )
            )
            if len(found) != len(codenames):
                missing = sorted(set(codenames) - {permission.codename for permission in found})
                raise LookupError(
                    f"No permission {', '.join(missing)} on {app_label}.{model_name}: "
                    "was the model renamed? Change the roles in a new migration."
                )
            permissions += found
    return permissions


def create_permissions_now(apps, using: str) -> None:
    # Django creates permissions after the last migration (post_migrate); the groups need them
    # now. An app config of a migration state has no models module, which create_permissions
    # takes for an app without models, hence the flag set for the call.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, apps=apps, using=using, verbosity=0)
        finally:
            app_config.models_module = models_module


def create_roles(apps, schema_editor):
    create_permissions_now(apps, schema_editor.connection.alias)
    Group = apps.get_model("auth", "Group")
    for name, grants in roles(apps).items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions_for(apps, grants))


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=("Marketer", "Ops", "Viewer")).delete()


class Migration(migrations.Migration):
    # The latest migration of every app whose permissions the roles name, so that their models exist.
    dependencies = [
        ("activities", "0007_threshold_marks"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0006_event_customer_name_time_index"),
        ("messaging", "0010_handover"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("axes", "0010_accessattemptexpiration"),
        # By label: is_installed() wants the package, and the example shop's is examples.storefront.
        *([("storefront", "0001_initial")] if "storefront" in installed_apps.app_configs else []),
    ]
    operations = [migrations.RunPython(create_roles, delete_roles)]
