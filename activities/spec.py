"""Activity files: an activity written as JSON or YAML, checked as a whole, loaded, exported.

``load(data)`` refuses an invalid file with every problem listed (``SpecError``);
``dump(activity)`` writes what ``load`` reads. docs/activities.md, "Activity files", documents the format.
"""

import re

from django.db import transaction
from django.utils.dateparse import parse_datetime

from messaging.policy import SendRules

from . import conditions, engine, steps
from .models import VERSIONED_FIELDS, Activity, ActivityStatus, Reentry, TriggerType

#: Keys of a file beyond the versioned definition.
_DESCRIPTIVE = ("name", "description", "status", "priority", "starts_at", "ends_at")
_KNOWN = {*_DESCRIPTIVE, "category", "trigger", "target", "goal", "steps", "send_rules", "reentry"}
_DATE_FIELD = re.compile(r"^(date_of_birth|attributes\.[A-Za-z_][\w.]*)$")
_THRESHOLD_FIELD = re.compile(r"^(attributes\.[A-Za-z_][\w.]*|events\.[a-z_][\w]*\.count|messages\.failed\.count)$")


class SpecError(ValueError):
    """An activity file that cannot be loaded; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


#: The keys each trigger type reads.
TRIGGER_KEYS: dict[str, set[str]] = {
    TriggerType.EVENT: {"event", "where"},
    TriggerType.DATE: {"field", "offset_days", "recurrence", "at"},
    TriggerType.THRESHOLD: {"field", "value", "direction", "days"},
}


def trigger_problems(trigger) -> list[str]:
    if not isinstance(trigger, dict):
        return ["trigger must be an object with a type: event, date or threshold"]
    kind = trigger.get("type")
    keys = TRIGGER_KEYS.get(kind) if isinstance(kind, str) else None  # a list or an object is no type
    unknown = sorted(set(trigger) - keys - {"type"}) if keys is not None else []
    if keys is not None and unknown:
        return [
            f"trigger: a {kind} trigger does not take {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(sorted(keys))}"
        ] + _trigger_problems(trigger, kind)
    return _trigger_problems(trigger, kind)


def _trigger_problems(trigger, kind) -> list[str]:
    if kind == TriggerType.EVENT:
        problems = (
            []
            if isinstance(trigger.get("event"), str) and trigger["event"]
            else ['trigger: name the event, e.g. "event": "cart_updated"']
        )
        return problems + [f"trigger.where: {p}" for p in conditions.event_condition_problems(trigger.get("where", []))]
    if kind == TriggerType.DATE:
        return _date_trigger_problems(trigger)
    if kind == TriggerType.THRESHOLD:
        return _threshold_trigger_problems(trigger)
    return [f"trigger.type must be event, date or threshold, not {kind!r}"]


def _date_trigger_problems(trigger) -> list[str]:
    problems = []
    if not isinstance(trigger.get("field"), str) or not _DATE_FIELD.match(trigger["field"]):
        problems.append("trigger.field must be date_of_birth or attributes.<name>, e.g. attributes.delivery_date")
    offset = trigger.get("offset_days", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > 3_650:
        problems.append(
            "trigger.offset_days must be a whole number of days (-7 = a week before), at most 3650 either way"
        )
    recurrence = trigger.get("recurrence", "yearly")
    if recurrence not in ("yearly", "once") and not (
        isinstance(recurrence, dict)
        and isinstance(recurrence.get("every_months"), int)
        and not isinstance(recurrence["every_months"], bool)
        and 0 < recurrence["every_months"] <= 120
    ):
        problems.append('trigger.recurrence must be "yearly", "once" or {"every_months": N} with N from 1 to 120')
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", str(trigger.get("at", "10:00"))):
        problems.append(f"trigger.at must be a local time such as 10:00, not {trigger.get('at')!r}")
    return problems


def _threshold_trigger_problems(trigger) -> list[str]:
    problems = []
    if not isinstance(trigger.get("field"), str) or not _THRESHOLD_FIELD.match(trigger["field"]):
        problems.append(
            "trigger.field must be attributes.<name> (a number), events.<name>.count or messages.failed.count"
        )
    if not isinstance(trigger.get("value"), (int, float)) or isinstance(trigger.get("value"), bool):
        problems.append("trigger.value must be a number (the line to cross)")
    if trigger.get("direction", "up") not in ("up", "down"):
        problems.append("trigger.direction must be up or down")
    if "days" in trigger and not (isinstance(trigger["days"], int) and trigger["days"] > 0):
        problems.append("trigger.days must be a whole number of days above zero")
    return problems


def definition_problems(definition: dict) -> list[str]:
    """Every problem of a definition (the versioned part of an activity)."""
    problems = trigger_problems(definition.get("trigger") or {})
    problems += [f"target: {p}" for p in conditions.problems_in(definition.get("target") or [])]
    goal = definition.get("goal") or {}
    if goal:
        if not isinstance(goal, dict) or not isinstance(goal.get("event"), str):
            problems.append('goal must be an object naming an event, e.g. {"event": "order_placed"}')
        else:
            problems += [f"goal.where: {p}" for p in conditions.event_condition_problems(goal.get("where", []))]
    if not definition.get("steps"):
        problems.append("steps: give at least one step")
    else:
        problems += steps.problems_in(definition["steps"])
    problems += [f"send_rules: {p}" for p in SendRules.problems_in(definition.get("send_rules") or {})]
    if definition.get("category") not in ("marketing", "transactional"):
        problems.append(f"category must be marketing or transactional, not {definition.get('category')!r}")
    if definition.get("reentry") not in Reentry.values:
        problems.append(f"reentry.policy must be one of {', '.join(Reentry.values)}")
    elif definition["reentry"] == Reentry.AFTER_DAYS and not (
        isinstance(definition.get("reentry_days"), int) and definition["reentry_days"] > 0
    ):
        problems.append("reentry: after_days needs days, a whole number above zero")
    return problems


def _fields_from(data) -> tuple[dict, list[str]]:
    if not isinstance(data, dict):
        return {}, ["an activity file holds one object"]
    problems = [f"unknown key {key!r}" for key in data if key not in _KNOWN]
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        problems.append("name: give the activity a name")
    reentry = data.get("reentry", {"policy": "once"})
    if isinstance(reentry, str):
        reentry = {"policy": reentry}
    if not isinstance(reentry, dict):
        problems.append('reentry must be an object, e.g. {"policy": "after_days", "days": 30}')
        reentry = {}
    status = data.get("status", ActivityStatus.ACTIVE)
    if status not in ActivityStatus.values:
        problems.append(f"status must be one of {', '.join(ActivityStatus.values)}")
    if not isinstance(data.get("description", ""), str):
        problems.append("description must be text")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems.append(f"priority must be a whole number (higher runs first), not {priority!r}")
    starts_at, ends_at = _moment(data, "starts_at", problems), _moment(data, "ends_at", problems)
    if starts_at and ends_at and ends_at <= starts_at:
        problems.append("ends_at must be after starts_at")
    fields = {
        "name": data.get("name", ""),
        "description": data.get("description", ""),
        "status": status,
        "priority": priority,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "category": data.get("category", "marketing"),
        "trigger": data.get("trigger") or {},
        "target": data.get("target") or [],
        "goal": data.get("goal") or {},
        "steps": data.get("steps") or [],
        "send_rules": data.get("send_rules") or {},
        "reentry": reentry.get("policy", "once"),
        "reentry_days": reentry.get("days"),
    }
    return fields, problems


def _moment(data, key, problems):
    value = data.get(key)
    if value is None:
        return None
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problems.append(
            f"{key} must be an ISO 8601 time with its offset, e.g. 2026-05-01T10:00:00+02:00, not {value!r}"
        )
        return None
    return moment


def problems_in(data) -> list[str]:
    """Every problem of an activity file, without loading it."""
    fields, problems = _fields_from(data)
    if fields:
        problems += definition_problems(
            {
                key: fields[key]
                for key in ("category", "trigger", "target", "goal", "steps", "send_rules", "reentry", "reentry_days")
            }
        )
    return problems


def definition_of(data) -> dict:
    """The versioned part of an activity file (what ``Activity.definition()`` holds), read as ``load`` reads it."""
    fields, _ = _fields_from(data)
    return {key: fields[key] for key in VERSIONED_FIELDS}


@transaction.atomic
def load(data) -> Activity:
    """Create or update (by name) the activity ``data`` describes; refuse it whole if anything is wrong.

    Updating an activity that runs creates a new version; its running enrollments
    finish on the version they started on.
    """
    problems = problems_in(data)
    if problems:
        raise SpecError(problems)
    fields, _ = _fields_from(data)
    activity = Activity.objects.filter(name=fields["name"]).first() or Activity(name=fields["name"])
    status = fields.pop("status")
    if activity.pk is None:
        activity.status = status
    elif "status" not in data:
        status = activity.status  # a file without a status leaves the activity's as it is
    for name, value in fields.items():
        setattr(activity, name, value)
    activity.save()
    if status != activity.status:
        _change_status(activity, status)
    return activity


def _change_status(activity, status) -> None:
    """As the admin's actions do: pausing holds enrollments and unsent messages, resuming
    releases them, ending exits them and cancels the messages."""
    if status == ActivityStatus.PAUSED and activity.status == ActivityStatus.ACTIVE:
        engine.pause(activity)
    elif status == ActivityStatus.ACTIVE and activity.status == ActivityStatus.PAUSED:
        engine.resume(activity)
    elif status == ActivityStatus.ENDED:
        engine.end(activity)
    else:
        Activity.objects.filter(pk=activity.pk).update(status=status)
        activity.status = status


def dump(activity) -> dict:
    """The activity as a file ``load`` reads back."""
    data = {
        "name": activity.name,
        "description": activity.description,
        "status": activity.status,
        "category": activity.category,
        "priority": activity.priority,
        "trigger": activity.trigger,
        "target": activity.target,
        "goal": activity.goal,
        "reentry": {"policy": activity.reentry, **({"days": activity.reentry_days} if activity.reentry_days else {})},
        "send_rules": activity.send_rules,
        "steps": activity.steps,
    }
    if activity.starts_at:
        data["starts_at"] = activity.starts_at.isoformat()
    if activity.ends_at:
        data["ends_at"] = activity.ends_at.isoformat()
    return {key: value for key, value in data.items() if value not in ({}, [], "", None) or key == "steps"}
