"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in the apps."""

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init, worker_ready

from . import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")
# Before any connection: without REDIS_URL the broker URL is triggerhub-fs://.
broker.register_scheme()

app = Celery("triggerhub")


def _celery_settings() -> dict:
    """Django's ``CELERY_*`` settings as a plain mapping, read once when Celery first needs them.

    Not ``config_from_object("django.conf:settings", namespace="CELERY")``: that looks
    every option up through Django's lazy settings object on each publish, which cost
    a fifth of the time a storefront pays to emit an event (bench/emit_overhead.py).
    """
    from django.conf import settings

    return {
        name.removeprefix("CELERY_").lower(): getattr(settings, name)
        for name in dir(settings)
        if name.startswith("CELERY_")
    }


app.add_defaults(_celery_settings)
# Celery's Django fixup closes the database connections before and after every task
# unless this is set: a new PostgreSQL connection (a server process forked, a login)
# for every message delivered. With it, Django's own CONN_MAX_AGE and CONN_HEALTH_CHECKS
# decide, as around a web request (below); the fixup's own recycling, after this many
# tasks, comes later than CONN_MAX_AGE in practice.
app.conf.update({"CELERY_DB_REUSE_MAX": 10_000})
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs):
    if getattr(getattr(task, "request", None), "is_eager", False):
        return  # run in the caller's process, inside its transaction: not ours to close
    from django.db import close_old_connections

    close_old_connections()


#: A worker's collector thresholds: a full young generation every 50,000 allocations
#: instead of 700. Delivering a batch allocates many short-lived objects (ORM rows,
#: template contexts, e-mail payloads) that mostly die by reference counting, but with
#: Python's defaults collections run every few hundred of them and pass the survivors
#: on to older generations, whose full collections walk Django's and Celery's 200,000
#: objects: a tenth of a worker's CPU per e-mail, measured in-process, 0.12 ms of
#: 1.2 ms; 0.01 ms with these.
WORKER_GC_THRESHOLDS = (50_000, 20, 100)


@worker_ready.connect
@worker_process_init.connect
def _tune_garbage_collector(**kwargs):
    """In a worker (its process, or each prefork child): what is loaded by now never moves
    through the collector again (``gc.freeze``), and young collections come less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


@worker_init.connect
def _refuse_backends_that_deliver_nothing(**kwargs):
    """A production worker does not start with an e-mail or SMS backend that delivers nothing.

    ``manage.py check`` reports it (messaging.checks, E008 / E009), but Celery runs
    Django's checks and ignores what they find: without this, workers would mark every
    message sent while web refused to start. SystemExit, because Celery logs and
    swallows an Exception raised by a signal's receiver.
    """
    from messaging.checks import check_backends_deliver

    errors = [message for message in check_backends_deliver() if message.is_serious()]
    if errors:
        raise SystemExit("\n".join(f"{error.id}: {error.msg}\n  {error.hint}" for error in errors))
