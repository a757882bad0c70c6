"""The embedded broker (no REDIS_URL): separate processes publishing and consuming
through one folder never see a half-written message, never lose one and never get
one twice, and publishing does not warn about a hostname it has no use for."""

import logging
import multiprocessing
import os
import queue
import time

import kombu
import pytest
from django.conf import settings

BROKER_URL = settings.CELERY_BROKER_URL
PRODUCERS, CONSUMERS, MESSAGES_PER_PRODUCER = 3, 3, 1000

pytestmark = pytest.mark.skipif(bool(settings.REDIS_URL), reason="the embedded broker is used without REDIS_URL")


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
        processes.Process(target=produce, args=(options, number, MESSAGES_PER_PRODUCER))
        for number in range(PRODUCERS)
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


def test_publishing_on_the_embedded_broker_logs_no_warning_about_a_hostname(tmp_path, caplog):
    from triggerhub.celery import app

    with app.connection_for_write(transport_options=broker_options(tmp_path)) as connection:
        connection.clone()  # as kombu's connection pool does for each connection it opens
        connection.SimpleQueue("stress").put({"producer": 0, "seq": 1})

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
