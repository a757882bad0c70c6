"""E-mails delivered per second through TriggerHub's outbox and real workers, beside django-post-office.

    .venv/bin/pip install -e ".[bench]"   # once: django-post-office
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/delivery.py [--count 20000] [--rounds 4] [--processes 2] [--threads 5] \
        [--pool prefork|threads]

A throw-away database (``triggerhub_bench``, never a test run's) is created, migrated
with post-office installed (bench/settings_delivery.py) and dropped here; the Celery
broker is a Redis database of its own (``--redis-db``), emptied before and after.
Both systems send the same transactional e-mail (a template with a subject, an HTML
and a text body, the customer's name and an order's lines), rendered at delivery, to
``--count`` customers through the same backend: anymail's test backend
(bench/anymail_test_backend.py). Each is timed in two phases:

* TriggerHub. write: ``messaging.outbox.enqueue()`` once per message, each in its own
  transaction as an activity's step does (policy asked, Message and MessageEvent
  inserted, a drain of the e-mail queue requested unless one is pending; until the
  publisher has flushed). deliver: a Celery worker as TriggerHub ships it (``celery -A
  triggerhub worker``, Celery's default prefork pool, ``--concurrency <--processes>``
  pool processes; already started and idle) listens on the e-mail queue; the time runs
  from the publication of a drain there (as a new message's enqueue publishes it) until
  the last message's "sent" event is stored in PostgreSQL. ``--pool threads`` runs
  ``--processes`` workers of ``--threads`` threads each instead (one thread: solo).
* django-post-office. write: ``mail.send_many()`` of the same e-mails
  (``render_on_delivery=True``). deliver: ``mail.send_queued(processes=<--processes>)``
  with ``THREADS_PER_PROCESS=<--threads>``, called until nothing is queued (batches of
  ``--post-office-batch``; a Log row per e-mail sent, post-office's default log level).
  The bench's own objects are frozen out of the garbage collector's sight first, as
  if send_queued ran in a process of its own; post-office keeps Python's collector
  thresholds unless ``--post-office-worker-gc`` gives it TriggerHub's workers' ones
  (``triggerhub.celery.WORKER_GC_THRESHOLDS``), which it gains from too.

Each system so runs as it ships, with the same number of delivering processes:
post-office with its default threads in each, TriggerHub's worker with Celery's
default pool (a process per task under way: here a drain each). The test backend
answers at once, so both are bound by CPU here; over the network an ESP's answers
take most of the time, and either system then wants more tasks under way than
cores (threads, or more pool processes). ``--pool threads`` shows what running
TriggerHub's drains in threads costs in CPU.

The two alternate ``--rounds`` times, a share of ``--count`` each time, and the
phases are summed: the machine's load drifts (other processes share its cores) and
must hit both alike. DEBUG is off for both. Each delivery phase also reports the CPU
time the delivering processes (a worker with its pool processes) and PostgreSQL's
processes used per message (the two systems share two cores with the database, so
CPU per message is what the rate follows). Before the timed run it counts the SQL
statements and the writing commits of one full batch of TriggerHub e-mail (in this
process, same backend); ``--profile N`` also prints where N deliveries in batches in
this process spend their time.
Target: TriggerHub delivers at least twice as many messages per second as
django-post-office.
"""

import argparse
import cProfile
import gc
import logging
import os
import pstats
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# post-office must be an installed app here and in the workers: the bench's own settings.
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_delivery"
os.environ["DJANGO_DEBUG"] = "false"  # as in production: no query log kept in memory
BENCH_DATABASE = "triggerhub_bench"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="e-mails per system (default 20000)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for each system (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=5,
        help="post-office's THREADS_PER_PROCESS (default 5, its own default); also "
        "TriggerHub's threads per worker process with --pool threads",
    )
    parser.add_argument(
        "--pool",
        choices=("prefork", "threads"),
        default="prefork",
        help="TriggerHub's Celery pool (default prefork, as its workers ship: one "
        "worker with --processes pool processes; threads: --processes workers "
        "of --threads threads each, solo for 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="alternate the systems this many times, --count/rounds each time, so "
        "that drift in the machine's load hits both alike (default 4)",
    )
    parser.add_argument(
        "--prefetch", type=int, default=1, help="the workers' --prefetch-multiplier (default 1, TriggerHub's setting)"
    )
    parser.add_argument(
        "--post-office-batch",
        type=int,
        default=1000,
        help="post-office's BATCH_SIZE (default 1000; its own default is 100)",
    )
    parser.add_argument(
        "--post-office-worker-gc",
        action="store_true",
        help="run post-office with the garbage-collector thresholds TriggerHub's workers set "
        "(default: Python's, as post-office ships)",
    )
    parser.add_argument(
        "--redis-db", type=int, default=15, help="the Redis database used as the bench's broker (default 15)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also profile N TriggerHub deliveries in this process"
    )
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and os.environ.get("REDIS_URL"):
    # Not the tests' broker database: their worker would take our tasks, ours theirs.
    _redis = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{ARGS.redis_db}"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core import mail as django_mail  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from post_office import mail as post_office_mail  # noqa: E402
from post_office.models import STATUS as PO_STATUS  # noqa: E402
from post_office.models import Email as PoEmail  # noqa: E402
from post_office.models import EmailTemplate as PoTemplate  # noqa: E402

from customers.models import Customer  # noqa: E402
from messaging import delivery, outbox  # noqa: E402
from messaging.models import Category, Channel, EmailTemplate, Message, MessageEvent, Status  # noqa: E402
from triggerhub.celery import WORKER_GC_THRESHOLDS  # noqa: E402
from triggerhub.celery import app as celery_app  # noqa: E402
from triggerhub.queueing import publisher  # noqa: E402

logging.getLogger("post_office").setLevel(logging.WARNING)  # a line per batch and process otherwise

SUBJECT = "Your order {{ event.order_id }} is confirmed, {{ customer.first_name }}"
HTML_BODY = """<h1>Thank you, {{ customer.first_name }}!</h1>
<p>We received your order {{ event.order_id }} of {{ event.total }} {{ event.currency }}.</p>
<table>{% for item in event.items %}
<tr><td>{{ item.quantity }} ×</td><td>{{ item.name }}</td><td>{{ item.price }}</td></tr>{% endfor %}
</table>
<p><a href="https://shop.example.com/orders/{{ event.order_id }}">Follow your order</a></p>
<p>The Moka Shop</p>"""
TEXT_BODY = """Thank you, {{ customer.first_name }}!

We received your order {{ event.order_id }} of {{ event.total }} {{ event.currency }}.
{% for item in event.items %}
{{ item.quantity }} × {{ item.name }}  {{ item.price }}{% endfor %}

Follow your order: https://shop.example.com/orders/{{ event.order_id }}
The Moka Shop"""
ITEMS = [
    {"name": "Moka pot, 6 cups", "quantity": 1, "price": "39.90"},
    {"name": "Ground coffee 250 g", "quantity": 2, "price": "9.95"},
]
SENDER = "The Moka Shop <orders@shop.example.com>"


def order(i):
    return {"name": "order_placed", "order_id": f"A{100_000 + i}", "total": "59.80", "currency": "EUR", "items": ITEMS}


def database_url(d):
    auth = quote(d.get("USER") or "", safe="") + (f":{quote(d['PASSWORD'], safe='')}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d.get('HOST') or 'localhost'}:{d.get('PORT') or 5432}/{d['NAME']}"


def create_customers(count):
    Customer.objects.bulk_create(
        (
            Customer(
                external_id=f"bench-{i}",
                email=f"customer{i}@example.com",
                first_name=f"First{i}",
                last_name=f"Last{i}",
                country="IT",
                language="en",
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    return list(Customer.objects.order_by("pk"))


def worker_pools(pool, processes, threads):
    """The Celery workers to start: ``(pool, concurrency)`` for each.

    prefork (the product's ``celery worker``, Celery's default pool): one worker whose
    ``processes`` pool processes each deliver one task at a time. threads: ``processes``
    workers of ``threads`` threads each (one thread: the solo pool).
    """
    if pool == "prefork":
        return [("prefork", processes)]
    return [("solo" if threads == 1 else "threads", threads)] * processes


def workers_description(pools):
    (pool, concurrency), count = pools[0], len(pools)
    return f"{f'{count} × ' if count > 1 else ''}celery worker --pool {pool} --concurrency {concurrency}"


class Workers:
    """The Celery workers of ``worker_pools()`` on the bench database, idle until ``consume()``."""

    IDLE_QUEUE = "bench-idle"

    def __init__(self, pools, prefetch, log_dir):
        self.names, self.processes, self.logs = [], [], []
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "DJANGO_SETTINGS_MODULE": "bench.settings_delivery",
            "PYTHONUNBUFFERED": "1",
        }
        for n, (pool, concurrency) in enumerate(pools):
            name = f"bench{n}-{os.getpid()}@delivery"
            log = open(Path(log_dir) / f"worker{n}.log", "w")
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "triggerhub",
                        "worker",
                        "-Q",
                        self.IDLE_QUEUE,
                        "--pool",
                        pool,
                        "--concurrency",
                        str(concurrency),
                        "--prefetch-multiplier",
                        str(prefetch),
                        "--loglevel",
                        "WARNING",
                        "-n",
                        name,
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
            )
            self.names.append(name)
            self.logs.append(log)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        ready = set()
        while ready != set(self.names):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"workers not ready (see {self.logs[0].name}): {set(self.names) - ready}")
            for reply in celery_app.control.ping(destination=self.names, timeout=0.5) or []:
                ready.update(reply)

    def consume(self, queue):
        """Have the workers listen on ``queue``, and return once they do.

        A Redis consumer takes a queue added to it into its next BRPOP, which begins when
        the one waiting on the old queues times out (``brpop_timeout``, a second): until
        then a task published there waits. Not the product's time, so not timed.
        """
        replies = celery_app.control.add_consumer(queue, destination=self.names, reply=True, timeout=5)
        if len(replies) != len(self.names):
            raise RuntimeError(f"only {len(replies)} of {len(self.names)} workers took the {queue} queue")
        time.sleep(self.BRPOP_TIMEOUT + 0.2)

    def pause(self, queue):
        """Stop listening on ``queue``; as with ``consume()``, the BRPOP under way still includes it."""
        celery_app.control.cancel_consumer(queue, destination=self.names, reply=True, timeout=5)
        time.sleep(self.BRPOP_TIMEOUT + 0.2)

    BRPOP_TIMEOUT = 1  # kombu's Redis transport default

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self.logs:
            log.close()


TICKS = os.sysconf("SC_CLK_TCK")


def running_pids():
    """The ids of the processes on this machine now."""
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def stat_fields(pid):
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:  # gone: a postgres backend that ended
        return None


def process_cpu(pid):
    """CPU seconds (user + system) that process ``pid`` and its reaped children used so far."""
    fields = stat_fields(pid)
    return sum(int(value) for value in fields[11:15]) / TICKS if fields else 0.0


def tree_cpu(pids):
    """CPU seconds used so far by processes ``pids`` and all their descendants, live or reaped
    (a prefork worker's pool processes live as long as it does: its ``cutime`` lacks them)."""
    parents = {pid: int(fields[1]) for pid in running_pids() if (fields := stat_fields(pid))}
    tree, frontier = set(pids), set(pids)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return sum(process_cpu(pid) for pid in tree)


def postgres_cpu():
    """CPU seconds used so far by the PostgreSQL server's processes on this machine."""
    total = 0.0
    for pid in running_pids():
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        total += process_cpu(pid)
    return total


def close_connection():
    """Close this process's database connection and wait until its server process is gone.

    PostgreSQL's figure counts the backends that ended during a phase through the
    postmaster, which reaps them (``cutime``). Closing the write phase's connection
    without waiting would book all the CPU of that phase's backend, reaped a moment
    later, to the delivery phase.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    connection.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and the postmaster has reaped it


class Cpu:
    """CPU seconds spent in a phase by the delivering processes and by PostgreSQL.

    PostgreSQL's figure sums its processes (a backend that ends within the phase counts
    through the postmaster that reaps it). Start a phase after ``close_connection()``.
    """

    def __init__(self, delivering):
        self.delivering = delivering  # () -> CPU seconds of the delivering processes so far
        self.python = self.postgres = 0.0

    def __enter__(self):
        self._start = (self.delivering(), postgres_cpu())
        return self

    def __exit__(self, *exc):
        self.python += self.delivering() - self._start[0]
        self.postgres += postgres_cpu() - self._start[1]


def enqueue_order(customer, i, template, tag):
    """The bench's e-mail: order ``i``'s confirmation to ``customer``, through TriggerHub's outbox."""
    return outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source=f"bench:{tag}",
        dedupe_key=f"bench:{tag}:{i}",
        context={"event": order(i)},
    )


def triggerhub_write(customers, first, template, tag):
    start = time.perf_counter()
    for i, customer in enumerate(customers, start=first):
        with transaction.atomic():
            enqueue_order(customer, i, template, tag)
    if not publisher.flush(600):
        raise RuntimeError("the publisher did not flush in 10 minutes")
    return time.perf_counter() - start


def triggerhub_deliver(workers, count, tag):
    # Polled on the narrow events table from the round's first id (an index range),
    # not by counting messages: a scan of the wide message rows ten times a second
    # would load PostgreSQL, and so TriggerHub's figure, with the bench's own work.
    since = MessageEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    sent = MessageEvent.objects.filter(pk__gt=since, status=Status.SENT)
    if Message.objects.filter(source=f"bench:{tag}", status=Status.QUEUED).count() != count:
        raise RuntimeError(f"the {count} messages of {tag} are not all queued before their delivery")
    # The drain the write phase published waits in the queue: the workers are first told
    # to listen there, untimed (see consume()), and the time starts when a drain is
    # published into the queue they listen on, as when a site's workers are running.
    purge_broker()
    workers.consume("email")
    started_at = timezone.now()
    start = time.perf_counter()
    if not outbox.request_email_drain():
        raise RuntimeError("the broker refused the drain")
    deadline = start + max(600, count / 5)
    while (done := sent.count()) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {done} of {count} messages sent after {deadline - start:.0f}s")
        time.sleep(1)  # the time is the last "sent" event's: polling late does not lengthen it
    workers.pause("email")
    if Message.objects.filter(source=f"bench:{tag}", status=Status.SENT).count() != count:
        raise RuntimeError(f"the {count} messages of {tag} are not all sent")
    return (sent.aggregate(last=Max("at"))["last"] - started_at).total_seconds()


def post_office_write(customers, first, po_template):
    start = time.perf_counter()
    post_office_mail.send_many(
        [
            {
                "sender": SENDER,
                "recipients": [customer.email],
                "template": po_template,
                "render_on_delivery": True,
                "context": {
                    "customer": {
                        "first_name": customer.first_name,
                        "last_name": customer.last_name,
                        "email": customer.email,
                    },
                    "event": order(i),
                },
            }
            for i, customer in enumerate(customers, start=first)
        ]
    )
    return time.perf_counter() - start


def post_office_deliver(processes, worker_gc):
    """post-office's ``send_queued`` from this process, whose heap (the bench's 20,000
    customers and more) is not its own: frozen, so that its processes, forked from
    this one, collect their own objects only, as ``manage.py send_queued_mail`` would.
    ``worker_gc``: with TriggerHub's worker thresholds too (triggerhub/celery.py)."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    if worker_gc:
        gc.set_threshold(*WORKER_GC_THRESHOLDS)
    try:
        return _post_office_deliver(processes)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _post_office_deliver(processes):
    start = time.perf_counter()
    while True:
        # The forked children close the connection they inherit, which ends it for this
        # process too: a fresh one for each call.
        connection.close()
        sent, failed, requeued = post_office_mail.send_queued(processes=processes)
        if failed or requeued:
            raise RuntimeError(f"post-office failed {failed} and requeued {requeued} e-mails")
        if not sent:
            break
    return time.perf_counter() - start


#: A data-modifying ``WITH`` (the record of a batch's hand-overs) writes too.
WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def queries_per_batch(customers, template):
    """Statements, and commits that write (each a WAL flush), of one full batch of e-mail delivery
    within a drain (its first batch read the templates)."""
    size = settings.TRIGGERHUB_DELIVERY_BATCH_SIZE
    for i, customer in enumerate(customers[: 2 * size]):
        enqueue_order(customer, i, template, "queries")
    templates = delivery.EmailTemplates()
    # The first batch also warms up: imports, the connection.
    assert len(delivery._deliver_due_emails(timezone.now(), limit=size, templates=templates)) == size
    with CaptureQueriesContext(connection) as captured:
        outcomes = delivery._deliver_due_emails(timezone.now(), limit=size, templates=templates)
    assert list(outcomes.values()) == [Status.SENT] * size
    statements = [q["sql"] for q in captured.captured_queries]
    writing_commits, in_transaction, wrote = 0, False, False
    for sql in statements:
        verb = sql.split(None, 1)[0].upper()
        if verb == "BEGIN":
            in_transaction, wrote = True, False
        elif verb == "COMMIT":
            writing_commits += wrote
            in_transaction = False
        elif verb in ("INSERT", "UPDATE", "DELETE") or (verb == "WITH" and WRITES.search(sql)):
            wrote = True
            writing_commits += not in_transaction  # autocommit: the statement is its own transaction
    return size, statements, writing_commits


def profile_deliveries(customers, template, count):
    for i, customer in enumerate(customers[:count]):
        enqueue_order(customer, i, template, "profile")
    profiler = cProfile.Profile()
    templates = delivery.EmailTemplates()  # as a drain keeps them
    start = time.perf_counter()
    profiler.enable()
    while delivery._deliver_due_emails(
        timezone.now(), limit=settings.TRIGGERHUB_DELIVERY_BATCH_SIZE, templates=templates
    ):
        pass
    profiler.disable()
    seconds = time.perf_counter() - start
    print(f"\nprofile: {count} deliveries in batches in this process, {count / seconds:.0f}/s (profiler on)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def shared_floor(samples=2000):
    """CPU ms per message of the work both systems must do, in this process, with no database:
    render the three templates (compiled once) and hand the e-mail to the backend; and of
    compiling the three templates, which post-office does per e-mail (``render_on_delivery``)."""
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.template import Context, Engine

    from messaging import rendering

    compiled = [rendering.compile_template(source) for source in (SUBJECT, HTML_BODY, TEXT_BODY)]
    values = [
        {"customer": {"first_name": f"First{i}", "last_name": f"Last{i}"}, "event": order(i)} for i in range(samples)
    ]
    backend = get_connection()
    start = time.process_time()
    for i, value in enumerate(values):
        subject, html, text = (
            template.render(Context(value, autoescape=escape))
            for template, escape in zip(compiled, (False, True, False))
        )
        email = EmailMultiAlternatives(
            subject=subject, body=text, from_email=SENDER, to=[f"customer{i}@example.com"], connection=backend
        )
        email.attach_alternative(html, "text/html")
        email.send()
    render_and_send = (time.process_time() - start) / samples * 1000
    engine = Engine(autoescape=True, loaders=[])
    start = time.process_time()
    for _ in range(samples // 4):
        for source in (SUBJECT, HTML_BODY, TEXT_BODY):
            engine.from_string(source)
    compile_ms = (time.process_time() - start) / (samples // 4) * 1000
    django_mail.outbox = []
    return render_and_send, compile_ms


def say(text):
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def purge_broker():
    with celery_app.connection_for_write() as conn:
        for queue in ("email", Workers.IDLE_QUEUE):
            conn.default_channel.queue_purge(queue)
    outbox.email_drain_started()  # a drain pending went with the queue: the next message publishes one


def main():
    args = ARGS
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        sys.exit("Set DATABASE_URL to a PostgreSQL database and REDIS_URL to Redis: this bench measures them.")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    settings.POST_OFFICE["BATCH_SIZE"] = args.post_office_batch
    settings.POST_OFFICE["THREADS_PER_PROCESS"] = args.threads
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    log_dir = ROOT / "var" / "bench-delivery"
    pools = worker_pools(args.pool, args.processes, args.threads)
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = None
    try:
        purge_broker()
        customers = create_customers(args.count)
        with connection.cursor() as cursor:
            # Statistics as a live site's database has them: the customers table just
            # filled, the other tables empty (for both systems alike).
            cursor.execute("ANALYZE")
        template = EmailTemplate.objects.create(
            slug="order-confirmation",
            name="Order confirmation",
            from_email=SENDER,
            subject=SUBJECT,
            html_body=HTML_BODY,
            text_body=TEXT_BODY,
        )
        workers = Workers(pools, args.prefetch, log_dir)
        batch, statements, commits = queries_per_batch(customers, template)
        if args.profile:
            profile_deliveries(customers, template, args.profile)
        floor = shared_floor()
        publisher.flush(60)
        purge_broker()  # the sampled messages' nudges: they were delivered here already
        # PostgreSQL keeps the plan of a foreign-key check for its connection: planned on
        # the empty outbox above, it would scan the whole outbox for each event written
        # in the first round (as on a new site, until CONN_MAX_AGE ends the connection).
        close_connection()
        django_mail.outbox = []

        po_template = PoTemplate.objects.create(
            name="order-confirmation", subject=SUBJECT, content=TEXT_BODY, html_content=HTML_BODY
        )
        workers.wait_ready()
        th_write = th_deliver = po_write = po_deliver = 0.0
        th_cpu = Cpu(lambda: tree_cpu([process.pid for process in workers.processes]))
        # This process and the ones send_queued() forked, reaped by the end of each call
        # (not its descendants: the TriggerHub workers are those too).
        po_cpu = Cpu(lambda: process_cpu(os.getpid()))
        size = -(-args.count // args.rounds)
        for first in range(0, args.count, size):
            part = customers[first : first + size]
            say(f"TriggerHub: writing {len(part):,} messages ({first:,} done)")
            th_write += triggerhub_write(part, first, template, f"run{first}")
            close_connection()  # idle through the delivery; polled on a fresh connection
            say("TriggerHub: delivering")
            with th_cpu:
                th_deliver += triggerhub_deliver(workers, len(part), f"run{first}")
            say(f"django-post-office: writing {len(part):,} e-mails")
            po_write += post_office_write(part, first, po_template)
            say("django-post-office: delivering")
            close_connection()
            with po_cpu:
                po_deliver += post_office_deliver(args.processes, args.post_office_worker_gc)
        workers.stop()
        workers = None
        po_sent = PoEmail.objects.filter(status=PO_STATUS.sent).count()
        if po_sent != args.count:
            raise RuntimeError(f"post-office sent {po_sent} of {args.count}")
    finally:
        if workers is not None:
            workers.stop()
        purge_broker()
        connection.close()
        connection.creation.destroy_test_db(test_db, verbosity=0)

    n = args.count
    print(
        f"\ndelivery — {n:,} e-mails each, PostgreSQL {connection.pg_version // 10000}, Redis broker, "
        f"anymail test backend, {args.processes} delivering processes for each system; TriggerHub: "
        f"{workers_description(pools)}, prefetch {args.prefetch}; "
        f"post-office: send_queued(processes={args.processes}), {args.threads} threads each, "
        f"BATCH_SIZE {args.post_office_batch}, "
        f"collector thresholds {WORKER_GC_THRESHOLDS if args.post_office_worker_gc else gc.get_threshold()} "
        f"(TriggerHub's workers: {WORKER_GC_THRESHOLDS})"
    )
    print(f"{'system':20} {'write s':>8} {'deliver s':>10} {'total s':>8} {'msg/s deliver':>14} {'msg/s total':>12}")
    rows = {"TriggerHub": (th_write, th_deliver), "django-post-office": (po_write, po_deliver)}
    for name, (write, deliver) in rows.items():
        print(
            f"{name:20} {write:8.2f} {deliver:10.2f} {write + deliver:8.2f} {n / deliver:14,.0f} "
            f"{n / (write + deliver):12,.0f}"
        )
    print(
        f"CPU ms per message delivered: TriggerHub workers {th_cpu.python / n * 1000:.2f}, "
        f"PostgreSQL {th_cpu.postgres / n * 1000:.2f}; post-office processes {po_cpu.python / n * 1000:.2f}, "
        f"PostgreSQL {po_cpu.postgres / n * 1000:.2f}"
    )
    print(
        f"CPU ms per message of what both must do (no database, this process): render the 3 templates "
        f"and hand the e-mail to the backend {floor[0]:.2f}; compile the 3 templates, which post-office "
        f"does for each e-mail, {floor[1]:.2f}"
    )
    print(
        f"ratio TriggerHub / post-office: deliver {po_deliver / th_deliver:.2f}, "
        f"total {(po_write + po_deliver) / (th_write + th_deliver):.2f}  (target: deliver >= 2)"
    )
    print(
        f"TriggerHub per batch of {batch} e-mails after a drain's first: {len(statements)} SQL statements "
        f"(BEGIN/COMMIT included), "
        f"{commits} commits that write:"
    )
    for sql in statements:
        print(f"    {' '.join(sql.split())[:100]}")


if __name__ == "__main__":
    main()
