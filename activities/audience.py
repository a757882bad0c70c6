"""Who a target reaches: how many customers it matches now, and how many of them a channel allows.

The builder asks ``estimate()`` while a marketer edits a target, so it answers in one
statement whatever the number of customers (two more on PostgreSQL, which bound its
time), and it never raises for what the target holds: a target that cannot be
evaluated comes back with its ``problems`` and no counts.

The counts are set-based, from the SQL form of the conditions (``conditions.to_q``):

* ``matching`` — customers the target's conditions match at ``at``;
* ``reachable`` — of those, the ones the send policy's first checks would let a
  message of ``category`` through on ``channel`` (``messaging.policy.decide`` 1 and 2):
  the customer has the address (e-mail or phone), an e-mail address is not suppressed
  (the policy reads suppressions for e-mail only: a hard bounce or a complaint), and
  for marketing the latest consent record for the channel is a grant, read as the
  condition ``consent.<channel> is true`` reads it. What a send decides later per
  message (an e-mail address that is not valid, excluded regions, caps, the send
  window, credits) is not counted: the estimate is an upper bound of who gets it.

``overlap()`` and ``overlaps()`` count the customers two targets share (the
warning about another active activity on the same trigger).
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from customers.models import Customer
from messaging.models import Category, Channel, Suppression

from . import conditions

#: Whole numbers beyond it cannot be read as floats, which every comparison of numbers does.
_LARGEST_INTEGER = 10**300

#: The longest an estimate may run on PostgreSQL before it answers with a problem
#: instead: the builder asks again at each edit, and one slow target must not hold
#: the database meanwhile.
ESTIMATE_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Estimate:
    """``matching`` and ``reachable`` customers (None when not counted) and why not."""

    matching: int | None
    reachable: int | None
    problems: tuple[str, ...] = ()


def estimate(target, *, channel=None, category=Category.MARKETING, at: datetime | None = None) -> Estimate:
    """How many customers ``target`` matches at ``at`` (now by default), and how many of them
    a ``category`` message on ``channel`` may reach (None without a channel)."""
    at = at or timezone.now()
    problems = _problems_in(target, channel, category)
    if problems:
        return Estimate(None, None, tuple(problems))
    try:
        matched = conditions.to_q(target, at=at)
    except conditions.InvalidConditions as invalid:
        return Estimate(None, None, tuple(invalid.problems))
    except OverflowError:  # a window of days reaching back past year 1
        return Estimate(
            None,
            None,
            (
                "A window of 'days' in these conditions reaches back before the calendar "
                "begins; use a smaller number of days.",
            ),
        )
    counts = {"matching": Count("pk")}
    if channel is not None:
        counts["reachable"] = Count("pk", filter=reachable_q(Channel(channel), Category(category), at=at))
    try:
        totals = _aggregate(Customer.objects.filter(matched).order_by(), counts)
    except OperationalError as error:
        if not _timed_out(error):
            raise
        return Estimate(
            None,
            None,
            (
                f"Counting this target took more than {ESTIMATE_TIMEOUT_MS / 1000:g} s and was stopped; "
                "a condition on attributes or events over every customer is the usual cause.",
            ),
        )
    return Estimate(totals["matching"], totals.get("reachable"))


def reachable_q(channel, category, *, at: datetime) -> Q:
    """A filter on ``Customer`` keeping those a ``category`` message on ``channel`` may reach."""
    address = "email" if channel == Channel.EMAIL else "phone"
    allowed = ~Q(**{address: ""})
    if channel == Channel.EMAIL:
        suppressed = Suppression.objects.filter(channel=channel, address=Lower(Trim(OuterRef("email"))))
        allowed = cast(Q, allowed & ~Exists(suppressed))  # a Q at run time; the stubs say Combinable
    if category == Category.MARKETING:
        allowed &= conditions.to_q([{"field": f"consent.{channel}", "op": "is", "value": True}], at=at)
    return allowed


def overlap(target_a, target_b, *, at: datetime | None = None) -> int:
    """How many customers both targets match at ``at`` (now by default); 0 if either cannot be evaluated."""
    both = _both(target_a, target_b, at or timezone.now())
    return Customer.objects.filter(both).order_by().count() if both is not None else 0


def overlaps(target_a, target_b, *, at: datetime | None = None) -> bool:
    """Whether some customer matches both targets at ``at``; stops at the first one found."""
    both = _both(target_a, target_b, at or timezone.now())
    return both is not None and Customer.objects.filter(both).order_by().exists()


def _both(target_a, target_b, at):
    if _problems_in(target_a, None, Category.MARKETING) or _problems_in(target_b, None, Category.MARKETING):
        return None
    try:
        return conditions.to_q(target_a, at=at) & conditions.to_q(target_b, at=at)
    except (conditions.InvalidConditions, OverflowError):
        return None


def _problems_in(target, channel, category) -> list[str]:
    """What the database could not be given: text it cannot store, numbers that are not numbers."""
    problems = []
    if channel is not None and channel not in Channel.values:
        problems.append(f"'{channel}' is not a channel; choose one of {', '.join(Channel.values)}.")
    if category not in Category.values:
        problems.append(f"'{category}' is not a category; choose one of {', '.join(Category.values)}.")
    for text in _texts_in(target):
        if any(_not_text(character) for character in text):
            problems.append(
                f"'{_shown(text)}' holds characters that are not text (a NUL or half of an emoji); "
                "type the value again."
            )
    for number in _numbers_in(target):
        if isinstance(number, float) and not math.isfinite(number):
            problems.append(f"{number!r} is not a number a condition can compare with.")
        elif isinstance(number, int) and abs(number) > _LARGEST_INTEGER:
            problems.append(f"{_shown(str(number))} is out of range: conditions compare with numbers below 1e300.")
    return problems


def _not_text(character) -> bool:
    # Neither can be sent to the database: PostgreSQL refuses NUL in text, and a lone
    # surrogate cannot be written in UTF-8 at all.
    return character == "\x00" or "\ud800" <= character <= "\udfff"


def _shown(text, longest=40) -> str:
    shown = "".join(f"\\u{ord(character):04x}" if _not_text(character) else character for character in text)
    return shown if len(shown) <= longest else shown[:longest] + "…"


def _texts_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts_in(key)
            yield from _texts_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts_in(item)


def _numbers_in(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers_in(item)


def _aggregate(customers, counts) -> dict:
    if connection.vendor != "postgresql":
        return customers.aggregate(**counts)
    # The time limit, and no JIT: a count over a million customers is costed high enough
    # to be compiled first, which takes longer than the counting saved by it. Local
    # settings last to the end of the transaction: within a caller's own transaction
    # the settings it had are put back after the count.
    outer_transaction = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('statement_timeout'), current_setting('jit'), "
                "set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                [str(ESTIMATE_TIMEOUT_MS)],
            )
            timeout, jit, _, _ = cursor.fetchone()
        totals = customers.aggregate(**counts)
        if outer_transaction:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('jit', %s, true)", [timeout, jit]
                )
    return totals


def _timed_out(error) -> bool:
    return getattr(getattr(error, "__cause__", None), "sqlstate", None) == "57014"  # query_canceled
