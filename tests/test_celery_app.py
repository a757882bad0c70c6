"""The Celery app's handling of database connections between tasks."""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from messaging.tasks import deliver_email
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
