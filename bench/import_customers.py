"""Customers imported per second from a CSV file, bad rows mixed in.

    .venv/bin/python bench/import_customers.py [--rows 10000] [--bad 0.05]

Generates a file of ``--rows`` customers (profile, consent, two attributes), a share
``--bad`` of them wrong in one of four ways (unknown country, malformed phone,
duplicate e-mail, consent without its source), and imports it with
``import_customers()`` into a throw-away database created and dropped here: the
configured one's test database, or on SQLite a file in a temporary folder (so a test
run's database is never touched). Target: 10,000 rows well under 30 s.
"""

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from customers.importing import CHUNK_SIZE, import_customers  # noqa: E402
from customers.models import Customer  # noqa: E402

HEADER = (
    "external_id,email,phone,country,first_name,last_name,email_consent,consent_source,consent_at,attr_tier,attr_orders"
)
TIERS = ("bronze", "silver", "gold")


def generated_csv(rows: int, bad_share: float) -> tuple[str, int]:
    """The file's text and how many of its rows are bad."""
    bad_every = max(2, round(1 / bad_share)) if bad_share > 0 else 0
    lines, bad = [HEADER], 0
    for i in range(rows):
        row = [
            f"B{i}",
            f"customer{i}@example.com",
            f"+1212{2_000_000 + i}",
            "US",
            f"First{i}",
            f"Last{i}",
            "yes",
            "form",
            "2026-01-15T10:00:00+01:00",
            TIERS[i % 3],
            str(i % 17),
        ]
        if bad_every and i % bad_every == bad_every - 1:
            kind = (i // bad_every) % 4
            if kind == 0:
                row[3] = "XX"
            elif kind == 1:
                row[2] = "555-12"
            elif kind == 2:
                row[1] = "customer0@example.com"
            else:
                row[7] = ""
            bad += 1
        lines.append(",".join(row))
    return "\n".join(lines) + "\n", bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the file (default 10000)")
    parser.add_argument("--bad", type=float, default=0.05, help="share of bad rows (default 0.05)")
    args = parser.parse_args()

    text, bad = generated_csv(args.rows, args.bad)
    with tempfile.TemporaryDirectory() as folder:
        if connection.vendor == "sqlite":
            connection.settings_dict["TEST"]["NAME"] = str(Path(folder) / "bench-import.sqlite3")
        test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            started = time.perf_counter()
            report = import_customers(io.StringIO(text), filename="bench.csv")
            seconds = time.perf_counter() - started
            stored = Customer.objects.count()
        finally:
            connection.creation.destroy_test_db(test_db, verbosity=0)

    assert report.rejected == bad and stored == report.created == args.rows - bad, report.summary()
    print(f"\nimport_customers — {connection.vendor}, chunks of {CHUNK_SIZE:,} rows")
    print(f"{'rows':>8} {'imported':>9} {'rejected':>9} {'seconds':>8} {'rows/s':>8}")
    print(f"{report.rows:8,} {report.created:9,} {report.rejected:9,} {seconds:8.2f} {report.rows / seconds:8,.0f}")


if __name__ == "__main__":
    main()
