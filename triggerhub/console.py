"""The console: the admin arranged for the marketers who use it, operations kept apart.

The index page and the sidebar list sections, not Django apps: Activities, Content,
Customers and Reports first, in that order, then the Operations sections (sending, schedules,
people and access) under a heading of their own. A model no section names keeps its app's
own section, before Operations. Each person sees only the models they may view or change,
as in Django's admin; an app's own page (/admin/<app>/) still lists that app.

Times are shown with their zone (triggerhub/formats/), and a date-and-time input says which
zone it reads the time in.

The site is the admin's default site (``ConsoleAdminConfig`` replaces django.contrib.admin
in INSTALLED_APPS), so every ``admin.site.register`` of the apps lands on it unchanged.
"""

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.options import FORMFIELD_FOR_DBFIELD_DEFAULTS
from django.db import models
from django.utils import timezone


@dataclass(frozen=True)
class Section:
    name: str
    slug: str
    models: tuple[str, ...]  # model labels ("app_label.ModelName"), in the order they are listed
    operations: bool = False


SECTIONS = (
    Section(
        "Activities",
        "activities",
        ("activities.Activity", "activities.Enrollment", "activities.CouponPool", "activities.Coupon"),
    ),
    Section("Content", "content", ("messaging.EmailTemplate", "messaging.SmsContent")),
    Section(
        "Customers",
        "customers",
        ("customers.Customer", "customers.Segment", "customers.Event", "customers.ConsentRecord"),
    ),
    Section("Reports", "reports", ("messaging.Message",)),
    Section(
        "Sending",
        "operations-sending",
        ("messaging.CreditEntry", "messaging.SmsRate", "messaging.Suppression"),
        operations=True,
    ),
    Section(
        "Schedules",
        "operations-schedules",
        (
            "django_celery_beat.PeriodicTask",
            "django_celery_beat.CrontabSchedule",
            "django_celery_beat.IntervalSchedule",
            "django_celery_beat.ClockedSchedule",
            "django_celery_beat.SolarSchedule",
        ),
        operations=True,
    ),
    Section(
        "People and access",
        "operations-access",
        (
            "auth.User",
            "auth.Group",
            "customers.ApiKey",
            "axes.AccessAttempt",
            "axes.AccessFailureLog",
            "axes.AccessLog",
        ),
        operations=True,
    ),
)


def arrange_in_sections(app_list: list[dict]) -> list[dict]:
    """Django's list of apps (each with the models the user may see) as the console's sections."""
    shown = {model["model"]._meta.label: model for app in app_list for model in app["models"]}
    named = {label for section in SECTIONS for label in section.models}

    def entries(operations: bool) -> list[dict]:
        return [
            {
                "name": section.name,
                "app_label": section.slug,
                "app_url": "",
                "has_module_perms": True,
                "operations": section.operations,
                "models": models_shown,
            }
            for section in SECTIONS
            if section.operations == operations
            if (models_shown := [shown[label] for label in section.models if label in shown])
        ]

    unnamed = [
        {**app, "operations": False, "models": models_shown}
        for app in app_list
        if (models_shown := [model for model in app["models"] if model["model"]._meta.label not in named])
    ]
    return entries(operations=False) + unnamed + entries(operations=True)


class ConsoleAdminSite(admin.AdminSite):
    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:
            return app_list  # an app's own page lists that app, as Django does
        return arrange_in_sections(app_list)


class ZonedSplitDateTime(widgets.AdminSplitDateTime):
    """The admin's date and time inputs, the time labelled with the zone it is read in."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["time_label"] = f"Time ({timezone.get_current_timezone_name()}):"
        return context


class ConsoleAdminConfig(AdminConfig):
    default_site = "triggerhub.console.ConsoleAdminSite"

    def ready(self):
        # Before autodiscovery: each ModelAdmin copies these defaults when it is registered.
        FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DateTimeField] = {
            **FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DateTimeField],
            "widget": ZonedSplitDateTime,
        }
        super().ready()
