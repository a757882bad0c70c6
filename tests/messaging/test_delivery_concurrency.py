"""The same message handed to several worker processes at once is sent once.

Three real ``celery worker`` processes, each sending through the Twilio backend to
the fake Twilio server of this process, consume a queue of their own (so the
session's console-backend worker, if running, never takes these tasks).
"""

import os
import re
import signal
import subprocess
import sys

import pytest
from django.utils import timezone

from messaging.models import Category, Channel, Message, MessageEvent, Status
from messaging.tasks import deliver_sms
from tests import factories
from tests.conftest import ROOT, database_url, wait_until
from tests.fake_twilio import FakeTwilio, Reply

from .conftest import twilio_environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

QUEUE = f"sms-concurrency-{os.getpid()}"
WORKERS = 3


@pytest.fixture(scope="module")
def fake_twilio_for_workers():
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def twilio_workers(django_db_setup, django_db_blocker, broker_dir, fake_twilio_for_workers, tmp_path_factory):
    """Three worker processes, one task at a time each, sending SMS through Twilio to the fake."""
    from django.db import connection

    with django_db_blocker.unblock():
        env = {
            **os.environ,
            **twilio_environment(fake_twilio_for_workers),
            "DATABASE_URL": database_url(connection.settings_dict),
            "PYTHONUNBUFFERED": "1",
        }
    if broker_dir is not None:
        env["TRIGGERHUB_BROKER_DIR"] = str(broker_dir)
    folder = tmp_path_factory.mktemp("twilio-workers")
    workers = []
    for number in range(WORKERS):
        log_path = folder / f"worker-{number}.log"
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
                    QUEUE,
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"twilio-{number}-{os.getpid()}@%h",
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
        workers.append((process, log_path))
    try:
        for process, log_path in workers:
            wait_until(
                lambda log_path=log_path, process=process: (
                    "ready." in log_path.read_text() or process.poll() is not None
                ),
                timeout=60,
                message="a Twilio worker to start",
            )
            if process.poll() is not None:
                pytest.fail(f"a Celery worker exited at start:\n{log_path.read_text()[-3000:]}")
        yield [log_path for _, log_path in workers]
    finally:
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, log_path in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            print(f"\n--- {log_path.name} tail ---\n{log_path.read_text()[-1500:]}")


def queued_sms() -> Message:
    # Written directly, not through outbox.enqueue(), whose nudge would go to the
    # shared "sms" queue: only the three workers below may take this message.
    return Message.objects.create(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        sms_content=factories.sms_content(text="Your order shipped"),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="concurrency:1",
        status=Status.QUEUED,
        send_after=timezone.now(),
    )


def finished_tasks(log_paths, task_ids) -> dict:
    """Task id → (worker log, the task's return value as logged), for the tasks that ended."""
    done = {}
    for log_path in log_paths:
        for task_id, result in re.findall(r"deliver_sms\[([\w-]+)\] succeeded in [\d.]+s: (.*)", log_path.read_text()):
            if task_id in task_ids:
                done[task_id] = (log_path.name, result.strip())
    return done


def test_one_message_delivered_to_three_workers_at_once_reaches_twilio_once(
    twilio_workers,
    fake_twilio_for_workers,
):
    fake = fake_twilio_for_workers
    fake.reset()
    # Twilio answers slowly, so the twin tasks arrive while the first worker is still sending.
    fake.reply_with(Reply(201, delay=1.0))
    message = queued_sms()

    task_ids = {deliver_sms.apply_async(args=[message.pk], queue=QUEUE).id for _ in range(WORKERS)}

    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Status.SENT, timeout=30, message="the message to be sent"
    )
    wait_until(
        lambda: len(finished_tasks(twilio_workers, task_ids)) == WORKERS, timeout=30, message="every task to finish"
    )
    outcomes = finished_tasks(twilio_workers, task_ids)
    assert len(fake.requests) == 1
    assert fake.requests[0].form["Body"] == "Your order shipped"
    assert MessageEvent.objects.filter(message=message, status=Status.SENT).count() == 1
    message.refresh_from_db()
    assert (message.attempts, message.provider_message_id[:2]) == (1, "SM")
    results = [result for _, result in outcomes.values()]
    assert results.count("None") == WORKERS - 1  # the twins found it claimed and did nothing
    assert any("sent" in result for result in results)
    assert len({worker for worker, _ in outcomes.values()}) >= 2  # really in separate processes
