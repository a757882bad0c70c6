"""One run of the date triggers over a million customers: time and statements, at two sizes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/date_triggers.py [--customers 1000000]

A throw-away PostgreSQL database (``triggerhub_bench_dates``, never a test run's) is
created, migrated and dropped here. Customers are loaded by ``INSERT … SELECT
generate_series`` (one statement per size): birthdays spread over 70 years, 20
countries on five continents, ``local_zone`` as ``local_zone_for()`` gives it for
each country. Two activities, measured one at a time: a birthday (a week before, 10:00
local, yearly; 10 of the countries, adults), read through the ``customer_birthday``
index; a car service every 6 months from ``attributes.delivery_date`` (a third of
the customers have one), read by scanning the customers' attributes. At
``--customers / 10`` and at ``--customers`` it times:

* ``run_date_triggers()`` once, enrolling every customer whose send moment falls in
  the next day (and the statements it issued, CaptureQueriesContext);
* the same run again, when everyone is already enrolled (what each hourly run costs);
* a plain ``SELECT COUNT(*)`` of the same customers with the same conditions, one
  per occurrence date, for what finding them costs without enrolling them.

Target: one run under 10 s at a million customers, and a number of statements that
does not depend on the number of customers.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: no query log kept in memory
BENCH_DATABASE = "triggerhub_bench_dates"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from activities import dates  # noqa: E402
from activities.models import Activity, ActivityStatus, Enrollment, Reentry  # noqa: E402
from customers.models import Customer, local_zone_for  # noqa: E402
from messaging.models import Category, SmsContent  # noqa: E402

COUNTRIES = (
    "US",
    "CA",
    "MX",
    "BR",
    "AR",
    "GB",
    "IT",
    "DE",
    "FR",
    "ES",
    "PL",
    "TR",
    "ZA",
    "EG",
    "IN",
    "CN",
    "JP",
    "KR",
    "AU",
    "NZ",
)
TARGETED = list(COUNTRIES[::2])
NOW = datetime(2027, 6, 2, 12, 0, tzinfo=UTC)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers",
        type=int,
        default=1_000_000,
        help="customers at the larger size (default 1000000; the smaller is a tenth)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def load_customers(first: int, last: int) -> None:
    """Customers ``first``..``last`` (ids in the name), in one statement."""
    zones = [local_zone_for(country=country) for country in COUNTRIES]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer (
                email, phone, first_name, last_name, country, language, timezone, local_zone,
                date_of_birth, attributes, created_at, updated_at)
            SELECT 'customer' || i || '@example.com', '', 'First' || i, '', (%(countries)s::text[])[i %% 20 + 1],
                   '', '', (%(zones)s::text[])[i %% 20 + 1],
                   DATE '1940-01-01' + ((i::bigint * 7919) %% 25567)::int,
                   jsonb_build_object('tier', (ARRAY['bronze', 'silver', 'gold'])[i %% 3 + 1])
                   || CASE WHEN i %% 3 = 0 THEN jsonb_build_object(
                          'delivery_date', (DATE '2016-01-01' + ((i::bigint * 31) %% 4000)::int)::text,
                          'car_model', 'Golf') ELSE '{}'::jsonb END,
                   now(), now()
            FROM generate_series(%(first)s, %(last)s) AS i
            """,
            {"countries": list(COUNTRIES), "zones": zones, "first": first, "last": last},
        )
        cursor.execute("ANALYZE customers_customer")


def activities() -> list[Activity]:
    SmsContent.objects.create(slug="birthday", name="Birthday", text="Happy birthday week! {{ coupon.code }}")
    SmsContent.objects.create(
        slug="service", name="Service", text="Time to service your {{ customer.attributes.car_model }}"
    )
    birthday = Activity.objects.create(
        name="Birthday",
        status=ActivityStatus.ACTIVE,
        category=Category.MARKETING,
        reentry=Reentry.ALWAYS,
        trigger={"type": "date", "field": "date_of_birth", "offset_days": -7, "recurrence": "yearly", "at": "10:00"},
        target=[{"field": "country", "op": "in", "value": TARGETED}, {"field": "age", "op": "gte", "value": 18}],
        steps=[
            {"type": "issue_coupon", "percent_off": 15, "prefix": "BDAY"},
            {"type": "send", "channel": "sms", "content": "birthday"},
        ],
    )
    service = Activity.objects.create(
        name="Service",
        status=ActivityStatus.ACTIVE,
        category=Category.MARKETING,
        reentry=Reentry.ALWAYS,
        trigger={"type": "date", "field": "attributes.delivery_date", "recurrence": {"every_months": 6}, "at": "10:00"},
        target=[{"field": "country", "op": "in", "value": TARGETED}],
        steps=[{"type": "send", "channel": "sms", "content": "service"}],
    )
    return [birthday, service]


def timed(function):
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = function()
    return time.perf_counter() - started, len(queries), result


def count_matches(activity) -> int:
    """The customers one run enrolls, counted by plain SELECT COUNT(*)s on the same conditions."""
    trigger = dates.DateTrigger.of(activity)
    total = 0
    for occurrence, zones_by_moment in dates.send_moments(trigger, NOW - dates.CATCH_UP, NOW + dates.LOOKAHEAD).items():
        zones = [zone for names in zones_by_moment.values() for zone in names]
        total += dates.customers_due(activity, trigger, occurrence, zones, now=NOW).order_by().count()
    return total


def birthday_index_used(activity) -> bool:
    trigger = dates.DateTrigger.of(activity)
    occurrence = next(iter(dates.send_moments(trigger, NOW, NOW + dates.LOOKAHEAD)))
    plan = Customer.objects.filter(dates._comes_round_on(trigger, occurrence)).order_by().explain()
    return "customer_birthday" in plan


def measure(activity, size) -> dict:
    """One activity alone (the others paused) over ``size`` customers."""
    Activity.objects.update(status=ActivityStatus.PAUSED)
    Activity.objects.filter(pk=activity.pk).update(status=ActivityStatus.ACTIVE)
    Enrollment.objects.all().delete()
    run_s, run_queries, result = timed(lambda: dates.run_date_triggers(now=NOW))
    again_s, again_queries, again = timed(lambda: dates.run_date_triggers(now=NOW))
    count_s, count_queries, matches = timed(lambda: count_matches(activity))
    if again["enrolled"] != 0 or matches != result["enrolled"]:
        raise RuntimeError(f"enrolled {result['enrolled']}, then {again['enrolled']}; counted {matches}")
    return {
        "activity": activity.name,
        "size": size,
        "enrolled": result["enrolled"],
        "run": run_s,
        "queries": run_queries,
        "again": again_s,
        "again_queries": again_queries,
        "count": count_s,
        "count_queries": count_queries,
    }


def main():
    args = parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server: this bench measures it.")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    rows = []
    try:
        birthday, service = activities()
        loaded = 0
        for size in (args.customers // 10, args.customers):
            started = time.perf_counter()
            load_customers(loaded + 1, size)
            print(f"loaded {size - loaded:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
            loaded = size
            rows += [measure(birthday, size), measure(service, size)]
        index_used = birthday_index_used(birthday)
    finally:
        connection.close()
        if not args.keep:
            connection.creation.destroy_test_db(test_db, verbosity=0)

    print(
        f"\ndate triggers — PostgreSQL {connection.pg_version // 10000}, one run at {NOW:%Y-%m-%d %H:%M} UTC over "
        f"[now - {dates.CATCH_UP}, now + {dates.LOOKAHEAD}), one activity at a time:"
    )
    print("  Birthday: date_of_birth, a week before, 10:00 local, yearly; target 10 of 20 countries, age >= 18")
    print(
        "  Service:  attributes.delivery_date (a third of the customers), every 6 months, 10:00 local; "
        "target 10 of 20 countries"
    )
    print(
        f"{'activity':9} {'customers':>10} {'enrolled':>9} {'run s':>7} {'statements':>11} {'again s':>8} "
        f"{'statements':>11} {'COUNT(*) s':>11} {'statements':>11}"
    )
    for row in rows:
        print(
            f"{row['activity']:9} {row['size']:>10,} {row['enrolled']:>9,} {row['run']:>7.2f} {row['queries']:>11} "
            f"{row['again']:>8.2f} {row['again_queries']:>11} {row['count']:>11.2f} {row['count_queries']:>11}"
        )
    print(
        f"birthday lookups use the customer_birthday index: {'yes' if index_used else 'NO'}; attribute dates "
        "are read by a scan of the customers (no index). Target: run < 10 s, statements the same at both sizes."
    )


if __name__ == "__main__":
    main()
