"""Test-session plumbing: a real Celery worker process, and a broker that can be made unreachable.

The worker is started once per session, against the test database and the same
broker as the tests (the embedded file-system broker in a temporary folder, or
Redis when REDIS_URL is set). Tests that need it take the ``worker`` fixture and
commit their data (``django_db(transaction=True)``) so the worker can see it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import kombu.pools
import pytest
from django.conf import settings

from triggerhub.celery import app as celery_app
from triggerhub.queueing import publisher

ROOT = Path(__file__).resolve().parent.parent
WORKER_QUEUES = "events,email,sms,clock"


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """A test database of this session's own, so test runs side by side never share one."""
    test_settings = settings.DATABASES["default"].setdefault("TEST", {})
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("sqlite3"):
        name = test_settings.get("NAME") or str(ROOT / "var" / "test-triggerhub.sqlite3")
        test_settings["NAME"] = name.replace(".sqlite3", f"-{os.getpid()}.sqlite3")
    else:
        test_settings["NAME"] = f"test_{settings.DATABASES['default']['NAME']}_{os.getpid()}"


def wait_until(predicate, *, timeout=20.0, interval=0.1, message="condition"):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def database_url(settings_dict) -> str:
    """The URL of the (test) database this process uses, for a child process to share."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no URL for database engine {engine}")


@pytest.fixture(scope="session", autouse=True)
def broker_dir(tmp_path_factory):
    """A broker folder of this session's own, so a running demo never eats test tasks."""
    if settings.REDIS_URL:
        return None
    folder = tmp_path_factory.mktemp("broker")
    (folder / "queue").mkdir()
    (folder / "control").mkdir()
    celery_app.conf.broker_transport_options = {
        **celery_app.conf.broker_transport_options,
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
    }
    reset_broker_connections()
    return folder


def reset_broker_connections():
    """Drop cached broker connections so the next publish uses the current configuration."""
    kombu.pools.reset()  # closes and forgets kombu's process-wide connection and producer pools
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(autouse=True)
def broker_of_its_own(request, broker_dir):
    """A test whose data is rolled back publishes where no worker listens.

    Its nudges would otherwise reach a real worker later: a retry published with a
    countdown (half a minute) by a test of delivery errors ran, in a later test that
    commits its data for the worker, a batch that sent that test's e-mail behind its back.
    Tests that commit (``django_db(transaction=True)``, the ones with workers) publish to
    the session's broker.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        yield
        return
    saved_url = celery_app.conf.broker_url
    celery_app.conf.broker_url = "memory://"
    reset_broker_connections()
    try:
        yield
    finally:
        celery_app.conf.broker_url = saved_url
        reset_broker_connections()


@pytest.fixture(autouse=True)
def no_pending_drain():
    """No e-mail drain pending at a test's start: one an earlier test left in the cache
    may never run (its task was purged), and would silence this test's messages for a minute."""
    from messaging import outbox

    outbox.email_drain_started()


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sent-mail")


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker, broker_dir, mail_dir, tmp_path_factory):
    """A real ``celery worker`` process consuming every queue, on the test database."""
    from django.db import connection

    with django_db_blocker.unblock():
        celery_app.control.purge()  # leftovers of earlier sessions are not this session's work
        from messaging import outbox

        outbox.email_drain_started()  # its drain, if one was pending, went with them
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "DJANGO_EMAIL_FILE_PATH": str(mail_dir),
            "TRIGGERHUB_SMS_BACKEND": "messaging.backends.sms.console.SmsBackend",
            "TRIGGERHUB_RETRY_BACKOFF_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        if broker_dir is not None:
            env["TRIGGERHUB_BROKER_DIR"] = str(broker_dir)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "triggerhub",
                "worker",
                "-Q",
                WORKER_QUEUES,
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "-n",
                f"tests-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "ready." in log_path.read_text() or process.poll() is not None,
            timeout=60,
            message="the Celery worker to start",
        )
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited at start:\n{log_path.read_text()[-3000:]}")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print(f"\n--- worker log tail ({log_path}) ---\n{log_path.read_text()[-2000:]}")


@contextlib.contextmanager
def broker_unreachable():
    """Point this process's Celery at a port where no broker listens, then restore it."""
    saved_url, saved_options = celery_app.conf.broker_url, celery_app.conf.broker_transport_options
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
    # As production's Redis settings do: give up after one reconnection attempt.
    celery_app.conf.broker_transport_options = {**saved_options, "max_retries": 1}
    reset_broker_connections()
    try:
        yield
        publisher.flush()  # what was committed inside tried (and failed) to publish inside
    finally:
        celery_app.conf.broker_url = saved_url
        celery_app.conf.broker_transport_options = saved_options
        reset_broker_connections()
