"""Publishing tasks after the caller's transaction commits, without ever failing it.

The rows written in the transaction (events, messages) are the durable record of
work to do; the broker only carries a nudge. If the broker is unreachable, the
nudge is logged and lost, and the sweepers publish it again from the rows.

After commit the nudge is handed to a publisher thread of this process, so a
storefront request pays for its insert and not for a broker round trip (about as
much again: see bench/emit_overhead.py). A nudge still in that thread when the
process is killed is lost like any other, and swept up the same way.
"""

import atexit
import logging
import os
import queue
import threading

from django.conf import settings
from django.db import connections, transaction

log = logging.getLogger(__name__)


def publish(task, *args, **options) -> bool:
    """Send ``task(*args)`` to the broker now; return False instead of raising if it is down."""
    try:
        # retry=False: nobody should hang on a dead broker; the sweepers retry.
        task.apply_async(args=args, retry=False, **options)
    except Exception as exc:  # kombu raises OperationalError, OSError, ChannelError...
        log.warning("broker unreachable, %s%r left for the sweeper: %s", task.name, args, exc)
        return False
    return True


def publish_on_commit(task, *args, on_failure=None) -> None:
    """Publish ``task(*args)`` once the current transaction commits (at once in autocommit).

    ``on_failure(*args)`` is called if the broker cannot take the task.
    """

    def send():
        if not publish(task, *args) and on_failure is not None:
            on_failure(*args)

    after_commit(send)


def after_commit(job) -> None:
    """Run ``job()`` once the current transaction commits: in the publisher thread, or in
    the caller's when TRIGGERHUB_PUBLISH_IN_BACKGROUND is off. A job that raises is logged."""
    if settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND:
        transaction.on_commit(lambda: publisher.submit(job), robust=True)
    else:
        transaction.on_commit(job, robust=True)


class Publisher:
    """One daemon thread per process that runs publishing jobs in order.

    Started on first use and again after a fork (Celery's prefork children,
    gunicorn workers), since threads do not survive ``fork()``.
    """

    def __init__(self):
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = None

    def submit(self, job) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._jobs = queue.SimpleQueue()
                    threading.Thread(target=self._run, name="triggerhub-publisher", daemon=True).start()
                    self._pid = os.getpid()
        self._jobs.put(job)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every job submitted so far has run; False if that took over ``timeout``."""
        if self._pid != os.getpid():
            return True
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    def _run(self):
        jobs = self._jobs
        while True:
            job = jobs.get()
            try:
                job()
            except Exception:
                log.exception("publishing job failed; the sweepers will cover it")
            finally:
                # A fallback evaluation may have opened a connection in this thread.
                connections.close_all()


publisher = Publisher()
# On a clean exit, give pending nudges a moment to reach the broker.
atexit.register(publisher.flush, 5.0)
