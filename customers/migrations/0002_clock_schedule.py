"""The sweeper of unprocessed events, as a beat schedule editable in the admin."""

from django.db import migrations

from triggerhub.schedules import add_interval_task, remove_task

TASK = "customers.tasks.sweep_events"


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        migrations.RunPython(
            lambda apps, _: add_interval_task(apps, name="Re-publish events nobody evaluated", task=TASK, seconds=60),
            lambda apps, _: remove_task(apps, task=TASK),
        )
    ]
