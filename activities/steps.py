"""The steps an enrollment walks, each with its checks (for the editor and activity files)
and what running it does.

A step's ``run(enrollment, step, key, now)`` returns an ``Outcome`` whose ``kind`` (an
``OutcomeKind``) says what comes next: go on to the next step, wait until a moment, wait
for an event, enter a branch, or exit. Steps that write (a message, a coupon, a
membership) key what they write by the enrollment and the step's position, so running a
step twice writes once; the messages carry ``source_prefix()``, which pausing, resuming
and ending an activity hold, release and cancel by. ``problems_in(steps)`` lists every
problem of a list of steps; each step type's checker is ``<type>_problems``.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import TextChoices
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from customers import segments
from customers.models import Segment
from messaging import outbox, sms
from messaging.models import Category, Channel, EmailTemplate, SmsContent

from . import conditions
from .models import Activity, Coupon, CouponPool, Enrollment


class OutcomeKind(TextChoices):
    """What the engine does after a step."""

    NEXT = "next", "Go on to the next step"
    WAIT = "wait", "Wait until a moment"
    WAIT_FOR_EVENT = "wait_for_event", "Wait for an event, or until a moment"
    BRANCH = "branch", "Enter a branch"
    EXIT = "exit", "Exit the activity"


class AfterWait(TextChoices):
    """What a wait does when it ends: a wait_until's ``if_past``, a wait_for_event's ``on_event``
    and ``on_timeout``."""

    CONTINUE = "continue", "Go on"
    EXIT = "exit", "Exit"


@dataclass
class Outcome:
    """What a step did (``kind``), in words for the history (``note``), and what the wait or branch needs."""

    kind: OutcomeKind = OutcomeKind.NEXT
    note: str = ""
    until: datetime | None = None
    waiting_for: dict = field(default_factory=dict)
    branch: str = ""


DURATION_UNITS = ("days", "hours", "minutes")
#: The longest wait, timeout, coupon validity or expiry a step takes: longer is a typo, and
#: past year 9999 no moment can hold it.
LONGEST_DURATION = timedelta(days=3_650)


def duration_of(step) -> timedelta:
    return timedelta(**{unit: step[unit] for unit in DURATION_UNITS if unit in step})


def _duration_problems(step, where, *, required=True) -> list[str]:
    given = [unit for unit in DURATION_UNITS if unit in step]
    if not given:
        return [f"{where}: give a duration in days, hours or minutes"] if required else []
    problems = [
        f"{where}: {unit} must be a number, not {step[unit]!r}"
        for unit in given
        if not isinstance(step[unit], (int, float)) or isinstance(step[unit], bool)
    ]
    if problems:
        return problems
    try:
        duration = duration_of(step)
    except OverflowError:
        duration = None
    if duration is None or duration > LONGEST_DURATION:
        problems.append(f"{where}: the duration must be at most ten years")
    elif duration <= timedelta(0):
        problems.append(f"{where}: the duration must be more than zero")
    return problems


# --- send ------------------------------------------------------------------------------


def send_problems(step, where) -> list[str]:
    from django.conf import settings

    channel = step.get("channel")
    if channel == Channel.EMAIL:
        if not EmailTemplate.objects.filter(slug=step.get("template")).exists():
            return [f"{where}: there is no e-mail template {step.get('template')!r}"]
    elif channel == Channel.SMS:
        content = SmsContent.objects.filter(slug=step.get("content")).first()
        if content is None:
            return [f"{where}: there is no SMS content {step.get('content')!r}"]
        if settings.TRIGGERHUB_SMS_LONG_POLICY == sms.LongSmsPolicy.REFUSE:
            report = sms.segment(content.text)
            if report.segments > 1:
                return [
                    f"{where}: SMS content {content.slug!r} is {report.segments} parts "
                    f"({report.units} {report.encoding} units) and the site refuses SMS over one part"
                ]
    else:
        return [f"{where}: channel must be 'email' or 'sms', not {channel!r}"]
    if "category" in step and step["category"] not in Category.values:
        return [f"{where}: category must be marketing or transactional, not {step['category']!r}"]
    hours = step.get("expires_after_hours", 1)
    if (
        isinstance(hours, bool)
        or not isinstance(hours, (int, float))
        or not 0 < hours <= LONGEST_DURATION / timedelta(hours=1)
    ):
        return [f"{where}: expires_after_hours must be a number of hours above zero, at most ten years"]
    return []


def run_send(enrollment, step, key, now) -> Outcome:
    channel = Channel(step["channel"])
    content: EmailTemplate | SmsContent
    if channel == Channel.EMAIL:
        content = EmailTemplate.objects.get(slug=step["template"])
    else:
        content = SmsContent.objects.get(slug=step["content"])
    definition = enrollment.version.definition
    expires = step.get("expires_after_hours")
    message = outbox.enqueue(
        customer=enrollment.customer,
        channel=channel,
        content=content,
        category=step.get("category", definition["category"]),
        source=step_source(enrollment, key),
        dedupe_key=f"enrollment:{enrollment.pk}:step:{key}",
        context=enrollment.context,
        rules=definition.get("send_rules") or {},
        expires_at=now + timedelta(hours=expires) if expires else None,
        now=now,
    )
    return Outcome(note=f"message {message.pk} {message.status}" + (f" ({message.reason})" if message.reason else ""))


def source_prefix(of: Activity | Enrollment) -> str:
    """How the source of every message of an activity, or of one of its enrollments, begins:
    ``activity:3/`` or ``activity:3/enrollment:17/``. An enrollment's prefix begins with its
    activity's, so what is done by the activity's prefix reaches every enrollment's messages."""
    if isinstance(of, Enrollment):
        return f"activity:{of.activity_id}/enrollment:{of.pk}/"
    return f"activity:{of.pk}/"


def step_source(enrollment, key) -> str:
    """The source of the message the step at ``key`` of ``enrollment`` sends."""
    return f"{source_prefix(enrollment)}step:{key}"


# --- waits -----------------------------------------------------------------------------


def wait_problems(step, where) -> list[str]:
    return _duration_problems(step, where)


def run_wait(enrollment, step, key, now) -> Outcome:
    until = now + duration_of(step)
    return Outcome(OutcomeKind.WAIT, note=f"until {until.isoformat()}", until=until)


def wait_until_problems(step, where) -> list[str]:
    problems = []
    if not isinstance(step.get("field"), str) or not step["field"].startswith(
        ("properties.", "attributes.", "date_of_birth")
    ):
        problems.append(f"{where}: field must be properties.<name>, attributes.<name> or date_of_birth")
    for name in ("offset_hours", "offset_minutes", "offset_days"):
        if name in step and not isinstance(step[name], (int, float)):
            problems.append(f"{where}: {name} must be a number")
    if step.get("if_past", AfterWait.CONTINUE) not in AfterWait.values:
        problems.append(f"{where}: if_past must be continue or exit")
    return problems


def run_wait_until(enrollment, step, key, now) -> Outcome:
    moment = _moment_of(enrollment, step["field"])
    if moment is None:
        return Outcome(OutcomeKind.EXIT, note=f"no date in {step['field']}")
    until = moment + timedelta(
        days=step.get("offset_days", 0), hours=step.get("offset_hours", 0), minutes=step.get("offset_minutes", 0)
    )
    if until <= now:
        if step.get("if_past", AfterWait.CONTINUE) == AfterWait.EXIT:
            return Outcome(OutcomeKind.EXIT, note=f"{until.isoformat()} had passed")
        return Outcome(note=f"{until.isoformat()} had passed; going on")
    return Outcome(OutcomeKind.WAIT, note=f"until {until.isoformat()}", until=until)


def _moment_of(enrollment, path) -> datetime | None:
    if path.startswith("properties."):
        value = (enrollment.context.get("event") or {}).get(path.removeprefix("properties."))
    elif path.startswith("attributes."):
        value = (enrollment.customer.attributes or {}).get(path.removeprefix("attributes."))
    else:
        value = getattr(enrollment.customer, path, None)
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        value = value.isoformat() if value is not None else None
    if value is None:
        return None
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)) is not None:
        moment = datetime.combine(day, datetime.min.time())
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def wait_for_event_problems(step, where) -> list[str]:
    problems = []
    if not isinstance(step.get("event"), str) or not step["event"]:
        problems.append(f"{where}: name the event to wait for")
    problems += [f"{where}: {problem}" for problem in conditions.event_condition_problems(step.get("where", []))]
    timeout = {
        unit.removeprefix("timeout_"): step[unit]
        for unit in ("timeout_days", "timeout_hours", "timeout_minutes")
        if unit in step
    }
    problems += [
        p.replace("a duration", "a timeout (timeout_days, timeout_hours or timeout_minutes)")
        for p in _duration_problems(timeout, where)
    ]
    for name in ("on_event", "on_timeout"):
        if step.get(name, AfterWait.CONTINUE) not in AfterWait.values:
            problems.append(f"{where}: {name} must be continue or exit")
    return problems


def run_wait_for_event(enrollment, step, key, now) -> Outcome:
    timeout = timedelta(
        days=step.get("timeout_days", 0), hours=step.get("timeout_hours", 0), minutes=step.get("timeout_minutes", 0)
    )
    waiting_for = {
        "event": step["event"],
        "where": step.get("where", []),
        "on_event": step.get("on_event", AfterWait.CONTINUE),
        "on_timeout": step.get("on_timeout", AfterWait.CONTINUE),
    }
    until = now + timeout
    return Outcome(
        OutcomeKind.WAIT_FOR_EVENT,
        note=f"{step['event']} until {until.isoformat()}",
        until=until,
        waiting_for=waiting_for,
    )


# --- branch, exit ----------------------------------------------------------------------


def branch_problems(step, where) -> list[str]:
    problems = [f"{where}: {problem}" for problem in conditions.problems_in(step.get("if", []))]
    if not step.get("if"):
        problems.append(f"{where}: a branch needs conditions under 'if'")
    for arm in ("then", "else"):
        if arm in step and not isinstance(step[arm], list):
            problems.append(f"{where}: '{arm}' must be a list of steps")
    return problems


def run_branch(enrollment, step, key, now) -> Outcome:
    chosen = "then" if conditions.matches(step["if"], enrollment.customer, at=now) else "else"
    return Outcome(OutcomeKind.BRANCH, note=chosen, branch=chosen)


def run_exit(enrollment, step, key, now) -> Outcome:
    return Outcome(OutcomeKind.EXIT, note=step.get("note", "exit step"))


# --- coupons ---------------------------------------------------------------------------

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def coupon_problems(step, where) -> list[str]:
    problems = []
    days = step.get("valid_days", 1)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= LONGEST_DURATION.days:
        problems.append(f"{where}: valid_days must be a whole number of days above zero, at most ten years")
    if "pool" in step:
        if not CouponPool.objects.filter(slug=step["pool"]).exists():
            problems.append(f"{where}: there is no coupon pool {step['pool']!r}")
        return problems
    if ("percent_off" in step) == ("amount_off" in step):
        problems.append(f"{where}: give either percent_off or amount_off (or a pool)")
    value = step.get("percent_off", step.get("amount_off"))
    if value is not None and (not isinstance(value, (int, float)) or value <= 0):
        problems.append(f"{where}: the discount must be a number above zero")
    if "percent_off" in step and isinstance(value, (int, float)) and value > 100:
        problems.append(f"{where}: percent_off cannot exceed 100")
    prefix = step.get("prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 20 or not prefix.replace("-", "").isalnum() and prefix:
        problems.append(f"{where}: prefix must be up to 20 letters, digits or dashes")
    return problems


def run_issue_coupon(enrollment, step, key, now) -> Outcome:
    coupon = Coupon.objects.filter(enrollment=enrollment, step_key=key).first() or _issue(enrollment, step, key, now)
    if coupon is None:
        return Outcome(OutcomeKind.EXIT, note=f"coupon pool {step['pool']!r} is empty")
    enrollment.context["coupon"] = {
        "code": coupon.code,
        "percent_off": coupon.percent_off,
        "amount_off": coupon.amount_off,
        "expires_at": coupon.expires_at,
    }
    return Outcome(note=f"coupon {coupon.code}")


def _issue(enrollment, step, key, now) -> Coupon | None:
    expires = now + timedelta(days=step["valid_days"]) if step.get("valid_days") else None
    if "pool" in step:
        with transaction.atomic():
            coupon = (
                Coupon.objects.select_for_update(skip_locked=True)
                .filter(pool__slug=step["pool"], enrollment__isnull=True)
                .order_by("pk")
                .first()
            )
            if coupon is None:
                return None
            pool = coupon.pool
            assert pool is not None  # the filter above is on the pool's slug
            coupon.enrollment, coupon.customer, coupon.step_key, coupon.issued_at = (
                enrollment,
                enrollment.customer,
                key,
                now,
            )
            coupon.percent_off = coupon.percent_off or pool.percent_off
            coupon.amount_off = coupon.amount_off or pool.amount_off
            coupon.expires_at = coupon.expires_at or expires
            coupon.save()
            return coupon
    prefix = step.get("prefix", "")
    while True:
        code = (f"{prefix}-" if prefix else "") + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                return Coupon.objects.create(
                    code=code,
                    enrollment=enrollment,
                    customer=enrollment.customer,
                    step_key=key,
                    percent_off=step.get("percent_off"),
                    amount_off=step.get("amount_off"),
                    issued_at=now,
                    expires_at=expires,
                )
        except IntegrityError:
            if Coupon.objects.filter(enrollment=enrollment, step_key=key).exists():
                return Coupon.objects.get(enrollment=enrollment, step_key=key)
            continue  # the rare twin code: draw again


# --- segments --------------------------------------------------------------------------


def segment_problems(step, where) -> list[str]:
    if not Segment.objects.filter(slug=step.get("segment")).exists():
        return [f"{where}: there is no segment {step.get('segment')!r}"]
    return []


def run_add_to_segment(enrollment, step, key, now) -> Outcome:
    segments.add(Segment.objects.get(slug=step["segment"]), [enrollment.customer])
    return Outcome(note=f"added to {step['segment']}")


def run_remove_from_segment(enrollment, step, key, now) -> Outcome:
    segments.remove(Segment.objects.get(slug=step["segment"]), [enrollment.customer])
    return Outcome(note=f"removed from {step['segment']}")


@dataclass(frozen=True)
class StepKind:
    problems: Callable[[Any, str], list[str]]  # (step, where)
    run: Callable[[Any, Any, str, datetime], Outcome]  # (enrollment, step, key, now)


STEPS = {
    "send": StepKind(send_problems, run_send),
    "wait": StepKind(wait_problems, run_wait),
    "wait_until": StepKind(wait_until_problems, run_wait_until),
    "wait_for_event": StepKind(wait_for_event_problems, run_wait_for_event),
    "branch": StepKind(branch_problems, run_branch),
    "issue_coupon": StepKind(coupon_problems, run_issue_coupon),
    "add_to_segment": StepKind(segment_problems, run_add_to_segment),
    "remove_from_segment": StepKind(segment_problems, run_remove_from_segment),
    "exit": StepKind(lambda step, where: [], run_exit),
}


#: The keys each step type reads; any other key is a mistake (a typo would be ignored silently).
STEP_KEYS = {
    "send": {"channel", "template", "content", "category", "expires_after_hours"},
    "wait": {"days", "hours", "minutes"},
    "wait_until": {"field", "offset_days", "offset_hours", "offset_minutes", "if_past"},
    "wait_for_event": {"event", "where", "timeout_days", "timeout_hours", "timeout_minutes", "on_event", "on_timeout"},
    "branch": {"if", "then", "else"},
    "issue_coupon": {"prefix", "percent_off", "amount_off", "valid_days", "pool"},
    "add_to_segment": {"segment"},
    "remove_from_segment": {"segment"},
    "exit": {"note"},
}


def problems_in(steps, where="steps") -> list[str]:
    """Every problem of a list of steps (and of the lists inside its branches)."""
    if not isinstance(steps, list):
        return [f"{where} must be a list of steps"]
    problems = []
    for index, step in enumerate(steps):
        here = f"{where}[{index}]"
        if not isinstance(step, dict):
            problems.append(f"{here} must be an object with a 'type'")
            continue
        type_ = step.get("type")
        kind = STEPS.get(type_) if isinstance(type_, str) else None  # a list or an object is no type
        if kind is None:
            problems.append(f"{here}: unknown step type {step.get('type')!r}; known: {', '.join(STEPS)}")
            continue
        unknown = sorted(set(step) - STEP_KEYS[step["type"]] - {"type", "name"})
        if unknown:
            problems.append(
                f"{here}: {step['type']} does not take {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(sorted(STEP_KEYS[step['type']]))}"
            )
        problems += kind.problems(step, here)
        if step["type"] == "branch":
            for arm in ("then", "else"):
                if isinstance(step.get(arm), list):
                    problems += problems_in(step[arm], f"{here}.{arm}")
    return problems


#: The name it had before "problems_in" became the one verb for listing problems.
step_list_problems = problems_in
