"""The outbox sweeper, as a beat schedule editable in the admin."""

from django.db import migrations

from triggerhub.schedules import add_interval_task, remove_task

TASK = "messaging.tasks.sweep_outbox"


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        migrations.RunPython(
            lambda apps, _: add_interval_task(
                apps,
                name="Sweep the outbox (release due, re-publish stale, expire leases)",
                task=TASK,
                seconds=30,
            ),
            lambda apps, _: remove_task(apps, task=TASK),
        )
    ]
