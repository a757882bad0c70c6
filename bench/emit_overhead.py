"""What a storefront pays to emit an event, beside a bare single-row insert.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/emit_overhead.py [--n 10000]

Runs on a throw-away database (test_<name>, created and dropped here). Each emit is
what a storefront view pays in autocommit: the INSERT of the event, its commit, and
handing the evaluation task to the process's publisher thread, which publishes it to
the broker beside the request (it runs during the measurement, competing for the
same process). For comparison, the row "publish in request thread" publishes
synchronously (TRIGGERHUB_PUBLISH_IN_BACKGROUND=false). The baseline is
``Event.objects.create`` of the same row (INSERT + commit, nothing published).
The two are measured in alternating blocks in one run, so drift hits both alike.
Target: emit's median at most 2x the bare insert's.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.events import emit  # noqa: E402
from customers.models import Customer, Event  # noqa: E402
from triggerhub.celery import app as celery_app  # noqa: E402
from triggerhub.queueing import publisher  # noqa: E402

PROPERTIES = {"cart_id": "c0ffee", "total": "59.90", "items": [{"sku": "moka-pot", "quantity": 1}]}


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="emits and inserts each (default 10000)")
    parser.add_argument("--block", type=int, default=500, help="alternate every this many (default 500)")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: this bench measures PostgreSQL.")
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        customer = Customer.objects.create(email="bench@example.com")

        def bare_insert(i):
            Event.objects.create(
                customer=customer, name="cart_updated", properties=PROPERTIES, occurred_at=timezone.now()
            )

        def emit_plain(i):
            emit(customer, "cart_updated", PROPERTIES)

        def emit_keyed(i):
            emit(customer, "cart_updated", PROPERTIES, idempotency_key=f"bench-{i}")

        def emit_publishing_in_request(i):
            settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND = False
            try:
                emit(customer, "cart_updated", PROPERTIES)
            finally:
                settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND = True

        cases = {
            "bare Event.objects.create": bare_insert,
            "emit()": emit_plain,
            "emit(idempotency_key=...)": emit_keyed,
            "emit(), publish in request thread": emit_publishing_in_request,
        }
        timings = {name: [] for name in cases}
        for name, run in cases.items():  # warm-up: connections, pools, statement caches
            for i in range(200):
                run(-i - 1_000_000 * (list(cases).index(name) + 1))
        done = 0
        while done < args.n:
            size = min(args.block, args.n - done)
            for name, run in cases.items():
                samples = timings[name]
                for i in range(done, done + size):
                    start = time.perf_counter_ns()
                    run(i)
                    samples.append(time.perf_counter_ns() - start)
                publisher.flush(60)  # the next case starts with the publisher idle
            done += size
    finally:
        publisher.flush(60)
        celery_app.control.purge()  # no worker ran; drop what the emits published
        connection.creation.destroy_test_db(test_db, verbosity=0)

    base = statistics.median(timings["bare Event.objects.create"])
    base_p99 = percentile(timings["bare Event.objects.create"], 0.99)
    print(
        f"\nemit overhead — {args.n} each, PostgreSQL {connection.pg_version // 10000}, "
        f"broker {settings.CELERY_BROKER_URL.split('://')[0]}"
    )
    print(f"{'what':34} {'median µs':>10} {'p99 µs':>10} {'median ratio':>13} {'p99 ratio':>10}")
    for name, samples in timings.items():
        median, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(f"{name:34} {median / 1000:10.1f} {p99 / 1000:10.1f} {median / base:13.2f} {p99 / base_p99:10.2f}")
    print("target: emit() median ratio <= 2")


if __name__ == "__main__":
    main()
