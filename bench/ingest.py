"""Events accepted per second through POST /api/v1/events/batch, beside raw bulk inserts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/ingest.py [--batches 20] [--clients 2]

A throw-away database (test_<name>) is created and dropped here. The API runs in a
real web server (gunicorn, 2 workers) in front of it; clients post batches of 1,000
events for 1,000 customers (known by external_id after the first batch) over
keep-alive HTTP. The baseline is ``Event.objects.bulk_create`` of the same number of
rows, 1,000 at a time, for existing customers. Target: the API reaches at least a
third of the raw rate.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers import api_keys  # noqa: E402
from customers.models import Customer, Event  # noqa: E402
from triggerhub.celery import app as celery_app  # noqa: E402

BATCH = 1000


def batch_body(number):
    return json.dumps(
        {
            "events": [
                {
                    "name": "page_viewed",
                    "customer": {"external_id": f"bench-{i}"},
                    "properties": {"path": f"/products/{i % 50}", "batch": number},
                    "idempotency_key": f"b{number}-{i}",
                }
                for i in range(BATCH)
            ]
        }
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(d):
    auth = quote(d.get("USER") or "", safe="") + (f":{quote(d['PASSWORD'], safe='')}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d.get('HOST') or 'localhost'}:{d.get('PORT') or 5432}/{d['NAME']}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: this bench measures PostgreSQL.")

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    port = free_port()
    server = None
    try:
        _, key = api_keys.create("bench", rate_limit_per_minute=10**9)
        env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "triggerhub.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--log-level",
                "critical",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        def post(conn, number):
            conn.request("POST", "/api/v1/events/batch", body=batch_body(number), headers=headers)
            response = conn.getresponse()
            payload = json.loads(response.read())
            assert response.status == 202, (response.status, str(payload)[:300])
            return payload["accepted"]

        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        post(warm, -1)  # creates the 1,000 customers; not timed
        post(warm, -2)
        bodies = list(range(args.batches))
        accepted = [0] * args.clients

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for number in bodies[n :: args.clients]:
                accepted[n] += post(conn, number)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        api_seconds = time.perf_counter() - start
        api_events = sum(accepted)

        customers = list(Customer.objects.order_by("pk")[:BATCH])
        now = timezone.now()
        start = time.perf_counter()
        for number in range(args.batches):
            Event.objects.bulk_create(
                [
                    Event(
                        customer=customers[i],
                        name="page_viewed",
                        properties={"path": f"/products/{i % 50}", "batch": number},
                        occurred_at=now,
                        source="raw",
                        idempotency_key=f"r{number}-{i}",
                    )
                    for i in range(BATCH)
                ]
            )
        raw_seconds = time.perf_counter() - start
        raw_events = args.batches * BATCH
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        celery_app.control.purge()  # no worker ran: drop the evaluation tasks the API published
        connection.close()
        connection.creation.destroy_test_db(test_db, verbosity=0)

    api_rate, raw_rate = api_events / api_seconds, raw_events / raw_seconds
    print(
        f"\ningest — PostgreSQL {connection.pg_version // 10000}, broker "
        f"{settings.CELERY_BROKER_URL.split('://')[0]}, {args.clients} clients, gunicorn 2 workers"
    )
    print(f"{'path':42} {'events':>8} {'seconds':>8} {'events/s':>10} {'ratio':>6}")
    print(
        f"{'POST /api/v1/events/batch (1,000 a batch)':42} {api_events:8d} {api_seconds:8.2f} {api_rate:10.0f} "
        f"{api_rate / raw_rate:6.2f}"
    )
    print(
        f"{'Event.objects.bulk_create (1,000 a call)':42} {raw_events:8d} {raw_seconds:8.2f} {raw_rate:10.0f} {1:6.2f}"
    )
    print("target: API ratio >= 0.33")


if __name__ == "__main__":
    main()
