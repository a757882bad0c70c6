"""Knowing which e-mails of a batch left when the worker sending it dies.

A batch is claimed in one transaction and sent one message after another over one
connection; its outcomes are recorded in one write at the end. If the worker dies in
between, only the message whose request was under way may have reached the provider
without an answer. The others are either taken (sent before it) or never left (after
it). A ``Handover`` row, written with the claim, keeps the order of the batch and, in a
commit before each send, the position reached; so the sweeper can tell the three apart:

* before the position: the provider took them (an error would have been recorded at
  once): sent, though their provider ids went with the worker;
* at the position: unknown, for ops to check;
* after it: back to the queue, to be sent (once) by another drain.

One small UPDATE per message is the price (bench/delivery.py prints it); the table is
unlogged on PostgreSQL, so that commit does not wait for the disk. SMS are sent one per
task (``delivery.deliver``), whose ``sent_at`` is written in a commit before the send:
the same proof, without a hand-over row.

A claim is recognised by its rows: a batch's carry its hand-over's id (``handover_id``),
and ``attempts`` grows with every claim, so a worker silent past its lease cannot write
over a message another worker has claimed since (delivery checks both).
"""

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from .models import Handover, Message, MessageEvent, Reason, Status

log = logging.getLogger(__name__)

#: What the sweeper writes on the messages of a dead worker's batch.
TAKEN = "the provider took it; its worker stopped before recording the provider's id"
RETURNED = "returned to the queue: its worker stopped before handing it to the provider"


def lease_until(now):
    return now + timedelta(seconds=settings.TRIGGERHUB_SEND_LEASE_SECONDS)


def begin(handover_id: int, message_ids: list[int], now) -> None:
    """Write hand-over ``handover_id`` of ``message_ids`` (in sending order), claimed with that id.

    Call it in the claiming transaction.
    """
    Handover.objects.create(
        id=handover_id,
        message_ids=message_ids,
        lease_expires_at=lease_until(now),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        created_at=now,
    )


def starting(handover_id: int, position: int) -> bool:
    """Commit that the send of message ``position`` starts now, and renew the lease; False if
    the hand-over is gone (the sweeper settled it: the worker must send no more of it).

    Outside any transaction: the row must be durable before the request is written.
    It runs once per e-mail, so on PostgreSQL it skips Django's cursor for psycopg's own,
    as a prepared statement: half the client's CPU (0.05 ms against 0.09 here). (Where
    Django logs queries, DEBUG or a test counting them, it goes through Django's cursor.)
    """
    database = connections[router.db_for_write(Handover)]
    lease = lease_until(timezone.now())
    if database.vendor == "postgresql" and database.get_autocommit() and not database.queries_logged:
        database.ensure_connection()
        cursor = database.connection.execute(
            "UPDATE messaging_handover SET position = %s, lease_expires_at = %s WHERE id = %s",
            (position, lease, handover_id),
            prepare=True,
        )
        return cursor.rowcount == 1
    with database.cursor() as cursor:
        cursor.execute(
            f"UPDATE {database.ops.quote_name(Handover._meta.db_table)} SET position = %s, lease_expires_at = %s "
            "WHERE id = %s",
            [position, database.ops.adapt_datetimefield_value(lease), handover_id],
        )
        return cursor.rowcount == 1


def settle_abandoned(*, now) -> dict[str, list[int]]:
    """Settle the batches whose worker died (lease past), and delete their hand-overs.

    Returns the ids of the messages it marked ``taken`` (sent), ``unknown`` and
    ``returned`` (queued again, due now: the caller publishes a drain). Safe to run
    twice at once: the hand-over rows are taken with SKIP LOCKED.
    """
    settled: dict[str, list[int]] = {"taken": [], "unknown": [], "returned": []}
    with transaction.atomic():
        abandoned = list(
            Handover.objects.select_for_update(skip_locked=True).filter(lease_expires_at__lt=now).order_by("pk")
        )
        if not abandoned:
            return settled
        for handover in abandoned:
            ids, position = handover.message_ids, handover.position
            settled["taken"] += ids[: max(position, 0)]
            settled["unknown"] += ids[position : position + 1] if position >= 0 else []
            settled["returned"] += ids[position + 1 :]
        # Only the rows these batches still hold: one queued again after an error may be
        # another batch's claim by now.
        still_held = Message.objects.select_for_update().filter(
            status=Status.SENDING,
            handover_id__in=[handover.pk for handover in abandoned],
        )
        taken, unknown, returned = (
            list(still_held.filter(pk__in=settled[kind]).values_list("pk", flat=True))
            for kind in ("taken", "unknown", "returned")
        )
        Message.objects.filter(pk__in=taken).update(
            status=Status.SENT,
            reason="",
            detail=TAKEN,
            lease_expires_at=None,
            sent_at=now,
            updated_at=now,
        )
        Message.objects.filter(pk__in=unknown).update(
            status=Status.UNKNOWN,
            reason=Reason.LEASE_EXPIRED,
            detail="",
            lease_expires_at=None,
            updated_at=now,
        )
        return_to_queue(returned, now=now)
        MessageEvent.objects.bulk_create(
            [MessageEvent(message_id=pk, status=Status.SENT, detail=TAKEN) for pk in taken]
            + [MessageEvent(message_id=pk, status=Status.UNKNOWN, reason=Reason.LEASE_EXPIRED) for pk in unknown]
        )
        Handover.objects.filter(pk__in=[handover.pk for handover in abandoned]).delete()
    if abandoned:
        log.warning(
            "%d batch(es) lost their worker: %d e-mail(s) taken, %d unknown, %d back in the queue",
            len(abandoned),
            len(taken),
            len(unknown),
            len(returned),
        )
    return {"taken": taken, "unknown": unknown, "returned": returned}


def return_to_queue(message_ids, *, now) -> None:
    """Queue ``message_ids`` (in "sending", never handed over) again, due now.

    Call it in a transaction that holds their rows. ``sent_at`` is cleared, so caps do
    not count a message that did not leave. The lost claim still counts in ``attempts``:
    the worker may only be paused, and a claim is known by its count; and a message that
    kills its worker each time stops after TRIGGERHUB_MAX_SEND_ATTEMPTS claims.
    """
    Message.objects.filter(pk__in=message_ids).update(
        status=Status.QUEUED,
        reason="",
        detail=RETURNED,
        lease_expires_at=None,
        sent_at=None,
        handover_id=None,
        send_after=now,
        updated_at=now,
    )
    MessageEvent.objects.bulk_create(
        MessageEvent(message_id=pk, status=Status.QUEUED, detail=RETURNED) for pk in message_ids
    )


def live_ids() -> set[int]:
    """The ids of the hand-overs being sent now (a handful of rows: one per batch under way)."""
    return set(Handover.objects.values_list("pk", flat=True))
