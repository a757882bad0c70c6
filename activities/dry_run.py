"""Trying an activity on one customer (a dry run): the timeline its steps would make.

``try_on(activity, customer, start)`` runs the real engine (``engine.walk`` and the
steps' own ``run``), the real send policy and the real templates, with the clock moved
to each step's moment, inside a transaction that is rolled back: nothing is sent,
stored or published (the outbox publishes on commit, and there is none). The clock is
moved by passing ``now`` down, never by patching it: the web server is threaded.

The trigger gives the first moment: a date trigger's next occurrence at or after
``start``, at its hour in the customer's zone (which dates come round is asked of
``dates``' own SQL rule, so the dry run cannot disagree with the hourly job); an event
trigger's is ``start``, with the customer's latest event of that name as the sample,
else an empty one; a threshold's is ``start``, with the figure as it is now. A wait
moves the clock to its end; a wait for an event takes its timeout path and says so; a
branch is decided by its conditions at that moment. Each message is decided as
``outbox.enqueue`` decides it, rendered as delivery renders it, and counted as sent at
the moment the policy allows, so that a frequency cap sees the walk's earlier messages.
"""

import copy
import logging
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Max, Value, When
from django.utils import timezone

from customers.models import Customer, Event
from messaging import policy, rendering, sms, unsubscribe
from messaging.models import Channel, Message, Reason, Status

from . import conditions, dates, engine, spec, thresholds
from .models import Activity, ActivityVersion, Enrollment, EnrollmentState, Reentry, TriggerType
from .steps import AfterWait, OutcomeKind, duration_of, source_prefix, step_source

log = logging.getLogger(__name__)

#: A walk stops after this many steps, whatever the definition.
MAX_STEPS = 50
#: How far ahead a date trigger's next occurrence is looked for, by recurrence.
_ONCE_HORIZON = timedelta(days=5 * 366)
_YEARLY_HORIZON = timedelta(days=400)
#: Local days asked of the database at once when looking for a date's next occurrence.
_DAYS_PER_QUERY = 92

_ACTION_OF_STATUS: dict[str, policy.Action] = {
    Status.BLOCKED: policy.Action.BLOCK,
    Status.DEFERRED: policy.Action.DEFER,
}


@dataclass
class SendPreview:
    """One message of the timeline: what it would say, and what the send policy answers."""

    channel: str
    content: str  # the e-mail template's or SMS content's slug
    action: str  # policy.Action: send, defer or block
    reason: str = ""
    detail: str = ""
    until: datetime | None = None  # a deferral's moment (UTC)
    subject: str = ""
    body: str = ""  # the text body, or the SMS text as it would leave
    html: str = ""
    segments: sms.Segments | None = None
    render_error: str = ""  # why it cannot be rendered: its message would fail as a template error
    long_sms: str = ""  # what the site's long-SMS policy does to it (cut, refused)
    later: str = ""  # what the policy answers again when a deferral ends, if not send
    cancelled: str = ""  # the enrollment ended before it left: the outbox cancels it
    message_id: int | None = None  # of the message row the dry run wrote (and rolled back)

    @property
    def reason_label(self) -> str:
        return Reason(self.reason).label if self.reason in Reason.values else self.reason

    @property
    def ucs2_characters(self) -> str:
        """The characters that forced UCS-2, as a marketer would type them."""
        return " ".join(self.segments.non_gsm_characters) if self.segments else ""

    @property
    def segment_report(self) -> str:
        """ "1 part, GSM-7, 48 units"; UCS-2 names the characters that forced it."""
        if self.segments is None:
            return ""
        parts, units = self.segments.segments, self.segments.units
        report = f"{parts} part{'s' if parts != 1 else ''}, {self.segments.encoding}, {units} unit{'s' if units != 1 else ''}"
        return report + (f"; UCS-2 because of {self.ucs2_characters}" if self.ucs2_characters else "")

    @property
    def answer(self) -> str:
        """The policy's answer in a line: "send", "defer until … (quiet hours: …)", "block (no consent)"."""
        return _answer(self.action, self.reason, self.detail, self.until)


def _answer(action, reason, detail, until) -> str:
    why = (Reason(reason).label if reason in Reason.values else reason) + (f": {detail}" if detail else "")
    if action == policy.Action.DEFER:
        return f"defer until {until.isoformat()} ({why})"
    if action == policy.Action.BLOCK:
        return f"block ({why})"
    return "send"


@dataclass
class Entry:
    """One moment of the timeline: the start, a step, or the end."""

    key: str  # the step's position ("1", "2.then.0"); "" for the start and the end
    step_type: str  # "start", a step type, or "end"
    name: str
    moment: datetime  # aware, UTC
    zone: str  # the customer's zone, which ``local_moment`` is in
    happens: str  # what happens, in words
    send: SendPreview | None = None

    @property
    def local_moment(self) -> datetime:
        return self.moment.astimezone(zoneinfo.ZoneInfo(self.zone))


@dataclass
class Timeline:
    """What an activity would do to one customer from ``start``."""

    customer: Customer
    zone: str  # the zone the customer's dates come round in (their ``local_zone``, else the site's)
    start: datetime
    entries: list[Entry] = field(default_factory=list)
    does_not_start: str = ""  # "would never start: no date_of_birth", "would not start ...: not in the target ..."
    problems: list[str] = field(default_factory=list)  # the definition's: fix them before trying it
    notes: list[str] = field(default_factory=list)  # what the walk assumed, and what would stop the real one

    @property
    def sends(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.send is not None]


def try_on(activity, customer, start: datetime | None = None, *, definition: dict | None = None) -> Timeline:
    """The timeline ``activity`` would make for ``customer`` from ``start`` (aware; now by default).

    ``definition`` replaces the activity's own (an edit not saved yet); ``activity`` may
    be unsaved. Nothing it writes survives: everything runs in a transaction rolled back.
    """
    start = start or timezone.now()
    if timezone.is_naive(start):
        raise ValueError("the start of a dry run must be an aware datetime")
    definition = activity.definition() if definition is None else definition
    zone = customer.local_zone or settings.TRIGGERHUB_DEFAULT_TIMEZONE
    timeline = Timeline(customer=customer, zone=zone, start=start.astimezone(UTC))
    timeline.problems = spec.definition_problems(definition)
    if timeline.problems:
        return timeline
    with transaction.atomic():
        try:
            _DryRun(timeline, activity, definition).run()
        finally:
            # Rolled back however it ends: its on-commit publishing is dropped with it.
            transaction.set_rollback(True)
    return timeline


@dataclass
class _Start:
    moment: datetime
    happens: str
    target_at: datetime  # the moment the target is checked at (a date trigger: the local date's)
    context: dict = field(default_factory=dict)
    event: Event | None = None


class _StepLimit(Exception):
    pass


class _DryRun:
    def __init__(self, timeline, activity, definition):
        self.timeline = timeline
        self.definition = definition
        self.activity, self.version = _activity_and_version(activity, definition)
        self.customer = Customer.objects.get(pk=timeline.customer.pk)
        self.now = timeline.start
        self.enrollment = None

    def run(self) -> None:
        start = self._start()
        if start is None:
            return
        self._note_status_and_reentry(start)
        target = self.definition.get("target") or []
        if not conditions.matches(target, self.customer, at=start.target_at):
            self.timeline.does_not_start = (
                f"would not start at {_words_moment(start.moment, self.timeline.zone)}: "
                f"the customer is not in the target ({conditions.describe(target)})"
            )
            return
        self._add("", "start", "Start", start.moment, start.happens)
        waiting = (
            self.definition["trigger"].get("type") == TriggerType.DATE
        )  # as dates.py enrolls: waiting for the moment
        self.enrollment = Enrollment.objects.create(
            activity=self.activity,
            version=self.version,
            customer=self.customer,
            occurrence_key=f"dry-run:{uuid.uuid4().hex}",
            event=start.event,
            context=start.context,
            position=[0],
            state=EnrollmentState.WAITING if waiting else EnrollmentState.ACTIVE,
            next_run_at=start.moment if waiting else None,
        )
        self.now = start.moment
        try:
            engine.walk(self.enrollment, self.now, on_step=self._observe)
            while self.enrollment.state == EnrollmentState.WAITING:
                self.now = self.enrollment.next_run_at
                engine.walk(self.enrollment, self.now, on_step=self._observe)
        except _StepLimit:
            self.timeline.notes.append(f"Stopped after {MAX_STEPS} steps; the rest is not shown.")
            return
        except Exception as exc:  # a step the real engine would fail on: shown, never a 500
            log.exception("dry run of %r stopped", self.activity.name)
            self._add("", "end", "Error", self.now, f"the engine stopped with an error: {exc}")
            return
        self._end()

    # The first moment ------------------------------------------------------------------

    def _start(self) -> _Start | None:
        trigger = self.definition["trigger"]
        earliest = max(self.timeline.start, self.activity.starts_at or self.timeline.start)
        if self.activity.starts_at and self.activity.starts_at > self.timeline.start:
            self.timeline.notes.append(
                f"The activity runs from {_words_moment(self.activity.starts_at, self.timeline.zone)}: tried from then."
            )
        if trigger["type"] == TriggerType.DATE:
            start = self._date_start(trigger, earliest)
        elif trigger["type"] == TriggerType.THRESHOLD:
            start = self._threshold_start(trigger, earliest)
        else:
            start = self._event_start(trigger, earliest)
        if start is not None and self.activity.ends_at and start.moment >= self.activity.ends_at:
            self.timeline.does_not_start = (
                f"would not start: the activity ends at {_words_moment(self.activity.ends_at, self.timeline.zone)}, "
                f"before its first moment for this customer ({_words_moment(start.moment, self.timeline.zone)})"
            )
            return None
        return start

    def _date_start(self, trigger, earliest) -> _Start | None:
        date_trigger = dates.DateTrigger.of(SimpleNamespace(trigger=trigger))
        value = _date_value(self.customer, date_trigger.field)
        if value is None:
            self.timeline.does_not_start = f"would never start: no {date_trigger.field}"
            return None
        zone = zoneinfo.ZoneInfo(self.timeline.zone)
        found = next_occurrence(date_trigger, self.customer, zone, earliest)
        if found is None:
            self.timeline.does_not_start = (
                f"would never start from {_words_moment(earliest, self.timeline.zone)}: "
                f"{date_trigger.field} ({value}) does not come round again ({_recurrence_words(date_trigger)})"
            )
            return None
        occurrence, moment = found
        local_date = occurrence + timedelta(days=date_trigger.offset_days)
        return _Start(
            moment=moment,
            happens=(
                f"starts: {date_trigger.field} ({value}) comes round on {occurrence:%a %-d %b %Y} "
                f"({_recurrence_words(date_trigger)}); {_offset_words(date_trigger.offset_days)}, "
                f"at {date_trigger.at:%H:%M} in {self.timeline.zone}"
            ),
            # As dates.customers_due checks it: conditions such as age hold on the local date of sending.
            target_at=datetime.combine(local_date, date_trigger.at, tzinfo=UTC),
        )

    def _event_start(self, trigger, earliest) -> _Start:
        name = trigger["event"]
        event = Event.objects.filter(customer=self.customer, name=name).order_by("-occurred_at", "-pk").first()
        if event is not None:
            context = {"event": engine.event_values(event)}
            happens = (
                f"starts: the event {name} arrives (the sample is this customer's latest {name}, of "
                f"{_words_moment(event.occurred_at, self.timeline.zone)})"
            )
            properties = event.properties or {}
        else:
            context = {"event": {"name": name, "occurred_at": earliest}}
            happens = (
                f"starts: the event {name} arrives (a sample with no properties: this customer has no {name} event)"
            )
            properties = {}
        where = trigger.get("where") or []
        if where and not conditions.evaluate_event_conditions(where, properties):
            self.timeline.notes.append(
                f"The sample event does not meet the trigger's conditions ({conditions.describe(where)}); "
                "only an event that does would start it. Tried as if it did."
            )
        return _Start(moment=earliest, happens=happens, target_at=earliest, context=context, event=event)

    def _threshold_start(self, trigger, earliest) -> _Start:
        line = thresholds.Line.of(SimpleNamespace(trigger=trigger))
        value = line.value_of(self.customer, earliest)
        context = {
            "event": {
                "name": "threshold_crossed",
                "occurred_at": earliest,
                "field": line.field,
                "value": value,
                "line": line.value,
                "direction": line.direction,
            }
        }
        happens = f"starts: {line.field} crosses {line.value:g} {line.direction}ward (its value now: {value})"
        return _Start(moment=earliest, happens=happens, target_at=earliest, context=context)

    def _note_status_and_reentry(self, start) -> None:
        status = self.activity.status
        if status == "draft":
            self.timeline.notes.append("The activity is a draft: nothing happens until it is activated.")
        elif status == "paused":
            self.timeline.notes.append("The activity is paused: its enrollments would be held until it resumes.")
        elif status == "ended":
            self.timeline.notes.append("The activity has ended: it would start nobody.")
        goal = self.definition.get("goal") or {}
        if goal.get("event"):
            self.timeline.notes.append(
                f"Tried without its goal: an event {goal['event']} once it has begun ends it as converted, and "
                "its messages not yet sent are cancelled."
            )
        reentry = self.definition["reentry"]
        earlier = Enrollment.objects.filter(activity=self.activity, customer=self.customer)
        if reentry == Reentry.ONCE and earlier.exists():
            self.timeline.notes.append(
                "This customer went through this activity before and re-entry is once per customer: "
                "it would not start again. Tried as if it would."
            )
        elif (
            reentry != Reentry.ONCE
            and engine._occurrence_key(
                _with_reentry(self.activity, self.definition),
                self.customer,
                start.event,
                start.moment,
            )
            is None
        ):
            self.timeline.notes.append(
                "Re-entry does not allow this customer in again now (an enrollment still running, or one "
                "too recent). Tried as if it did."
            )

    # The steps --------------------------------------------------------------------------

    def _observe(self, step, key, outcome) -> None:
        """Called by the engine after each step it takes, at ``self.now``."""
        kind = step["type"]
        preview = self._send_preview(key) if kind == "send" else None
        self._add(
            key,
            kind,
            step.get("name") or _STEP_NAMES.get(kind, kind),
            self.now,
            self._happens(step, outcome, preview),
            preview,
        )
        if sum(entry.key != "" for entry in self.timeline.entries) >= MAX_STEPS:
            raise _StepLimit

    def _happens(self, step, outcome, preview) -> str:
        kind, zone = step["type"], self.timeline.zone
        if kind == "send":
            what = "e-mail" if step["channel"] == Channel.EMAIL else "SMS"
            return f"sends the {what} {step.get('template') or step.get('content')!r}"
        if outcome.kind == OutcomeKind.EXIT:
            return f"ends: {outcome.note}"
        if kind == "wait":
            return f"waits {_duration_words(duration_of(step))}, until {_words_moment(outcome.until, zone)}"
        if kind == "wait_until":
            if outcome.kind == OutcomeKind.WAIT:
                return f"waits until {_words_moment(outcome.until, zone)} ({step['field']})"
            return f"the moment of {step['field']} had passed: goes on"
        if kind == "wait_for_event":
            waiting = outcome.waiting_for
            by = _words_moment(outcome.until, zone)
            return (
                f"waits for {waiting['event']} until {by}. Tried without it: if no {waiting['event']} arrives "
                f"by {by}, it {_goes_on_or_ends(waiting['on_timeout'])}; if one arrives, it "
                f"{_goes_on_or_ends(waiting['on_event'])}"
            )
        if kind == "branch":
            meets = "meets" if outcome.branch == "then" else "does not meet"
            return f"takes the '{outcome.branch}' path: the customer {meets} {conditions.describe(step['if'])}"
        if kind == "issue_coupon":
            coupon = self.enrollment.context["coupon"]
            value = f"{coupon['percent_off']:g}% off" if coupon["percent_off"] else f"{coupon['amount_off']} off"
            expires = f", valid until {_words_moment(coupon['expires_at'], zone)}" if coupon["expires_at"] else ""
            return f"issues coupon {coupon['code']} ({value}{expires}); the real code is drawn when it runs"
        if kind == "add_to_segment":
            return f"adds the customer to the segment {step['segment']!r}"
        if kind == "remove_from_segment":
            return f"removes the customer from the segment {step['segment']!r}"
        return outcome.note

    def _send_preview(self, key) -> SendPreview:
        message = Message.objects.select_related("email_template", "sms_content").get(
            source=step_source(self.enrollment, key)
        )
        action = _ACTION_OF_STATUS.get(message.status, policy.Action.SEND)
        content = message.email_template or message.sms_content
        assert content is not None  # a constraint: a message has its channel's template or content
        preview = SendPreview(
            channel=message.channel,
            content=content.slug,
            action=action,
            reason=message.reason,
            detail=message.detail,
            until=message.send_after if action == policy.Action.DEFER else None,
            message_id=message.pk,
        )
        _render(preview, message, self.customer)
        if action == policy.Action.DEFER:
            assert preview.until is not None  # a deferral's moment: the message's send_after
            # Delivery asks again when the deferral ends: a cap or credits may still say no.
            later = policy.decide(
                self.customer,
                message.channel,
                message.category,
                preview.until,
                rules=message.rules,
                expires_at=message.expires_at,
                parts=preview.segments.segments if preview.segments else None,
                message_id=message.pk,
            )
            if later.action != policy.Action.SEND:
                preview.later = f"when it ends: {_answer(later.action, later.reason, later.detail, later.until)}"
        if action != policy.Action.BLOCK:
            # Counted as handed over when the policy lets it go, as delivery writes it: caps see it.
            Message.objects.filter(pk=message.pk).update(sent_at=preview.until or self.now)
        return preview

    def _end(self) -> None:
        end = next((record for record in reversed(self.enrollment.history) if record["type"] == "end"), None)
        if end is None:
            return
        state = EnrollmentState(self.enrollment.state).label.lower()
        self._add("", "end", "End", self.enrollment.ended_at, f"{state}: {end['outcome']}")
        cancelled = dict(
            Message.objects.filter(
                source__startswith=source_prefix(self.enrollment), status=Status.BLOCKED, reason=Reason.ENROLLMENT_ENDED
            ).values_list("pk", "reason")
        )
        for entry in self.timeline.sends:
            if entry.send.message_id in cancelled:
                entry.send.cancelled = "cancelled before it left: the enrollment ended first"

    def _add(self, key, kind, name, moment, happens, send=None) -> None:
        self.timeline.entries.append(
            Entry(
                key=key,
                step_type=kind,
                name=name,
                moment=moment.astimezone(UTC),
                zone=self.timeline.zone,
                happens=happens,
                send=send,
            )
        )


def _activity_and_version(activity, definition) -> tuple[Activity, ActivityVersion]:
    """The activity and a version holding ``definition``, written in the dry run's transaction if need be."""
    if activity.pk is not None:
        current = activity.versions.filter(number=activity.version).first()
        if current is not None and current.definition == definition:
            return activity, current
        number = (activity.versions.aggregate(Max("number"))["number__max"] or 0) + 1
        return activity, ActivityVersion.objects.create(activity=activity, number=number, definition=definition)
    stand_in = Activity(
        name=f"dry run {uuid.uuid4().hex}",
        status=activity.status,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        **definition,
    )
    stand_in.save()
    return stand_in, stand_in.current_version()


def _with_reentry(activity, definition) -> Activity:
    """A copy of ``activity`` with the re-entry of ``definition``, for the engine's re-entry rule."""
    tried = copy.copy(activity)
    tried.reentry, tried.reentry_days = definition["reentry"], definition.get("reentry_days")
    return tried


def _render(preview, message, customer) -> None:
    """Render ``message`` as delivery would, into ``preview``; a failure is shown, not raised."""
    try:
        values = rendering.values_for(customer, message.context, unsubscribe_url=unsubscribe.unsubscribe_url(message))
        if message.channel == Channel.EMAIL:
            preview.subject, preview.body, preview.html = rendering.render_email(message.email_template, values)
            return
        text = rendering.render_sms(message.sms_content, values)
    except Exception as exc:  # a template error, a missing setting: the marketer reads why
        preview.render_error = str(exc) or type(exc).__name__
        return
    try:
        preview.body = sms.apply_long_policy(text, settings.TRIGGERHUB_SMS_LONG_POLICY)
    except sms.TooLong as exc:
        preview.body = text
        preview.long_sms = f"refused: the site sends no SMS over one part, and this is {exc}"
    else:
        if preview.body != text:
            preview.long_sms = f"cut to one SMS: the site's long-SMS policy is truncate (it was {len(text)} characters)"
    preview.segments = sms.segment(preview.body)


def next_occurrence(trigger: dates.DateTrigger, customer, zone, earliest: datetime) -> tuple[date, datetime] | None:
    """(occurrence, moment): the first moment at or after ``earliest`` when ``customer``'s date comes round.

    The moment is ``dates.send_moments``' own (the local date at ``trigger.at`` in
    ``zone``); whether the customer's date comes round on an occurrence is asked of
    ``dates``' own SQL rule, a few months of days per query.
    """
    if trigger.recurrence == "yearly":
        horizon = _YEARLY_HORIZON
    elif trigger.recurrence == "every_months":
        horizon = timedelta(days=31 * (trigger.every_months + 1))
    else:
        horizon = _ONCE_HORIZON
    first_day = earliest.astimezone(zone).date()
    try:
        last_day = first_day + horizon
    except OverflowError:
        last_day = date.max
    day = first_day
    while day <= last_day:
        candidates = []
        for offset in range(_DAYS_PER_QUERY):
            try:
                local_day = day + timedelta(days=offset)
                moment = datetime.combine(local_day, trigger.at, tzinfo=zone).astimezone(UTC)
                occurrence = local_day - timedelta(days=trigger.offset_days)
            except OverflowError:  # the end of the calendar
                break
            if moment >= earliest and local_day <= last_day:
                candidates.append((occurrence, moment))
        if not candidates:
            return None
        first = (
            Customer.objects.filter(pk=customer.pk)
            .annotate(
                first=Case(
                    *(
                        When(dates._comes_round_on(trigger, occurrence), then=Value(index))
                        for index, (occurrence, _) in enumerate(candidates)
                    ),
                    output_field=IntegerField(),
                )
            )
            .values_list("first", flat=True)
            .first()
        )
        if first is not None:
            return candidates[first]
        day = candidates[-1][1].astimezone(zone).date() + timedelta(days=1)
    return None


def _date_value(customer, field_name):
    """The customer's date the trigger reads, as text; None when there is none."""
    if field_name == "date_of_birth":
        return customer.date_of_birth.isoformat() if customer.date_of_birth else None
    value = customer.attributes or {}
    for key in field_name.split(".")[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value[:10].count("-") == 2 else None


_STEP_NAMES = {
    "send": "Send",
    "wait": "Wait",
    "wait_until": "Wait until",
    "wait_for_event": "Wait for an event",
    "branch": "Branch",
    "issue_coupon": "Issue a coupon",
    "add_to_segment": "Add to a segment",
    "remove_from_segment": "Remove from a segment",
    "exit": "Exit",
}


def _words_moment(moment, zone_name) -> str:
    """ "Tue 2 Mar 2027 10:00 AEDT (Australia/Sydney), 23:00 UTC on Mon 1 Mar"."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(zoneinfo.ZoneInfo(zone_name))
    utc = moment.astimezone(UTC)
    if local.utcoffset() == timedelta(0) and local.tzname() == "UTC":
        return f"{local:%a %-d %b %Y %H:%M} UTC"
    when_utc = f"{utc:%H:%M} UTC" + ("" if utc.date() == local.date() else f" on {utc:%a %-d %b}")
    return f"{local:%a %-d %b %Y %H:%M} {local.tzname()} ({zone_name}), {when_utc}"


def _duration_words(span: timedelta) -> str:
    days, seconds = span.days, span.seconds
    parts = [(days, "day"), (seconds // 3600, "hour"), (seconds % 3600 // 60, "minute")]
    return " ".join(f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in parts if count) or "no time"


def _offset_words(days: int) -> str:
    if days == 0:
        return "on the day"
    count = f"{abs(days)} day{'s' if abs(days) != 1 else ''}"
    return f"{count} before" if days < 0 else f"{count} after"


def _recurrence_words(trigger) -> str:
    if trigger.recurrence == "every_months":
        return f"every {trigger.every_months} months"
    return trigger.recurrence


def _goes_on_or_ends(choice) -> str:
    return "ends" if choice == AfterWait.EXIT else "goes on"
