"""The clock's jobs for activities (beat): waits that ended, date triggers, threshold scans."""

from celery import shared_task

from . import engine


@shared_task(name="activities.tasks.advance_due")
def advance_due() -> int:
    return engine.advance_due()


@shared_task(name="activities.tasks.run_date_triggers")
def run_date_triggers() -> dict:
    from . import dates  # the date triggers

    return dates.run_date_triggers()


@shared_task(name="activities.tasks.scan_thresholds")
def scan_thresholds() -> dict:
    from . import thresholds  # the threshold triggers' daily scan

    return thresholds.scan_thresholds()
