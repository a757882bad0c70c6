"""Delivering messages: claim, render, ask the policy again, hand over to the backend.

Many workers may receive the same message id (a redelivered task, a sweeper's
second nudge); the claim is one atomic UPDATE from a pending status to "sending",
so exactly one of them goes on to send.

E-mail goes in batches of up to TRIGGERHUB_DELIVERY_BATCH_SIZE, taken by drains
(``drain_emails``, what the outbox publishes for e-mail) or by the task of one message
(``deliver_email_batch``, a retry): one transaction claims the due messages with SKIP
LOCKED, renders and decides them and writes the refused ones back; they go over one
connection to the backend, each send preceded by a commit of how far the batch got
(handovers.py: if the worker dies, only the message under way is uncertain); one
write records the outcomes.

Once a request may have reached the provider and no answer came back, the outcome
is unknown (exceptions.OutcomeUnknown), never a blind retry.
"""

import json
import logging
import random
import time
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connections, router, transaction
from django.db.models import F, Field
from django.utils import timezone
from django.utils.functional import lazy

from customers import consent
from customers.models import ConsentSource, Customer, with_consent_state
from triggerhub.queueing import publish

from . import credits, handovers, outbox, policy, rendering, sms, suppressions, unsubscribe
from .backends import sms as sms_backends
from .backends.sms.base import OutgoingSms
from .email_errors import classify_email_error
from .exceptions import (
    DeliveryError,
    OutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from .models import (
    PENDING_STATUSES,
    Category,
    Channel,
    EmailTemplate,
    Handover,
    Message,
    MessageEvent,
    Reason,
    Status,
    Suppression,
    new_handover_id,
)
from .outbox import delivery_task

log = logging.getLogger(__name__)


def deliver(message_id: int) -> Status | None:
    """Send message ``message_id`` if it is due and nobody else is sending it.

    Returns the status it ended in, or None when there was nothing to do.
    """
    now = timezone.now()
    if not _claim(Message.objects.filter(pk=message_id), now):
        return None
    message = Message.objects.select_related("customer", "email_template", "sms_content").get(pk=message_id)
    try:
        _render(message, _values(message))
    except sms.TooLong as exc:
        return record(message, Status.BLOCKED, reason=Reason.TOO_LONG, detail=str(exc), not_an_attempt=True)
    except rendering.RenderFailed as exc:
        return _record_render_failure(message, exc)
    backend = sms_backends.get_backend() if message.channel == Channel.SMS else None  # before sent_at is written

    try:
        decision = _approve(message, now)
    except ClaimLost:
        log.warning("message %s: its claim was settled by the sweeper before the send; left as it is", message.pk)
        return None
    if decision.action != policy.Action.SEND:
        return _record_refusal(message, decision)
    try:
        if message.channel == Channel.EMAIL:
            provider_id = _send_email(message)
        else:
            provider_id = _send_sms(message, backend)
    except DeliveryError as exc:
        return _after_failure(message, exc)
    return _record_sent([(message, provider_id or "")])[message.pk]


def drain_emails() -> int:
    """Deliver due queued e-mails a batch at a time until fewer than a batch are due.

    What the outbox publishes for e-mail (``tasks.drain_email``). A drain whose first
    batch is full publishes one more drain as soon as it has locked that batch, before
    rendering it; the helper takes the next batch and does the same, so a burst
    reaches every pool process or thread within a few lock queries. Past
    ``DRAIN_BUDGET_SECONDS`` it hands the rest to a new drain and ends, so no task runs
    for ever. Returns how many messages it took.
    """
    outbox.email_drain_started()
    size = max(settings.TRIGGERHUB_DELIVERY_BATCH_SIZE, 1)
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    taken, templates = 0, EmailTemplates()
    while True:
        helper = outbox.publish_email_drain if taken == 0 else None
        batch = len(_deliver_due_emails(timezone.now(), limit=size, when_full=helper, templates=templates))
        taken += batch
        if batch < size:
            return taken
        if time.monotonic() > deadline:
            outbox.publish_email_drain()
            return taken


#: How long one drain task keeps taking batches before a new task takes over.
DRAIN_BUDGET_SECONDS = 60


class EmailTemplates:
    """The e-mail templates, with their language variants, that a drain's batches render.

    Read once for a run of batches rather than for each: two queries and their objects
    were a twentieth of a batch's CPU (bench/delivery.py). Read again when
    ``REREAD_SECONDS`` have passed since the last read, so an edited template reaches
    the messages a drain claims from then on, at most that many seconds after the edit.
    """

    REREAD_SECONDS = 5

    def __init__(self):
        self._templates, self._read_at = {}, None

    def get(self, ids, now) -> dict[int, EmailTemplate]:
        """The templates ``ids`` (with their variants prefetched), by id."""
        if self._read_at is None or not 0 <= (now - self._read_at).total_seconds() < self.REREAD_SECONDS:
            self._templates, self._read_at = {}, now  # (a clock set back reads them again too)
        missing = set(ids) - self._templates.keys()
        if missing:
            self._templates.update(EmailTemplate.objects.prefetch_related("variants").in_bulk(missing))
        return self._templates


def deliver_email_batch(message_id: int) -> Status | None:
    """Send e-mail ``message_id`` and, in the same pass, other due queued e-mails.

    The task of one message (a retry after a transient error): up to
    TRIGGERHUB_DELIVERY_BATCH_SIZE messages, this one first if it is due, then the
    oldest. Returns the status ``message_id`` ended in, or None if it was not due or
    another worker had it.
    """
    size = settings.TRIGGERHUB_DELIVERY_BATCH_SIZE
    if size <= 1:
        return deliver(message_id)
    return _deliver_due_emails(timezone.now(), limit=size, first=message_id).get(message_id)


def _database():
    """The connection messages are written through."""
    return connections[router.db_for_write(Message)]


def _claimable(queryset, now):
    # A message held by a paused activity waits for outbox.release(), even when its
    # delivery task was already queued before the pause.
    return queryset.filter(status__in=PENDING_STATUSES, send_after__lte=now).exclude(reason=Reason.ACTIVITY_PAUSED)


def _claim(queryset, now) -> int:
    """Move the due pending messages of ``queryset`` to "sending"; how many it took."""
    return _claimable(queryset, now).update(**_sending(now))


def _sending(now) -> dict:
    """The fields a claim writes: "sending" under a lease, one more attempt."""
    return {
        "status": Status.SENDING,
        "attempts": F("attempts") + 1,
        "lease_expires_at": handovers.lease_until(now),
        "updated_at": now,
        "handover_id": None,  # a claim of its own, not a batch's
    }


def _deliver_due_emails(
    now, *, limit: int, first: int | None = None, when_full=None, templates: EmailTemplates | None = None
) -> dict[int, Status | None]:
    """Take up to ``limit`` due e-mails (``first`` among them if it is due), decide, send and record them.

    Returns each taken message's final status. One transaction claims the messages
    (moves them to "sending"; SKIP LOCKED: drains at once take disjoint rows), reads
    their customers, renders them, asks the policy, writes the refusals back, and
    writes the approved ones' hand-over (handovers.py) before it commits; an approved
    message a frequency cap counts gets its ``sent_at`` (what caps count) in it too.
    Then they go over one connection to the backend, each send preceded by a commit of
    its position in the hand-over, and the sends are recorded in one write. A message
    whose template fails (rendering.RenderFailed) fails at once with the reason; one
    whose rendering or decision raises anything else is left in "sending" outside the
    hand-over, so the sweeper queues it again (it never left). ``when_full`` is called
    as soon as a full batch is claimed (a drain publishes its helper); ``templates``: a
    drain's templates for its run of batches (else they are read for this one).
    """
    outcomes: dict[int, Status | None] = {}
    approved: list[Message] = []
    handover = new_handover_id()
    with transaction.atomic():
        messages = _claim_due_emails(now, limit=limit, first=first, handover=handover)
        if not messages:
            return outcomes
        if when_full is not None and len(messages) == limit:
            when_full()
        query = (
            Customer.objects.only(*_CUSTOMER_FIELDS)
            .filter(pk__in={message.customer_id for message in messages})
            .order_by("pk")
        )
        capped = {message.pk for message in messages if policy.capped(message.channel, message.category, message.rules)}
        if capped:
            # Decided under the customer's lock: see _approve().
            query = query.select_for_update()
        if any(message.category == Category.MARKETING for message in messages):
            query = with_consent_state(query, Channel.EMAIL)  # not a query per message
        customers = {customer.pk: customer for customer in query}
        email_templates = (templates or EmailTemplates()).get({message.email_template_id for message in messages}, now)
        suppressed = set(
            Suppression.objects.filter(
                channel=Channel.EMAIL,
                address__in=[
                    suppressions.normalize_address(Channel.EMAIL, c.email) for c in customers.values() if c.email
                ],
            ).values_list("address", flat=True)
        )
        taking: list[Message] = []
        taking_customers: set[int] = set()
        broken: list[Message] = []
        for message in messages:
            message.customer = customers[message.customer_id]
            # An e-mail always has its template (the constraint message_content_matches_channel).
            message.email_template = email_templates[cast(int, message.email_template_id)]
            if message.customer_id in taking_customers:
                # A cap must count the customer's message approved just before this one.
                _count_for_caps(taking, now, capped=capped)
                taking, taking_customers = [], set()
            try:
                _render(message, _values(message))
                decision = policy.decide(
                    message.customer,
                    message.channel,
                    message.category,
                    now,
                    rules=message.rules,
                    expires_at=message.expires_at,
                    message_id=message.pk,
                    suppressed=suppressed,
                )
            except rendering.RenderFailed as exc:
                outcomes[message.pk] = _record_render_failure(message, exc, claim_held=True)
                continue
            except Exception:
                # Isolated, so that one bad message cannot stop every drain behind it; the
                # sweeper queues it again after the lease (a setting it needs may be set by then).
                log.exception("message %s could not be rendered or decided; left for the lease to expire", message.pk)
                broken.append(message)
                continue
            if decision.action == policy.Action.SEND:
                message.sent_at = now
                taking.append(message)
                taking_customers.add(message.customer_id)
                approved.append(message)
            else:
                outcomes[message.pk] = _record_refusal(message, decision, claim_held=True)
        _count_for_caps(taking, now, capped=capped)
        if broken:
            # Outside the batch: the sweeper queues them again once their lease has passed.
            Message.objects.filter(pk__in=[message.pk for message in broken]).update(handover_id=None)
            outcomes.update(dict.fromkeys([message.pk for message in broken], Status.SENDING))
        if approved:
            handovers.begin(handover, [message.pk for message in approved], now)
    if approved:
        outcomes.update(_send_emails(approved, handover=handover))
    return outcomes


def _claim_due_emails(now, *, limit: int, first: int | None, handover: int) -> list[Message]:
    """Claim up to ``limit`` due e-mails no other drain holds: ``first`` if due, and the oldest queued.

    Call it inside a transaction. Each look-up is one ``UPDATE … RETURNING``: the rows
    move to "sending" (one more attempt, under a lease) and come back with what a
    batch reads of them. On PostgreSQL its subquery locks them with SKIP LOCKED, so
    drains at once take disjoint rows. SQLite has no row locks, but its transactions
    begin IMMEDIATE (settings: ``transaction_mode``) and so hold its one write lock.
    A message then refused is written back before the commit: nobody sees it "sending".
    The rows carry ``handover``, the id of the batch's hand-over.
    """
    _walk_pending_in_order()
    due = Message.objects.filter(channel=Channel.EMAIL)
    messages = []
    if first is not None:
        messages = _claim_rows(_claimable(due.filter(pk=first), now), now, handover)
    others = _claimable(due.filter(status=Status.QUEUED), now).exclude(pk=first).order_by("send_after", "pk")
    messages += _claim_rows(others[: limit - len(messages)], now, handover)
    return sorted(messages, key=lambda message: (message.send_after, message.pk))


def _claim_rows(due, now, handover: int) -> list[Message]:
    """Move the rows of queryset ``due`` to "sending" for ``handover`` in one statement; them, with
    ``_BATCH_FIELDS`` loaded."""
    database = _database()
    quote = database.ops.quote_name
    ids, params = due.select_for_update(skip_locked=True).values("pk").query.sql_with_params()
    columns = ", ".join(quote(cast(Field, Message._meta.get_field(name)).column) for name in ("id", *_BATCH_FIELDS))
    return list(
        Message.objects.raw(
            f"UPDATE {quote(Message._meta.db_table)} SET status = %s, attempts = attempts + 1, "
            f"lease_expires_at = %s, updated_at = %s, handover_id = %s WHERE id IN ({ids}) RETURNING {columns}",
            [Status.SENDING, handovers.lease_until(now), now, handover, *params],
        )
    )


def _walk_pending_in_order() -> None:
    """PostgreSQL: have this transaction read due messages by walking ``message_pending_due`` in order.

    During a burst the planner's statistics lag behind the queue (a few rows when there
    are thousands), and it then prefers a bitmap scan of every due row plus a sort, for
    each batch: work that grows with the backlog. The bitmap scan also never marks the
    index entries of rows already taken as dead, so each batch visits them all again. The
    ordered index scan stops after ``limit`` rows and skips dead entries once marked.
    The other reads of the transaction are by key, which these settings leave alone.
    """
    database = _database()
    if database.vendor == "postgresql":
        with database.cursor() as cursor:
            cursor.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")


#: What a batch reads of each message it claims; the rendered fields and the rest are only written.
_BATCH_FIELDS = (
    "customer_id",
    "channel",
    "category",
    "email_template_id",
    "context",
    "rules",
    "status",
    "reason",
    "send_after",
    "expires_at",
    "attempts",
    "parts",
    "sent_at",
)


#: What rendering (``rendering.customer_context``) and the policy read of a batch's customers.
_CUSTOMER_FIELDS = ("email", "phone", "first_name", "last_name", "country", "language", "timezone", "attributes")


def _count_for_caps(messages, now, *, capped: set[int]) -> None:
    """Write ``sent_at`` of the approved ``messages`` a frequency cap counts (their ids in ``capped``), in one write.

    Before the batch commits, so that a decision after it (this customer's next
    message, or another drain's) counts them. The others' ``sent_at`` is written with
    their hand-over: no cap reads it.
    """
    counted = [message.pk for message in messages if message.pk in capped]
    if counted:
        Message.objects.filter(pk__in=counted).update(sent_at=now)


def _values(message) -> dict:
    """What ``message`` renders with; its unsubscribe link is signed only if the template uses it."""
    return rendering.values_for(message.customer, message.context, unsubscribe_url=_lazy_unsubscribe_url(message))


_lazy_unsubscribe_url = lazy(unsubscribe.unsubscribe_url, str)


def _send_emails(messages, *, handover: int) -> dict[int, Status | None]:
    """Hand ``messages`` (approved, in "sending", in the order of their hand-over ``handover``)
    to the e-mail backend over one connection; each one's status."""
    outcomes, sent = {}, []
    connection = _open_email_connection()
    try:
        for position, message in enumerate(messages):
            try:
                # Built before its position is committed: what fails here never left.
                email = _build_email(message, connection)
            except DeliveryError as exc:
                outcomes[message.pk] = _after_failure(message, exc)
                continue
            if not handovers.starting(handover, position):
                # Silent past its lease: the sweeper settled the batch (the rest are queued
                # again and another worker sends them), so this worker sends no more of it.
                log.warning(
                    "hand-over %s was settled by the sweeper; %d e-mail(s) left to it",
                    handover,
                    len(messages) - position,
                )
                break
            try:
                sent.append((message, _hand_to_backend(email)))
            except DeliveryError as exc:
                outcomes[message.pk] = _after_failure(message, exc)
                # The next message opens it again: a connection that failed mid-send (an
                # SMTP session dropped) would fail it at once, though it never left.
                _close_quietly(connection)
    finally:
        _close_quietly(connection)
        # Even when something unforeseen raised: what the provider took is recorded.
        outcomes.update(_record_sent(sent, handover=handover))
    return outcomes


def _open_email_connection():
    """One connection to the e-mail backend for a whole batch.

    If it cannot be opened now, each message's own send opens it again and reports
    its own error (retried or failed like any other).
    """
    try:
        connection = get_connection()
        connection.open()
    except Exception as exc:
        log.info("e-mail connection for a batch did not open (%s); each message tries on its own", exc)
        return None
    return connection


def _close_quietly(connection) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except Exception as exc:  # everything was handed over or recorded already
        log.info("closing the e-mail connection failed: %s", exc)


def _record_refusal(message, decision: policy.Decision, *, claim_held=False) -> Status | None:
    """Write the policy's refusal back: claimed only to be refused, which is not an attempt."""
    if decision.action == policy.Action.BLOCK:
        return record(
            message,
            Status.BLOCKED,
            reason=decision.reason,
            detail=decision.detail,
            not_an_attempt=True,
            claim_held=claim_held,
        )
    return record(
        message,
        Status.DEFERRED,
        reason=decision.reason,
        detail=decision.detail,
        send_after=decision.until,
        not_an_attempt=True,
        claim_held=claim_held,
    )


#: What delivery changes on a message it hands over.
_DELIVERED_FIELDS = (
    "status",
    "reason",
    "detail",
    "provider_message_id",
    "lease_expires_at",
    "to_address",
    "subject",
    "body_text",
    "body_html",
    "parts",
    "sent_at",
    "updated_at",
)
#: Statuses a hand-over turns into "sent"; any other was a provider's report that overtook it.
_HANDED_OVER = (Status.SENDING, Status.UNKNOWN)
LATE_SENT = "recorded after its status had moved on (a provider's report, or the sweeper)"


def _record_sent(sent: list[tuple[Message, str]], *, handover: int | None = None) -> dict[int, Status | None]:
    """Record the sends (message, provider id) and their "sent" events in one write; each message's status.

    A provider report that overtook a send (delivered) keeps its status. A row claimed
    again since (its ``attempts`` moved on: this worker was silent past its lease) is
    not this worker's to write: None. The batch's ``handover`` is deleted in the same
    transaction, first: the sweeper takes the hand-over before the rows, and so must
    this write, or the two could deadlock.
    """
    if not sent:
        if handover is not None:
            Handover.objects.filter(pk=handover).delete()
        return {}
    now = timezone.now()
    for message, provider_id in sent:
        message.provider_message_id, message.lease_expires_at, message.updated_at = provider_id, None, now
    database = _database()
    write = _record_sent_in_one_statement if database.vendor == "postgresql" else _record_sent_row_by_row
    statuses: dict[int, Status | None] = dict(write(database, [message for message, _ in sent], now, handover))
    for message, _ in sent:
        status = statuses.setdefault(message.pk, None)
        if status is not None and status != message.status:
            message.status, message.reason, message.detail = status, "", ""
    return statuses


def _record_sent_in_one_statement(database, messages, now, handover) -> dict[int, Status]:
    """PostgreSQL: the batch's hand-over deleted, then one statement updates the rows (from one
    JSON document) still under this worker's claim and inserts their events.

    The rows come as one JSON parameter rather than an array per column: json.dumps
    and the server's JSON parser handle any characters, and the client has one value
    to send instead of quoting every element. The row lock the UPDATE takes orders it
    after a status report being written, whose status it then keeps.

    The ids are given again as an array the primary key can look up: the planner cannot
    see into the JSON, and with statistics that lag behind the table (a burst) it joined
    it to a scan of every message row: 3.4 ms for a batch at 6,000 rows, 2.2 ms with the
    ids, and the scan grows with the outbox.
    """
    rows = json.dumps(
        [
            [
                m.pk,
                m.provider_message_id,
                m.to_address,
                m.subject,
                m.body_text,
                m.body_html,
                m.parts,
                m.sent_at.isoformat() if m.sent_at else None,
                m.attempts,
            ]
            for m in messages
        ],
        ensure_ascii=False,
    )
    with transaction.atomic(using=database.alias), database.cursor() as cursor:
        if handover is not None:
            cursor.execute("DELETE FROM messaging_handover WHERE id = %s", [handover])
        cursor.execute(
            """
            WITH new AS (
                SELECT (r->>0)::bigint AS id, r->>1 AS provider_message_id, r->>2 AS to_address,
                       r->>3 AS subject, r->>4 AS body_text, r->>5 AS body_html, (r->>6)::int AS parts,
                       (r->>7)::timestamptz AS sent_at, (r->>8)::int AS attempts
                FROM jsonb_array_elements(%(rows)s::jsonb) AS r
            ), done AS (
                UPDATE messaging_message AS m SET
                    status = CASE WHEN m.status = ANY(%(handed_over)s) THEN %(sent)s ELSE m.status END,
                    reason = CASE WHEN m.status = ANY(%(handed_over)s) THEN '' ELSE m.reason END,
                    detail = CASE WHEN m.status = ANY(%(handed_over)s) THEN '' ELSE m.detail END,
                    provider_message_id = new.provider_message_id, lease_expires_at = NULL,
                    to_address = new.to_address, subject = new.subject, body_text = new.body_text,
                    body_html = new.body_html, parts = new.parts, sent_at = new.sent_at, updated_at = %(now)s
                FROM new WHERE m.id = new.id AND m.id = ANY(%(ids)s::bigint[]) AND m.attempts = new.attempts
                RETURNING m.id, m.status
            ), events AS (
                INSERT INTO messaging_messageevent (message_id, status, reason, detail, payload, at)
                SELECT id, %(sent)s, '', CASE WHEN status = %(sent)s THEN '' ELSE %(late)s END, '{}', %(now)s
                FROM done
            )
            SELECT id, status FROM done
            """,
            {
                "rows": rows,
                "ids": [m.pk for m in messages],
                "handed_over": list(_HANDED_OVER),
                "sent": Status.SENT,
                "late": LATE_SENT,
                "now": now,
            },
        )
        return {pk: Status(status) for pk, status in cursor.fetchall()}


def _record_sent_row_by_row(database, messages, now, handover) -> dict[int, Status]:
    """Elsewhere (SQLite): the rows locked, one UPDATE per row through ``executemany``, the events
    inserted, the hand-over deleted."""
    quote = database.ops.quote_name
    fields = [cast(Field, Message._meta.get_field(name)) for name in _DELIVERED_FIELDS]
    with transaction.atomic(using=database.alias):
        Handover.objects.using(database.alias).filter(pk=handover).delete()
        claims = {message.pk: message.attempts for message in messages}
        current = {
            pk: status
            for pk, status, attempts in Message.objects.using(database.alias)
            .select_for_update()
            .filter(pk__in=claims)
            .order_by("pk")
            .values_list("pk", "status", "attempts")
            if attempts == claims[pk]
        }
        messages = [message for message in messages if message.pk in current]  # still this worker's claims
        events = []
        for message in messages:
            if current[message.pk] in _HANDED_OVER:
                message.status, message.reason, message.detail = Status.SENT, "", ""
                events.append(MessageEvent(message=message, status=Status.SENT))
            else:
                message.status = current[message.pk]
                events.append(MessageEvent(message=message, status=Status.SENT, detail=LATE_SENT))
        with database.cursor() as cursor:
            cursor.executemany(
                "UPDATE {} SET {} WHERE id = %s".format(
                    quote(Message._meta.db_table), ", ".join(f"{quote(field.column)} = %s" for field in fields)
                ),
                [
                    [field.get_db_prep_save(getattr(message, field.attname), database) for field in fields]
                    + [message.pk]
                    for message in messages
                ],
            )
        MessageEvent.objects.using(database.alias).bulk_create(events)
    return {message.pk: Status(message.status) for message in messages}


def _approve(message, now) -> policy.Decision:
    """Ask the policy at send time and, when it says send, take the slot before sending.

    The customer's row is locked while deciding so that two workers sending to the same
    customer cannot both take the last place under a frequency cap: the first marks its
    message handed over (``sent_at``, which caps count) before the second decides. SMS
    credits are debited in the same transaction.
    """
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=message.customer_id)
        decision = policy.decide(
            customer,
            message.channel,
            message.category,
            now,
            rules=message.rules,
            expires_at=message.expires_at,
            parts=message.parts or None,
            message_id=message.pk,
        )
        if decision.action != policy.Action.SEND:
            return decision
        if (
            message.channel == Channel.SMS
            and settings.TRIGGERHUB_SMS_CREDITS_ENFORCED
            and not credits.debit(message, message.parts)
        ):
            return policy.Decision.defer(now, Reason.NO_CREDITS, credits.shortfall(message.to_address, message.parts))
        message.customer = customer
        message.sent_at = now
        if not Message.objects.filter(pk=message.pk, status=Status.SENDING, attempts=message.attempts).update(
            sent_at=now
        ):
            # A worker silent past its lease: the sweeper has queued the message again, and
            # another worker may send it. Rolled back (credits too); this one must not.
            raise ClaimLost(message.pk)
    return decision


class ClaimLost(Exception):
    """The message is no longer this worker's to send: the sweeper settled it (lease past)."""


def _record_render_failure(message, exc: Exception, *, claim_held=False) -> Status | None:
    """A message whose template cannot be rendered fails at once, with the reason: it would fail every time."""
    log.warning("message %s: its template could not be rendered: %s", message.pk, exc)
    return record(
        message,
        Status.FAILED,
        reason=Reason.TEMPLATE_ERROR,
        detail=str(exc) or repr(exc),
        not_an_attempt=True,
        claim_held=claim_held,
    )


def _render(message, values) -> None:
    """Render ``message`` for its customer into its subject and bodies (and SMS parts)."""
    if message.channel == Channel.EMAIL:
        message.to_address = message.customer.email
        message.subject, message.body_text, message.body_html = rendering.render_email(message.email_template, values)
        return
    message.to_address = message.customer.phone
    message.body_text = rendering.render_sms(message.sms_content, values)  # kept if refused
    message.body_text = sms.apply_long_policy(message.body_text, settings.TRIGGERHUB_SMS_LONG_POLICY)
    message.parts = sms.segment(message.body_text).segments


def _send_email(message, *, connection=None) -> str:
    """Hand ``message`` to the e-mail backend (over ``connection``, else one of its own); the ESP's id."""
    return _hand_to_backend(_build_email(message, connection))


def _build_email(message, connection=None) -> EmailMultiAlternatives:
    """``message`` as an e-mail, on ``connection`` or one of its own, opened.

    Everything that can fail before a request leaves fails here, so that an error of the
    send itself is known to come from a request that may have reached the ESP
    (email_errors): a setting the headers need, the backend's configuration, connecting,
    and for SMTP an address no server would take (Django checks them only in the send).
    """
    try:
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body_text,
            from_email=message.email_template.from_email or settings.DEFAULT_FROM_EMAIL,
            to=[message.to_address],
            headers={"X-TriggerHub-Message": str(message.pk), **unsubscribe.list_unsubscribe_headers(message)},
        )
        # ESPs echo metadata (not headers) in their tracking events; anymail sends it, Django ignores it.
        cast(Any, email).metadata = {"triggerhub_message": str(message.pk)}
        email.attach_alternative(message.body_html, "text/html")
        email.connection = connection or get_connection()
        cast(Any, email).own_connection = connection is None  # read by _hand_to_backend
        if isinstance(email.connection, SmtpBackend):
            for address in (email.from_email, *email.to):
                sanitize_address(address, email.encoding or settings.DEFAULT_CHARSET)
        email.connection.open()
    except ValueError as exc:
        raise PermanentDeliveryError(
            f"An address of this e-mail cannot be sent ({exc}); correct the template's sender or the customer's "
            "e-mail address."
        ) from exc
    except Exception as exc:
        raise TransientDeliveryError(f"The e-mail could not be prepared or its backend reached: {exc!r}") from exc
    return email


def _hand_to_backend(email) -> str:
    """Send ``email`` (from ``_build_email``); the ESP's id. Any error is one of ours (email_errors)."""
    try:
        email.send()
    except Exception as exc:
        raise classify_email_error(exc) from exc
    finally:
        if email.own_connection:
            _close_quietly(email.connection)
    # anymail reports the ESP's id; plain Django backends have none.
    status = getattr(email, "anymail_status", None)
    return (status.message_id or "") if status is not None else ""


def _send_sms(message, backend) -> str:
    result = backend.send(OutgoingSms(to=message.to_address, body=message.body_text, message_id=message.pk))
    return result.provider_message_id


def _after_failure(message, exc: DeliveryError) -> Status | None:
    detail = f"{exc.code}: {exc}" if exc.code else str(exc)
    if isinstance(exc, OutcomeUnknown):
        # It may have gone: caps keep counting it (sent_at) and its credits stay spent.
        return record(message, Status.UNKNOWN, reason=Reason.NO_ANSWER, detail=detail, payload=exc.payload)
    # Not handed over after all: caps stop counting it and what it cost comes back.
    message.sent_at = None
    if message.channel == Channel.SMS:
        credits.refund(message, note=detail)
    if exc.retryable and message.attempts < settings.TRIGGERHUB_MAX_SEND_ATTEMPTS:
        delay = retry_delay(message.attempts)
        log.info("message %s: transient error (%s), retry in %.0fs", message.pk, detail, delay)
        status = record(
            message,
            Status.QUEUED,
            reason=Reason.TRANSIENT_ERROR,
            detail=detail,
            send_after=timezone.now() + timedelta(seconds=delay),
            payload=exc.payload,
        )
        if status is not None:
            publish(delivery_task(message.channel), message.pk, countdown=delay)
        return status
    reason = Reason.TRANSIENT_ERROR if exc.retryable else Reason.PROVIDER_REJECTED
    if isinstance(exc, RecipientOptedOut):
        consent.revoke(
            message.customer,
            message.channel,
            ConsentSource.CARRIER,
            evidence=f"{detail} (message {message.pk})",
        )
    return record(message, Status.FAILED, reason=reason, detail=detail, payload=exc.payload)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter: up to base × 2^(attempts−1), capped at an hour."""
    base = settings.TRIGGERHUB_RETRY_BACKOFF_SECONDS
    ceiling = min(3600, base * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def record(
    message,
    status,
    *,
    reason="",
    detail="",
    payload=None,
    not_an_attempt=False,
    claim_held=False,
    **fields,
) -> Status | None:
    """Move claimed ``message`` to ``status``, saving what changed and a ``MessageEvent``; None if
    the claim is no longer this worker's.

    ``attempts`` counts claims, so a row whose count has moved on was claimed again since
    (this worker was silent past its lease and the sweeper queued the message again):
    nothing is written then. ``claim_held``: the caller's transaction made the claim (a
    batch), so it is this worker's. ``not_an_attempt``: the claim ends without a send (a
    refusal), and its count is given back.
    """
    claim = message.attempts
    message.status, message.reason, message.detail = status, reason, detail
    for name, value in fields.items():
        setattr(message, name, value)
    if status != Status.SENDING:
        message.lease_expires_at = None
    if not_an_attempt:
        message.attempts = claim - 1
    with transaction.atomic():
        if not claim_held and not Message.objects.select_for_update().filter(pk=message.pk, attempts=claim).exists():
            log.warning(
                "message %s was claimed again since this worker took it; its %s is not recorded", message.pk, status
            )
            return None
        message.save()
        MessageEvent.objects.create(message=message, status=status, reason=reason, detail=detail, payload=payload or {})
    return status
