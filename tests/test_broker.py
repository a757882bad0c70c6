"""The embedded broker (no REDIS_URL): separate processes publishing and consuming
through one folder never see a half-written message, never lose one and never get
one twice, and publishing does not warn about a hostname it has no use for."""

import builtins
import contextlib
import errno
import logging
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import time

import kombu
import pytest
from django.conf import settings
from kombu.exceptions import ChannelError
from kombu.transport import virtual

from tests.conftest import ROOT, wait_until
from triggerhub import broker

BROKER_URL = settings.CELERY_BROKER_URL
PRODUCERS, CONSUMERS, MESSAGES_PER_PRODUCER = 3, 3, 1000

pytestmark = pytest.mark.skipif(bool(settings.REDIS_URL), reason="the embedded broker is used without REDIS_URL")


@pytest.fixture(autouse=True)
def declarations_of_this_test_only(monkeypatch):
    # Kombu keeps the file-system transport's declared bindings for the whole process, and
    # skips writing one again to the control folder: each test's folder needs its own.
    monkeypatch.setattr(broker.Transport, "global_state", virtual.BrokerState())


def broker_options(folder):
    (folder / "queue").mkdir(exist_ok=True)
    (folder / "control").mkdir(exist_ok=True)
    return {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
    }


def produce(options, producer, count):
    import triggerhub  # noqa: F401  as every TriggerHub process does: the Celery app and its broker

    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        outbox = connection.SimpleQueue("stress")
        for seq in range(count):
            outbox.put({"producer": producer, "seq": seq})
        outbox.close()


def consume(options, stop, results):
    import triggerhub  # noqa: F401

    received, error = [], None
    try:
        with kombu.Connection(BROKER_URL, transport_options=options) as connection:
            inbox = connection.SimpleQueue("stress")
            while True:
                try:
                    message = inbox.get_nowait()
                except queue.Empty:
                    if stop.is_set():
                        break
                    time.sleep(0.001)
                    continue
                message.ack()
                received.append((message.payload["producer"], message.payload["seq"]))
            inbox.close()
    except Exception as exc:  # what killed the demo's worker: reported, not hidden in a child
        error = f"{type(exc).__name__}: {exc}"
    results.put((received, error))


def test_concurrent_producers_and_consumers_get_every_message_exactly_once(tmp_path):
    options = broker_options(tmp_path)
    processes = multiprocessing.get_context("spawn")
    stop, results = processes.Event(), processes.Queue()
    consumers = [processes.Process(target=consume, args=(options, stop, results)) for _ in range(CONSUMERS)]
    producers = [
        processes.Process(target=produce, args=(options, number, MESSAGES_PER_PRODUCER)) for number in range(PRODUCERS)
    ]
    for process in consumers + producers:
        process.start()
    for producer in producers:
        producer.join(60)
        assert producer.exitcode == 0, "a producer failed"
    stop.set()  # the consumers take what is left, then stop
    outcomes = [results.get(timeout=60) for _ in consumers]
    for consumer in consumers:
        consumer.join(10)

    errors = [error for _, error in outcomes if error]
    received = [message for messages, _ in outcomes for message in messages]
    sent = {(producer, seq) for producer in range(PRODUCERS) for seq in range(MESSAGES_PER_PRODUCER)}
    assert errors == []
    assert len(received) == len(sent), f"{len(received) - len(set(received))} duplicates"
    assert set(received) == sent


def test_an_unreadable_message_file_is_set_aside_and_the_next_message_delivered(tmp_path, caplog):
    options = broker_options(tmp_path)
    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        # As kombu's own writer leaves a message between creating its file and writing it;
        # named to come first in the folder's order.
        (tmp_path / "queue" / "0.stress.msg").write_bytes(b"")
        inbox.put({"producer": 0, "seq": 1})

        message = inbox.get(timeout=5)
        message.ack()

        assert message.payload == {"producer": 0, "seq": 1}
        inbox.close()
    assert "0.stress.msg cannot be read" in caplog.text
    assert [p.name for p in (tmp_path / "queue").iterdir()] == [".unreadable-0.stress.msg"]


def queued_files(folder):
    return sorted(p.name for p in (folder / "queue").iterdir())


def age(path, *, seconds):
    """Set ``path``'s modification time ``seconds`` in the past, as if left there that long ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_message_file_that_cannot_be_decoded_is_set_aside_whatever_its_bytes(tmp_path, caplog):
    options = broker_options(tmp_path)
    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        (tmp_path / "queue" / "0.stress.msg").write_bytes(b"\xff\xfe not UTF-8")

        with pytest.raises(queue.Empty):
            inbox.get_nowait()
        inbox.close()
    assert "0.stress.msg cannot be read" in caplog.text
    assert queued_files(tmp_path) == [".unreadable-0.stress.msg"]


def test_a_message_file_that_cannot_be_opened_for_now_stays_in_the_queue_and_is_delivered_next_time(
    tmp_path, monkeypatch
):
    options = broker_options(tmp_path)
    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        inbox.put({"producer": 0, "seq": 1})
        [name] = queued_files(tmp_path)

        def out_of_file_descriptors(*args, **kwargs):
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(broker, "open", out_of_file_descriptors, raising=False)
        with pytest.raises(ChannelError, match=name):
            inbox.get_nowait()
        assert queued_files(tmp_path) == [name]

        monkeypatch.undo()
        message = inbox.get_nowait()
        message.ack()
        inbox.close()
    assert message.payload == {"producer": 0, "seq": 1}
    assert queued_files(tmp_path) == []


def test_a_worker_that_cannot_read_a_message_file_for_now_connects_again_instead_of_stopping(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRIGGERHUB_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "triggerhub",
                "worker",
                "-Q",
                "clock",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "ready." in log_path.read_text(), timeout=60, message="the worker")
        # A directory under a message's name: opening it fails with an OSError, as EMFILE would.
        (tmp_path / "broker" / "queue" / "0.clock.msg").mkdir()
        wait_until(
            lambda: "Cannot read message file '0.clock.msg'" in log_path.read_text(),
            timeout=20,
            message="the worker to meet the file",
        )
        time.sleep(1)
        assert worker.poll() is None, log_path.read_text()[-3000:]
        assert queued_files(tmp_path / "broker") == ["0.clock.msg"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def put_one_and_claim_it(tmp_path, options, *, seconds_ago):
    """A message claimed ``seconds_ago`` by a consumer that was killed before it took it."""
    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        inbox.put({"producer": 0, "seq": 1})
        inbox.close()
    [name] = queued_files(tmp_path)
    claimed = tmp_path / "queue" / f".claimed-{name}"
    os.rename(tmp_path / "queue" / name, claimed)
    age(claimed, seconds=seconds_ago)
    return name


def test_a_message_claimed_by_a_consumer_killed_over_a_minute_ago_goes_back_into_the_queue(tmp_path):
    options = broker_options(tmp_path)
    put_one_and_claim_it(tmp_path, options, seconds_ago=90)

    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        message = inbox.get_nowait()
        message.ack()
        inbox.close()

    assert message.payload == {"producer": 0, "seq": 1}
    assert queued_files(tmp_path) == []


def test_a_message_claimed_seconds_ago_is_left_to_its_consumer(tmp_path):
    options = broker_options(tmp_path)
    name = put_one_and_claim_it(tmp_path, options, seconds_ago=5)

    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        with pytest.raises(queue.Empty):
            inbox.get_nowait()
        inbox.close()

    assert queued_files(tmp_path) == [f".claimed-{name}"]


def test_a_message_that_waited_long_is_not_taken_from_the_consumer_that_just_claimed_it(tmp_path, monkeypatch):
    # A rename keeps a file's mtime: a fresh claim must not look a minute old because its message is.
    options = broker_options(tmp_path)
    with (
        kombu.Connection(BROKER_URL, transport_options=options) as connection,
        kombu.Connection(BROKER_URL, transport_options=options) as other_connection,
    ):
        inbox, other_inbox = connection.SimpleQueue("stress"), other_connection.SimpleQueue("stress")
        inbox.put({"producer": 0, "seq": 1})
        [name] = queued_files(tmp_path)
        age(tmp_path / "queue" / name, seconds=90)
        taken_by_the_other = []

        def open_while_another_consumer_starts_polling(path, *args, **kwargs):
            if path.endswith(name):
                monkeypatch.setattr(broker, "open", builtins.open, raising=False)
                with contextlib.suppress(queue.Empty):
                    taken_by_the_other.append(other_inbox.get_nowait().payload)
            return builtins.open(path, *args, **kwargs)

        monkeypatch.setattr(broker, "open", open_while_another_consumer_starts_polling, raising=False)
        message = inbox.get_nowait()
        message.ack()
        inbox.close()
        other_inbox.close()

    assert (message.payload, taken_by_the_other) == ({"producer": 0, "seq": 1}, [])
    assert queued_files(tmp_path) == []


def test_a_partial_write_left_over_a_minute_ago_is_deleted_and_a_recent_one_kept(tmp_path):
    options = broker_options(tmp_path)
    old_message = tmp_path / "queue" / ".partial-1-0.stress.msg"
    old_table = tmp_path / "control" / ".partial-2-stress.exchange"
    recent = tmp_path / "queue" / ".partial-3-1.stress.msg"
    for path in (old_message, old_table, recent):
        path.write_bytes(b'{"body": ')
    age(old_message, seconds=90)
    age(old_table, seconds=90)

    with kombu.Connection(BROKER_URL, transport_options=options) as connection:
        inbox = connection.SimpleQueue("stress")
        with pytest.raises(queue.Empty):
            inbox.get_nowait()
        inbox.close()

    assert queued_files(tmp_path) == [recent.name]
    assert not old_table.exists()


def test_publishing_on_the_embedded_broker_logs_no_warning_about_a_hostname(tmp_path, caplog):
    from triggerhub.celery import app

    with app.connection_for_write(url="triggerhub-fs://", transport_options=broker_options(tmp_path)) as connection:
        connection.clone()  # as kombu's connection pool does for each connection it opens
        connection.SimpleQueue("stress").put({"producer": 0, "seq": 1})

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
