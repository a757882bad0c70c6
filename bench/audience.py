"""The audience estimate at a million customers: its time beside a hand-written COUNT(*).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/audience.py [--customers 1000000] [--runs 5]

A throw-away PostgreSQL database (``bench_audience_<name>``, never a test run's) is
created, migrated and dropped here (``--keep`` keeps it, ``--reuse`` measures a kept
one again without loading). Everything is loaded by ``INSERT … SELECT
generate_series``, one statement a table, spread by hashes of the customer's id:

* customers in 19 countries weighted as a shop's would be (a fifth in the US, 2.5 %
  each in Australia and New Zealand), the country's language (one in ten English),
  dates of birth over 1940–2011 (one in ten unknown), e-mail for 95 %, a phone for
  70 %, attributes ``tier`` (bronze 60 %, silver 30 %, gold 10 %) and
  ``loyalty_points`` (0–4999);
* consent records: SMS granted by 45 % (a ninth of them revoked later, and 3 % who
  only ever revoked), e-mail granted by 65 % (one in eight revoked later);
* 1 % of the e-mail addresses suppressed; segments ``vip`` (2 %), ``newsletter``
  (25 %) and ``winback`` (5 %); ``order_placed`` events, one to four each for 55 %.

Then ``VACUUM ANALYZE``, as autovacuum would have left the tables. For each target,
after a warm-up, the median of ``--runs`` calls of ``audience.estimate()`` (and the
statements it ran) beside the median of a hand-written ``SELECT COUNT(*), COUNT(*)
FILTER (…)`` of the same conditions in plain SQL, with the same counts (checked),
both without JIT (the estimate turns it off: compiling costs more than it saves
here). The builder stops an estimate after ``audience.ESTIMATE_TIMEOUT_MS`` (5 s);
the bench lifts that limit to measure every target, and marks the rows past it.
``--explain`` prints each estimate's plan (EXPLAIN ANALYZE); ``--old-indexes``
measures with the indexes as they were before customers 0007 (the latest consent
without ``id`` and ``action``, no ``customer_country_birth``), then puts them back.

Target: under 1 s at a million customers for a target of three conditions.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: no query log kept in memory

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from activities import audience  # noqa: E402
from customers.models import Customer, local_zone_for  # noqa: E402

NOW = datetime(2027, 6, 2, 12, 0, tzinfo=UTC)
#: 40 slots: a country's share of the customers is its slots / 40.
COUNTRY_SLOTS = (
    ["US"] * 8
    + ["GB"] * 4
    + ["DE"] * 3
    + ["FR"] * 3
    + ["IT"] * 3
    + ["ES"] * 2
    + ["CA"] * 2
    + ["BR", "BR", "MX", "IN", "IN", "JP", "JP", "AU", "NZ", "PL", "NL", "SE", "ZA", "KR", "AR"]
)
LANGUAGE_OF = {
    "US": "en",
    "GB": "en",
    "DE": "de",
    "FR": "fr",
    "IT": "it",
    "ES": "es",
    "CA": "en",
    "BR": "pt-BR",
    "MX": "es",
    "IN": "hi",
    "JP": "ja",
    "AU": "en",
    "NZ": "en",
    "PL": "pl",
    "NL": "nl",
    "SE": "sv",
    "ZA": "en",
    "KR": "ko",
    "AR": "es",
}

# Pieces of the hand-written SQL (``c`` is the customer).
LATEST_CONSENT = (
    "(SELECT r.action FROM customers_consentrecord r WHERE r.customer_id = c.id AND r.channel = '{}' "
    "ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1) = 'granted'"
)
SMS_ALLOWED = "c.phone <> '' AND " + LATEST_CONSENT.format("sms")
EMAIL_ALLOWED = (
    "c.email <> '' AND NOT EXISTS (SELECT 1 FROM messaging_suppression s WHERE s.channel = 'email' "
    "AND s.address = lower(btrim(c.email))) AND " + LATEST_CONSENT.format("email")
)
ADULT = "c.date_of_birth <= DATE '2009-06-02'"  # 18 or older on NOW

TARGETS = [
    ("everyone (no condition), SMS", [], "sms", "TRUE", SMS_ALLOWED),
    (
        "1: consent.sms is true",
        [{"field": "consent.sms", "op": "is", "value": True}],
        "sms",
        LATEST_CONSENT.format("sms"),
        SMS_ALLOWED,
    ),
    (
        "1: country in [AU, NZ]",
        [{"field": "country", "op": "in", "value": ["AU", "NZ"]}],
        "sms",
        "c.country IN ('AU', 'NZ')",
        SMS_ALLOWED,
    ),
    (
        "3: birthday SMS (consent.sms, AU/NZ, age >= 18)",
        [
            {"field": "consent.sms", "op": "is", "value": True},
            {"field": "country", "op": "in", "value": ["AU", "NZ"]},
            {"field": "age", "op": "gte", "value": 18},
        ],
        "sms",
        f"{LATEST_CONSENT.format('sms')} AND c.country IN ('AU', 'NZ') AND {ADULT}",
        SMS_ALLOWED,
    ),
    (
        "3: US/CA, attributes.tier gold, orders.count >= 2",
        [
            {"field": "country", "op": "in", "value": ["US", "CA"]},
            {"field": "attributes.tier", "op": "eq", "value": "gold"},
            {"field": "orders.count", "op": "gte", "value": 2},
        ],
        "email",
        "c.country IN ('US', 'CA') AND c.attributes ->> 'tier' = 'gold' AND (SELECT count(*) FROM "
        "customers_event e WHERE e.customer_id = c.id AND e.name = 'order_placed' AND e.occurred_at <= %(now)s) >= 2",
        EMAIL_ALLOWED,
    ),
    (
        "3: consent.email, segment newsletter, loyalty >= 1000",
        [
            {"field": "consent.email", "op": "is", "value": True},
            {"field": "segment", "op": "in", "value": ["newsletter"]},
            {"field": "attributes.loyalty_points", "op": "gte", "value": 1000},
        ],
        "email",
        f"{LATEST_CONSENT.format('email')} AND EXISTS (SELECT 1 FROM customers_segmentmembership m JOIN "
        "customers_segment g ON g.id = m.segment_id WHERE m.customer_id = c.id AND (g.slug = 'newsletter' OR "
        "g.name = 'newsletter')) AND (c.attributes -> 'loyalty_points')::float8 >= 1000",
        EMAIL_ALLOWED,
    ),
    (
        "5: IT/DE/FR/ES, language, age 25-45, newsletter, consent.email",
        [
            {"field": "country", "op": "in", "value": ["IT", "DE", "FR", "ES"]},
            {"field": "language", "op": "in", "value": ["it", "de", "fr", "es"]},
            {"field": "age", "op": "between", "value": [25, 45]},
            {"field": "segment", "op": "in", "value": ["newsletter"]},
            {"field": "consent.email", "op": "is", "value": True},
        ],
        "email",
        "c.country IN ('IT', 'DE', 'FR', 'ES') AND c.language IN ('it', 'de', 'fr', 'es') AND "
        "c.date_of_birth <= DATE '2002-06-02' AND c.date_of_birth > DATE '1981-06-02' AND EXISTS (SELECT 1 FROM "
        "customers_segmentmembership m JOIN customers_segment g ON g.id = m.segment_id WHERE m.customer_id = c.id AND "
        "(g.slug = 'newsletter' OR g.name = 'newsletter')) AND " + LATEST_CONSENT.format("email"),
        EMAIL_ALLOWED,
    ),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers to load (default 1000000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query; the median is shown")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database again, without loading")
    parser.add_argument("--explain", action="store_true", help="print each estimate's plan (EXPLAIN ANALYZE)")
    parser.add_argument(
        "--old-indexes", action="store_true", help="measure with the indexes as they were before customers 0007"
    )
    return parser.parse_args()


def hashed(salt: int) -> str:
    """SQL for a number in 0..99,999 spread over the ids ``i``, one spread per ``salt``."""
    return f"((hashint4(i::int # {salt}) & 2147483647) %% 100000)"


def load(customers: int) -> None:
    zones = [local_zone_for(country=country) for country in COUNTRY_SLOTS]
    languages = [LANGUAGE_OF[country] for country in COUNTRY_SLOTS]
    country, language, born, email, phone, tier, points = (hashed(salt) for salt in (11, 12, 13, 14, 15, 16, 17))
    sms, mail, segment, orders, suppressed = (hashed(salt) for salt in (21, 22, 23, 24, 25))
    statements = {
        "customers": f"""
            INSERT INTO customers_customer (
                id, email, phone, first_name, last_name, country, language, timezone, local_zone,
                date_of_birth, attributes, created_at, updated_at)
            SELECT i,
                   CASE WHEN {email} < 95000 THEN 'customer' || i || '@example.com' ELSE '' END,
                   CASE WHEN {phone} < 70000 THEN '+1555' || lpad(i::text, 7, '0') ELSE '' END,
                   'First' || i, '', (%(countries)s::text[])[{country} %% 40 + 1],
                   CASE WHEN {language} < 10000 THEN 'en' ELSE (%(languages)s::text[])[{country} %% 40 + 1] END,
                   '', (%(zones)s::text[])[{country} %% 40 + 1],
                   CASE WHEN {born} < 90000 THEN DATE '1940-01-01' + ({born} %% 26000) END,
                   jsonb_build_object(
                       'tier', CASE WHEN {tier} < 60000 THEN 'bronze' WHEN {tier} < 90000 THEN 'silver' ELSE 'gold' END,
                       'loyalty_points', {points} %% 5000),
                   %(now)s - make_interval(days => i %% 2000), %(now)s
            FROM generate_series(1, %(customers)s) AS i""",
        "consent records": f"""
            INSERT INTO customers_consentrecord (
                customer_id, channel, action, source, evidence, user_agent, recorded_at)
            SELECT i, r.channel, r.action, 'form', '', '', %(now)s - make_interval(days => i %% 2000) + r.later
            FROM generate_series(1, %(customers)s) AS i,
                 LATERAL (VALUES
                     ('sms', 'granted', interval '1 day', {sms} < 45000),
                     ('sms', 'revoked', interval '30 days', {sms} < 5000 OR {sms} >= 97000),
                     ('email', 'granted', interval '1 day', {mail} < 65000),
                     ('email', 'revoked', interval '60 days', {mail} < 8000)
                 ) AS r(channel, action, later, applies)
            WHERE r.applies""",
        "segments": """
            INSERT INTO customers_segment (name, slug, description, created_at)
            VALUES ('VIP', 'vip', '', %(now)s), ('Newsletter', 'newsletter', '', %(now)s),
                   ('Win back', 'winback', '', %(now)s)""",
        "segment members": f"""
            INSERT INTO customers_segmentmembership (segment_id, customer_id, added_at)
            SELECT g.id, i, %(now)s
            FROM generate_series(1, %(customers)s) AS i
            JOIN customers_segment g ON (g.slug = 'vip' AND {segment} < 2000)
                OR (g.slug = 'newsletter' AND {segment} >= 50000 AND {segment} < 75000)
                OR (g.slug = 'winback' AND {segment} >= 90000 AND {segment} < 95000)""",
        "order events": f"""
            INSERT INTO customers_event (customer_id, name, properties, occurred_at, received_at, source, processed_at)
            SELECT i, 'order_placed', jsonb_build_object('total', 10 + (i * n) %% 300),
                   %(now)s - make_interval(days => (i * n) %% 700), %(now)s, 'bench', %(now)s
            FROM generate_series(1, %(customers)s) AS i, generate_series(1, 4) AS n
            WHERE {orders} < 55000 AND n <= 1 + {orders} %% 4""",
        "suppressions": f"""
            INSERT INTO messaging_suppression (channel, address, reason, detail, created_at)
            SELECT 'email', 'customer' || i || '@example.com', 'bounce', '', %(now)s
            FROM generate_series(1, %(customers)s) AS i
            WHERE {suppressed} < 1000 AND {email} < 95000""",
    }
    parameters = {
        "countries": COUNTRY_SLOTS,
        "languages": languages,
        "zones": zones,
        "customers": customers,
        "now": NOW,
    }
    with connection.cursor() as cursor:
        for what, sql in statements.items():
            started = time.perf_counter()
            cursor.execute(sql, parameters)
            print(f"loaded {cursor.rowcount:>9,} {what} in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), %s)", [customers])
    vacuum_analyze()


def vacuum_analyze() -> None:
    with connection.cursor() as cursor:
        for table in (
            "customers_customer",
            "customers_consentrecord",
            "customers_segment",
            "customers_segmentmembership",
            "customers_event",
            "messaging_suppression",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def median_time(function, runs):
    function()  # warm-up: caches, and the first plan
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


OLD_INDEXES = [
    "DROP INDEX customer_country_birth",
    "DROP INDEX consent_latest",
    "CREATE INDEX consent_latest ON customers_consentrecord (customer_id, channel, recorded_at DESC)",
]
NEW_INDEXES = [
    "CREATE INDEX customer_country_birth ON customers_customer (country, date_of_birth) INCLUDE (id, phone, email)",
    "DROP INDEX consent_latest",
    "CREATE INDEX consent_latest ON customers_consentrecord (customer_id, channel, recorded_at DESC, id DESC) "
    "INCLUDE (action)",
]


def set_indexes(statements) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    vacuum_analyze()


def hand_written_count(where: str, allowed: str) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {allowed}) FROM customers_customer c WHERE {where}",
            {"now": NOW},
        )
        return cursor.fetchone()


def measure(label, target, channel, where, allowed, runs, show_plan) -> dict:
    with CaptureQueriesContext(connection) as queries:
        estimate_s, estimate = median_time(lambda: audience.estimate(target, channel=channel, at=NOW), runs)
    if estimate.problems:
        raise RuntimeError(f"{label}: {estimate.problems}")
    statements = len(queries) // (runs + 1)
    if show_plan:
        print(f"\n{label}: the estimate's statement\n{queries[-1]['sql']}\n")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + queries[-1]["sql"].replace("%", "%%"))
            print("\n".join(row[0] for row in cursor.fetchall()))
    count_s, (matching, reachable) = median_time(lambda: hand_written_count(where, allowed), runs)
    if (matching, reachable) != (estimate.matching, estimate.reachable):
        raise RuntimeError(
            f"{label}: the estimate counted {estimate.matching}/{estimate.reachable}, "
            f"the hand-written COUNT(*) {matching}/{reachable}"
        )
    return {
        "target": label,
        "channel": channel,
        "matching": matching,
        "reachable": reachable,
        "estimate": estimate_s,
        "statements": statements,
        "count": count_s,
    }


def main():
    args = parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server: this bench measures it (at a million customers).")
    name = f"bench_audience_{connection.settings_dict['NAME']}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = name
    if args.reuse:
        connection.close()
        connection.settings_dict["NAME"] = name
        customers = Customer.objects.count()
    else:
        test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
        load(args.customers)
        customers = args.customers
    limit_ms = audience.ESTIMATE_TIMEOUT_MS
    audience.ESTIMATE_TIMEOUT_MS = 600_000  # measured, not stopped
    if args.old_indexes:
        set_indexes(OLD_INDEXES)
    rows = []
    try:
        for label, target, channel, where, allowed in TARGETS:
            rows.append(measure(label, target, channel, where, allowed, args.runs, args.explain))
            print(f"measured {label}", flush=True)
    finally:
        if args.old_indexes:
            set_indexes(NEW_INDEXES)
        connection.close()
        if not (args.keep or args.reuse):
            connection.creation.destroy_test_db(test_db, verbosity=0)

    indexes = "the indexes before customers 0007" if args.old_indexes else "the indexes of customers 0007"
    print(
        f"\naudience estimate — PostgreSQL {connection.pg_version // 10000}, {customers:,} customers, "
        f"marketing, at {NOW:%Y-%m-%d %H:%M} UTC, {indexes}; median of {args.runs} runs after a warm-up"
    )
    print("| target | channel | matching | reachable | estimate ms | statements | hand-written COUNT(*) ms | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        past_limit = " *" if row["estimate"] * 1000 > limit_ms else ""
        print(
            f"| {row['target']} | {row['channel']} | {row['matching']:,} | {row['reachable']:,} | "
            f"{row['estimate'] * 1000:,.0f}{past_limit} | {row['statements']} | {row['count'] * 1000:,.0f} | "
            f"{row['estimate'] / row['count']:.2f} |"
        )
    print(
        f"Target: under 1,000 ms for three conditions; the counts of both columns are checked equal. "
        f"* past the builder's limit ({limit_ms:,} ms): there the estimate answers with a problem instead."
    )
    print(
        "statements: the estimate's, BEGIN and COMMIT included (its time limit and JIT set in the first). "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
