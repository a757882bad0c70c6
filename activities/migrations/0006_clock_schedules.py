"""The activities' clock jobs, as beat schedules editable in the admin."""

from django.db import migrations

from triggerhub.schedules import add_interval_task, remove_task

JOBS = [
    ("Advance enrollments whose wait is over", "activities.tasks.advance_due", 30),
    # Hourly: each run enrolls the date-triggered customers whose local send time falls
    # in the next day, with that moment as the enrollment's start; runs overlap safely.
    ("Date triggers (birthdays, anniversaries, service intervals)", "activities.tasks.run_date_triggers", 3600),
    ("Threshold scan (values changed in bulk without events)", "activities.tasks.scan_thresholds", 86400),
]


def add(apps, schema_editor):
    for name, task, seconds in JOBS:
        add_interval_task(apps, name=name, task=task, seconds=seconds)


def remove(apps, schema_editor):
    for _, task, _ in JOBS:
        remove_task(apps, task=task)


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0005_enrollment_version_required"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(add, remove)]
