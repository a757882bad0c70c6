"""Beat schedules created by data migrations (once, so that edits in the admin stay)."""


def add_interval_task(apps, *, name, task, seconds, queue="clock"):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "queue": queue})


def remove_task(apps, *, task):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=task).delete()
