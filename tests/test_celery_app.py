"""The Celery app's handling of database connections between tasks, and a worker's garbage collector."""

import gc

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import worker_process_init, worker_ready
from django.db import connection

from messaging.tasks import deliver_email
from triggerhub import celery as celery_app_module
from triggerhub.celery import _close_old_connections
from triggerhub.celery import app as celery_app


@pytest.mark.django_db(transaction=True)
def test_worker_keeps_a_persistent_database_connection_from_task_to_task():
    connection.ensure_connection()
    connection.close_at = None  # as with CONN_MAX_AGE=None: Django would keep it for good
    opened = connection.connection
    fixup = DjangoWorkerFixup(celery_app)  # what a worker installs around each task

    for _ in range(3):
        fixup.on_task_prerun(sender=deliver_email)
        _close_old_connections(task=deliver_email)
        fixup.on_task_postrun(sender=deliver_email)
        _close_old_connections(task=deliver_email)

    assert connection.connection is opened


@pytest.mark.django_db(transaction=True)
def test_worker_closes_a_connection_past_conn_max_age_after_a_task():
    connection.ensure_connection()
    connection.close_at = 0  # CONN_MAX_AGE elapsed

    _close_old_connections(task=deliver_email)

    assert connection.connection is None


@pytest.fixture
def collector_as_it_was():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize("signal", [worker_ready, worker_process_init])
def test_a_worker_freezes_what_it_loaded_and_collects_young_objects_less_often(signal, collector_as_it_was):
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)

    signal.send(sender=None)

    assert gc.get_threshold() == celery_app_module.WORKER_GC_THRESHOLDS
    assert gc.get_freeze_count() > 10_000  # Django, Celery and the apps, loaded by now
