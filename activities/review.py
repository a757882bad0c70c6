"""Checks that tell a marketer what is wrong with an activity before a customer sees it.

``review(definition)`` reads a definition the spec accepts (``spec.definition_problems``
finds nothing: that is the structure) and says what would still go wrong for
customers. An *error* is a message that cannot come out right (a variable no earlier
step provides: the customer would get an empty code) and stops the save; a *warning*
is something that is probably a mistake (an event nobody sends, an audience of no
one, an SMS that costs two parts) and is confirmed at activation. Each finding names
its block ("trigger", "target", "goal", "reentry", "send_rules") or its step as the
engine's positions do ("steps.2.then.1"), and says in one sentence what to do.

What a message may use is what the path to its step provides: ``customer``, ``site``
and ``unsubscribe_url`` always (``rendering.values_for``); ``event`` with an event
trigger (a threshold trigger's crossing has its own few names; a date trigger has
none); ``coupon`` only after an issue_coupon step on every way to the send (one in the
other lane of a branch does not reach it, one before the branch does). ``links`` is
provided by no step, so an activity's message cannot use it.

It never raises for what a definition holds, and it is cheap: a few queries
whatever the number of steps or customers (the builder calls it on every render).
"""

import difflib
import logging
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Q, TextChoices
from django.template import TemplateSyntaxError
from django.utils import timezone

from customers.models import Customer, Event
from messaging import rendering, sms, template_language, unsubscribe
from messaging.models import Channel, EmailTemplate, Message, SmsContent

from . import audience, conditions, vocabulary
from .engine import event_values
from .models import Activity, ActivityStatus, Reentry, TriggerType

log = logging.getLogger(__name__)


#: How many other active activities on the same trigger and channel one review asks the
#: database about (one EXISTS each): the page that shows the checks stays a few queries.
OVERLAPS_ASKED = 10


class Level(TextChoices):
    ERROR = "error", "Error: stops the save"
    WARNING = "warning", "Warning: confirm it to activate"


@dataclass(frozen=True)
class Finding:
    """One thing a marketer should know: ``level``, ``where`` in the activity, the sentence to act on."""

    level: str  # a Level
    where: str  # "trigger", "target", "goal", "reentry", "send_rules" or a step, "steps.2.then.1"
    text: str
    detail: str = ""  # what the text stands on: the rendered SMS, the characters that forced UCS-2


#: The first name of the sample customer an SMS is measured for: ten characters, a common length.
SAMPLE_FIRST_NAME = "Christophe"
#: What a generated coupon code looks like after its prefix (steps._issue: eight characters).
SAMPLE_COUPON_CODE = "K7M2Q9XP"

#: What a threshold trigger's crossing gives its messages as ``event`` (thresholds._enroll).
THRESHOLD_EVENT_NAMES = frozenset(("name", "occurred_at", "field", "value", "line", "direction"))

#: What every message has, whatever the activity: rendering.values_for fills them in.
ALWAYS_PROVIDED = frozenset(("customer", "site", "unsubscribe_url"))

#: How many of the trigger's stored events are read to learn the properties it carries.
EVENT_SAMPLE_SIZE = 200

_DATE_LIKE_EVENT = re.compile(r"birth|anniversar|date|renew|expir", re.IGNORECASE)


def review(definition: dict, *, activity=None, now=None) -> list[Finding]:
    """What would go wrong for customers with ``definition`` (errors first, then warnings, in
    the order of the page). ``activity``, when given, is left out of the overlap check."""
    if not isinstance(definition, dict):
        return []
    check = _Review(definition, activity, now or timezone.now())
    findings = []
    for where, part in (
        ("trigger", check.event_trigger),
        ("target", check.audience_of_no_one),
        ("goal", check.goal),
        ("reentry", check.reentry),
        ("steps", check.steps),
        ("trigger", check.overlap),
    ):
        findings += _guarded(where, part)
    return sorted(findings, key=lambda finding: finding.level != Level.ERROR)


def errors_in(findings) -> list[Finding]:
    return [finding for finding in findings if finding.level == Level.ERROR]


def warnings_in(findings) -> list[Finding]:
    return [finding for finding in findings if finding.level == Level.WARNING]


def _guarded(where, part) -> list[Finding]:
    """``part()``'s findings; a check that fails says so instead of failing the page."""
    try:
        with transaction.atomic():  # a failed query must not break the caller's transaction
            return list(part())
    except Exception:
        log.exception("activity review: checking the %s failed", where)
        return [
            Finding(
                Level.WARNING,
                where,
                f"TriggerHub could not finish checking the {where}; look at it again before activating.",
            )
        ]


# --- What a template uses ----------------------------------------------------------------


class Reading(NamedTuple):
    """What the parts of a template or SMS content use (``variables``: dotted paths), and why a
    part could not be read (``problems``: "HTML body: line 2: ...")."""

    variables: frozenset
    problems: tuple


def variables_used(content) -> set[str]:
    """The variables ``content`` uses, as dotted paths ("coupon.code", "customer.first_name").

    ``content`` is template source text, or an ``EmailTemplate`` / ``SmsContent`` (all its
    parts and language variants). Names a template defines for itself ({% for item in ... %},
    {% with %}, "as") are not variables. A part that does not compile adds nothing
    (``rendering.template_problems`` says why).
    """
    return set(read(content).variables)


def read(content) -> Reading:
    """The variables of ``content`` (as ``variables_used``) and the problems of its parts that do not compile."""
    variables, problems = set(), []
    for label, source in _sources(content):
        try:
            template = rendering.compile_template(source)
        except Exception as exc:  # a marketer's text: a sentence, never a 500
            problems.append(f"{label}: {_compile_problem(exc)}" if label else _compile_problem(exc))
            continue
        variables |= _variables_of(template)
    return Reading(frozenset(variables), tuple(problems))


def _sources(content):
    """(label, source) for each part of ``content`` and of its language variants."""
    if isinstance(content, str):
        yield "", content
        return
    versions = [(None, content)]
    if getattr(content, "pk", None) is not None and hasattr(content, "variants"):
        versions += [(variant.language, variant) for variant in content.variants.all()]
    parts = (("subject", "subject"), ("html_body", "HTML body"), ("text_body", "text body"), ("text", "text"))
    for language, version in versions:
        for field, label in parts:
            source = getattr(version, field, None)
            if isinstance(source, str) and source:
                yield (f"'{language}' variant, {label}" if language else label), source


def _variables_of(template) -> set[str]:
    # rendering's own walk, the one that refuses unknown variables at save: every tag's
    # nodes and filter arguments, with the names {% for %} and {% with %} define in scope.
    nodes = list(rendering._all_nodes(template.nodelist))
    used: list[tuple[int | None, tuple[str, ...], frozenset[str]]] = []
    rendering._collect_variables(template.nodelist, frozenset(rendering._assigned_names(nodes)), None, used, set())
    return {".".join(lookups) for _, lookups, scope in used if lookups[0] not in scope}


def _compile_problem(exc) -> str:
    line = getattr(exc, "template_debug", {}).get("line")
    problem = template_language.problem_in(exc) if isinstance(exc, TemplateSyntaxError) else str(exc)
    return f"line {line}: {problem}" if line else problem


# --- The steps, with what reaches each -----------------------------------------------------


class _Placed(NamedTuple):
    where: str  # "steps.2.then.1"
    step: dict
    coupon: dict | None  # the issue_coupon step whose coupon reaches this step, on every way to it


def placed_steps(steps) -> list[_Placed]:
    """Every step of ``steps`` (branches included, in reading order), with the coupon that reaches it."""
    placed: list[_Placed] = []
    _place(steps, "steps", None, placed)
    return placed


def _place(steps, where, coupon, placed) -> tuple[dict | None, bool]:
    """Append the steps of one list; return the coupon after it and whether a customer can reach its end."""
    if not isinstance(steps, list):
        return coupon, True
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        here = f"{where}.{index}"
        placed.append(_Placed(here, step, coupon))
        kind = step.get("type")
        if kind == "issue_coupon":
            coupon = step
        elif kind == "exit":
            return coupon, False
        elif kind == "branch":
            lanes = [_place(step.get(arm), f"{here}.{arm}", coupon, placed) for arm in ("then", "else")]
            going_on = [lane_coupon for lane_coupon, reaches_end in lanes if reaches_end]
            if not going_on:
                return coupon, False
            # After the branch, a coupon reaches only if every lane that goes on issued one.
            coupon = going_on[0] if all(going_on) else None
    return coupon, True


# --- The review --------------------------------------------------------------------------


class _Review:
    def __init__(self, definition, activity, now):
        self.definition, self.activity, self.now = definition, activity, now
        self.trigger = _dict(definition.get("trigger"))
        self.kind = self.trigger.get("type")
        self.placed = placed_steps(definition.get("steps"))
        self._known_events = None
        self._stored_events = {}  # name: whether one was ever stored
        self._event_properties = None
        self._sample_customer = None

    # trigger, goal, wait for event: an event nobody sends --------------------------------

    def event_trigger(self):
        if self.kind == TriggerType.EVENT:
            yield from self._unknown_event("trigger", self.trigger.get("event"), "so this activity would never start")

    def goal(self):
        goal = _dict(self.definition.get("goal"))
        if goal.get("event"):
            yield from self._unknown_event("goal", goal["event"], "so no one would ever reach this goal")

    def _unknown_event(self, where, name, consequence):
        if not isinstance(name, str) or name in vocabulary.signal_event_names():
            return
        if name not in self._stored_events:
            self._stored_events[name] = vocabulary.event_was_ever_stored(name)
        if self._stored_events[name]:
            return
        if self._known_events is None:
            self._known_events = [event.name for event in vocabulary.known_events(now=self.now)]
        closest = difflib.get_close_matches(name, self._known_events, n=3, cutoff=0.75)
        text = f'Nothing on this site has ever sent the event "{_shown(name)}", {consequence}.'
        if closest:
            text += " Did you mean " + " or ".join(f'"{one}"' for one in closest) + "?"
        else:
            text += " The events it sees most are " + ", ".join(f'"{one}"' for one in self._known_events[:5]) + "."
        if where == "trigger" and _DATE_LIKE_EVENT.search(name):
            text += f' Date triggers start on a customer\'s date: choose "{TriggerType.DATE.label}" instead.'
        signals = ", ".join(sorted(vocabulary.signal_event_names()))
        yield Finding(
            Level.WARNING,
            where,
            text,
            detail=(
                f"The storefront and TriggerHub send {signals}; an event your shop sends through the events API "
                "is offered once the first one is stored."
            ),
        )

    # target: an audience of no one --------------------------------------------------------

    def audience_of_no_one(self):
        target = self.definition.get("target") or []
        if conditions.problems_in(target):
            return  # the spec's to report
        if not audience.overlaps(target, [], at=self.now):
            yield Finding(
                Level.WARNING,
                "target",
                (
                    "No customer matches this target now, so nobody would get these messages; "
                    "check the conditions (the audience estimate shows what each one leaves)."
                    if target
                    else "There are no customers yet, so nobody would get these messages."
                ),
            )
            return
        field = self.trigger.get("field")
        if self.kind == TriggerType.DATE and isinstance(field, str):
            has_date = [{"field": field, "op": "gte", "value": "0001-01-01"}]
            if not conditions.problems_in(has_date) and not audience.overlaps(target, has_date, at=self.now):
                yield Finding(
                    Level.WARNING,
                    "target",
                    (
                        f"Customers match this target, but none of them has a date in {field}, so the date "
                        "trigger would never start for anyone; check the field (or fill it in for your customers)."
                    ),
                )

    # re-entry: once on a date that comes round ---------------------------------------------

    def reentry(self):
        if self.kind != TriggerType.DATE or self.definition.get("reentry") != Reentry.ONCE:
            return
        recurrence = self.trigger.get("recurrence", "yearly")
        if recurrence == "yearly":
            every = "every year"
        elif isinstance(recurrence, dict) and recurrence.get("every_months"):
            every = f"every {recurrence['every_months']} months"
        else:
            return
        yield Finding(
            Level.WARNING,
            "reentry",
            (
                f'Re-entry is "{Reentry.ONCE.label}" but the date comes round {every}: each customer would get this '
                f'only the first time. Choose "{Reentry.ALWAYS.label}" to start it {every}.'
            ),
        )

    # steps: variables, SMS length, unknown events -----------------------------------------

    def steps(self):
        contents = self._load_contents()
        readings, measured = {}, {}
        for where, step, coupon in self.placed:
            kind = step.get("type")
            if kind == "wait_for_event" and step.get("event"):
                yield from self._unknown_event(where, step["event"], "so this wait would always run to its timeout")
            if kind != "send":
                continue
            content = contents.get(_content_key(step))
            if content is None:
                continue  # the spec reports a missing template
            if content not in readings:
                readings[content] = read(content)
            reading = readings[content]
            name = _content_name(content)
            for problem in reading.problems:
                yield Finding(Level.ERROR, where, f"{name} cannot be read: {problem}; fix it on its page.")
            yield from self._variable_findings(where, name, reading.variables, coupon)
            if isinstance(content, SmsContent) and not reading.problems:
                key = (content.pk, id(coupon))
                if key not in measured:
                    measured[key] = list(self._sms_length(where, content, coupon))
                yield from (replace(finding, where=where) for finding in measured[key])

    def _load_contents(self) -> dict:
        wanted: dict[Channel, set[str]] = {Channel.EMAIL: set(), Channel.SMS: set()}
        for _, step, _ in self.placed:
            key = _content_key(step)
            if key is not None and vocabulary._storable(key[1]):
                wanted[key[0]].add(key[1])
        contents: dict[tuple[Channel, str], EmailTemplate | SmsContent] = {}
        if wanted[Channel.EMAIL]:
            for template in EmailTemplate.objects.filter(slug__in=wanted[Channel.EMAIL]).prefetch_related("variants"):
                contents[(Channel.EMAIL, template.slug)] = template
        if wanted[Channel.SMS]:
            for content in SmsContent.objects.filter(slug__in=wanted[Channel.SMS]).prefetch_related("variants"):
                contents[(Channel.SMS, content.slug)] = content
        return contents

    def _variable_findings(self, where, name, variables, coupon):
        missing = {}
        for path in sorted(variables):
            root = path.split(".")[0]
            if root not in self._provided(coupon):
                missing.setdefault(root, []).append(path)
        for root, paths in missing.items():
            used = ", ".join(f"{{{{ {path} }}}}" for path in paths)
            yield Finding(Level.ERROR, where, f"{name} uses {used}, but {self._why_not(root)}")
        yield from self._unknown_below(where, name, variables, coupon)

    def _provided(self, coupon) -> set[str]:
        provided = set(ALWAYS_PROVIDED)
        if self.kind in (TriggerType.EVENT, TriggerType.THRESHOLD):
            provided.add("event")
        if coupon is not None:
            provided.add("coupon")
        return provided

    def _why_not(self, root) -> str:
        if root == "coupon":
            return (
                'no earlier step issues a coupon, so the customer would get an empty code: add an "Issue coupon" '
                "step before this send (a coupon issued in one lane of a branch does not reach a send "
                "after the branch or in the other lane)."
            )
        if root == "event":
            return (
                "this activity starts on a customer's date, not on an event, so there is no event to "
                "read: use customer values, or start the activity on an event."
            )
        if root == "links":
            return (
                "no step of an activity provides links: write the address in full, starting with "
                "{{ site.url }}, e.g. {{ site.url }}/cart/."
            )
        provided = sorted(self._provided(object()) | {"coupon"})
        [closest] = difflib.get_close_matches(root, provided, n=1, cutoff=0.6) or [None]
        hint = f"; did you mean {closest}?" if closest else f"; messages can use {', '.join(provided)}."
        return f"no earlier step provides '{_shown(root)}'{hint}"

    def _unknown_below(self, where, name, variables, coupon):
        """Names below a provided variable that it does not have (customer.frist_name, a property
        the trigger's events never carry)."""
        provided = self._provided(coupon)
        for path in sorted(variables):
            lookups = path.split(".")
            if lookups[0] not in provided:
                continue
            if lookups[0] == "event" and len(lookups) > 1:
                yield from self._unknown_event_value(where, name, path, lookups[1])
                continue
            problem = rendering._unknown_variable(tuple(lookups), frozenset())
            if problem:
                yield Finding(Level.ERROR, where, f"{name}: {problem}")

    def _unknown_event_value(self, where, name, path, key):
        if self.kind == TriggerType.THRESHOLD:
            if key not in THRESHOLD_EVENT_NAMES:
                yield Finding(
                    Level.ERROR,
                    where,
                    (
                        f"{name} uses {{{{ {path} }}}}, but a threshold crossing has only "
                        f"{', '.join(f'event.{one}' for one in sorted(THRESHOLD_EVENT_NAMES))}."
                    ),
                )
            return
        properties = self._trigger_event_properties()
        if properties and key not in properties:
            [closest] = difflib.get_close_matches(key, sorted(properties), n=1, cutoff=0.6) or [None]
            hint = f" Did you mean event.{closest}?" if closest else f" They carry {', '.join(sorted(properties))}."
            yield Finding(
                Level.WARNING,
                where,
                (
                    f'{name} uses {{{{ {path} }}}}, but none of the latest "{_shown(self.trigger.get("event"))}" '
                    f"events stored here has '{_shown(key)}', so it would print nothing.{hint}"
                ),
            )

    def _trigger_event_properties(self) -> set[str]:
        """The property names the trigger's latest stored events carry, with name and occurred_at
        (empty when none is stored: then nothing can be said)."""
        if self._event_properties is None:
            name = self.trigger.get("event")
            stored = (
                list(
                    Event.objects.filter(name=name)
                    .order_by("-pk")
                    .values_list("properties", flat=True)[:EVENT_SAMPLE_SIZE]
                )
                if isinstance(name, str) and vocabulary._storable(name)
                else []
            )
            self._event_properties = {
                key for properties in stored if isinstance(properties, dict) for key in properties
            }
            if stored:
                self._event_properties |= {"name", "occurred_at"}
        return self._event_properties

    def _sms_length(self, where, content, coupon):
        customer = self._typical_customer()
        values = rendering.values_for(customer, self._sample_context(coupon), unsubscribe_url=_sample_unsubscribe_url())
        try:
            text = rendering.render_sms(content, values, language=customer.language)
        except Exception as exc:
            yield Finding(
                Level.WARNING, where, (f"{_content_name(content)} could not be rendered for a typical customer: {exc}")
            )
            return
        report = sms.segment(text)
        if report.segments <= 1:
            return
        policy = settings.TRIGGERHUB_SMS_LONG_POLICY
        outcome = {
            sms.LongSmsPolicy.SPLIT: f"it would be sent as {report.segments} parts, each paid for",
            sms.LongSmsPolicy.TRUNCATE: "it would be cut to one SMS, losing its end",
            sms.LongSmsPolicy.REFUSE: "this site refuses SMS over one part, so it would not be sent",
        }.get(policy, f"it takes {report.segments} parts")
        limit = sms.SINGLE_LIMIT[report.encoding]
        forced = ""
        if report.non_gsm_characters:
            forced = (
                f" {_characters(report.non_gsm_characters)} forced UCS-2, where one SMS holds "
                f"{sms.SINGLE_LIMIT['UCS-2']} characters instead of {sms.SINGLE_LIMIT['GSM-7']};"
            )
        yield Finding(
            Level.WARNING,
            where,
            (
                f"{_content_name(content)} for a typical customer is {report.units} {report.encoding} characters, "
                f"more than the {limit} of one SMS:{forced} {outcome}. Shorten the text"
                + (" or replace those characters." if report.non_gsm_characters else ".")
            ),
            detail=_sms_detail(text, report, customer, policy),
        )

    def _typical_customer(self) -> Customer:
        """A sample customer with the language and country most of the latest customers have,
        a first name of SAMPLE_FIRST_NAME's length, and the attributes one of them has."""
        if self._sample_customer is None:
            pairs = Counter(
                Customer.objects.order_by("-pk").values_list("language", "country")[: vocabulary.SAMPLE_SIZE]
            )
            language, country = pairs.most_common(1)[0][0] if pairs else ("", "")
            attributes = (
                (
                    Customer.objects.filter(language=language, country=country)
                    .order_by("-pk")
                    .values_list("attributes", flat=True)
                    .first()
                )
                if pairs
                else {}
            )
            self._sample_customer = Customer(
                first_name=SAMPLE_FIRST_NAME,
                last_name="Martin",
                email="christophe.martin@example.com",
                phone="+12025550143",
                language=language,
                country=country,
                attributes=attributes if isinstance(attributes, dict) else {},
            )
        return self._sample_customer

    def _sample_context(self, coupon) -> dict:
        context = {}
        if self.kind == TriggerType.EVENT:
            name = self.trigger.get("event")
            latest = (
                Event.objects.filter(name=name).order_by("-pk").first()
                if isinstance(name, str) and vocabulary._storable(name)
                else None
            )
            context["event"] = event_values(latest) if latest else {"name": name, "occurred_at": self.now}
        elif self.kind == TriggerType.THRESHOLD:
            context["event"] = {
                "name": "threshold_crossed",
                "occurred_at": self.now,
                "field": self.trigger.get("field"),
                "value": self.trigger.get("value"),
                "line": self.trigger.get("value"),
                "direction": self.trigger.get("direction", "up"),
            }
        if coupon is not None:
            prefix = coupon.get("prefix") if isinstance(coupon.get("prefix"), str) else ""
            valid_days = coupon.get("valid_days")
            context["coupon"] = {
                "code": f"{prefix}-{SAMPLE_COUPON_CODE}" if prefix else SAMPLE_COUPON_CODE,
                "percent_off": coupon.get("percent_off"),
                "amount_off": coupon.get("amount_off"),
                "expires_at": self.now + timedelta(days=valid_days) if isinstance(valid_days, int) else None,
            }
        return context

    # overlap: another active activity on the same trigger and channel ----------------------

    def overlap(self):
        same = _same_trigger(self.trigger)
        if same is None:
            return
        channels = _channels(self.placed)
        if not channels:
            return
        others = Activity.objects.filter(same, status=ActivityStatus.ACTIVE).order_by("name")
        if self.activity is not None and self.activity.pk is not None:
            others = others.exclude(pk=self.activity.pk)
        target = self.definition.get("target") or []
        asked = 0
        for other in others:
            if _trigger_key(other.trigger) != _trigger_key(self.trigger):
                continue
            shared = channels & _channels(placed_steps(other.steps))
            if not shared:
                continue
            if asked == OVERLAPS_ASKED:
                yield Finding(
                    Level.WARNING,
                    "trigger",
                    (
                        f"More than {OVERLAPS_ASKED} active activities start on {_trigger_words(self.trigger)} and send "
                        f"on the same channel; only the first {OVERLAPS_ASKED} were checked for shared customers."
                    ),
                )
                return
            asked += 1
            if not audience.overlaps(target, other.target or [], at=self.now):
                continue
            what = " and ".join(Channel(channel).label for channel in sorted(shared))
            kept_apart = (
                " (their event conditions may still keep them apart)"
                if self.trigger.get("where") or other.trigger.get("where")
                else ""
            )
            yield Finding(
                Level.WARNING,
                "trigger",
                (
                    f'The active activity "{other.name}" also starts on {_trigger_words(self.trigger)} and sends '
                    f"{what} to some of the same customers{kept_apart}: they would get both. Narrow one of the "
                    "targets, or pause one of them."
                ),
            )


def _content_key(step):
    """(channel, slug) of a send step's template or SMS content, or None."""
    if step.get("type") != "send":
        return None
    channel = step.get("channel")
    slug = step.get("template") if channel == Channel.EMAIL else step.get("content") if channel == Channel.SMS else None
    return (Channel(channel), slug) if isinstance(slug, str) else None


def _channels(placed) -> set:
    return {key[0] for key in map(_content_key, (step for _, step, _ in placed)) if key is not None}


def _same_trigger(trigger):
    """A filter for the activities whose trigger starts on the same thing (a first cut in SQL)."""
    kind = trigger.get("type")
    if kind == TriggerType.EVENT and isinstance(trigger.get("event"), str) and vocabulary._storable(trigger["event"]):
        return Q(trigger_event=trigger["event"])
    if (
        kind in (TriggerType.DATE, TriggerType.THRESHOLD)
        and isinstance(trigger.get("field"), str)
        and vocabulary._storable(trigger["field"])
    ):
        return Q(trigger__type=kind, trigger__field=trigger["field"])
    return None


def _trigger_key(trigger):
    trigger = _dict(trigger)
    kind = trigger.get("type")
    return (kind, trigger.get("event") if kind == TriggerType.EVENT else trigger.get("field"))


def _trigger_words(trigger) -> str:
    if trigger.get("type") == TriggerType.EVENT:
        return f'the event "{_shown(trigger.get("event"))}"'
    if trigger.get("type") == TriggerType.DATE:
        return f"the customer's date {trigger.get('field')}"
    return f"{trigger.get('field')} crossing a line"


# --- Words --------------------------------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _shown(text) -> str:
    """``text`` as a page can show it: a lone surrogate or NUL as its escape, at most 100 characters."""
    text = str(text)
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return shown if len(shown) <= 100 else shown[:99] + "…"


def _content_name(content) -> str:
    kind = "The e-mail template" if isinstance(content, EmailTemplate) else "The SMS content"
    return f'{kind} "{content.slug}"'


def _characters(characters) -> str:
    """'😀' as '"😀" (U+1F600)', for each character, in words."""
    named = [f'"{character}" (U+{ord(character):04X})' for character in characters[:10]]
    more = f" and {len(characters) - 10} more" if len(characters) > 10 else ""
    return ("The character " if len(characters) == 1 else "The characters ") + ", ".join(named) + more


def _sms_detail(text, report, customer, policy) -> str:
    parts = "\n".join(f"Part {number}: {part}" for number, part in enumerate(report.parts, 1))
    forced = f"\nForced UCS-2: {_characters(report.non_gsm_characters)}." if report.non_gsm_characters else ""
    return (
        f"Rendered for a sample customer named {customer.first_name} (language {customer.language or 'default'}, "
        f"country {customer.country or 'none'}), with a sample coupon code where one is issued:\n{text}\n\n"
        f"{report.units} {report.encoding} characters in {report.segments} parts "
        f"(TRIGGERHUB_SMS_LONG_POLICY is {policy}).{forced}\n{parts}"
    )


def _sample_unsubscribe_url() -> str:
    """An unsubscribe address as long as a real one (a signed token for a seven-digit message)."""
    try:
        return unsubscribe.unsubscribe_url(Message(pk=1_234_567, customer_id=1_234_567, channel=Channel.SMS))
    except Exception:  # the site's address not configured yet: the operator's to fix, not the activity's
        return ""
