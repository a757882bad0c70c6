"""The activity builder: an activity's definition as blocks a marketer fills in with choices,
and the definition back from what the page posts.

``Builder.from_definition(definition)`` gives the blocks the change page shows, top to
bottom: *When* (the trigger), *Who* (the target), the steps in order (a branch as two
lanes), the *Goal* and the send rules. ``Builder.from_post(data)`` reads the same blocks
back from the page's fields, and ``definition()`` gives what activities/spec.py checks and
``Activity`` keeps, with ``problems`` for what the marketer typed that cannot be read
(a discount of "ten", a cap of 1.5 messages). The palette's buttons post ``_builder``
(add a step, move it, remove it, add a condition or a cap row); ``apply()`` changes the
blocks only, and nothing is saved until the marketer saves.

A definition the blocks cannot show exactly (a target with groups inside groups, written
in a file) is kept as it is and shown in words; the advanced view edits it.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import conditions
from .steps import STEPS

#: Step types in the palette's order, with the words it shows.
STEP_LABELS = {
    "send": "Send a message",
    "wait": "Wait",
    "wait_until": "Wait until a date",
    "wait_for_event": "Wait for an event",
    "branch": "Branch (if / else)",
    "issue_coupon": "Issue a coupon",
    "add_to_segment": "Add to a segment",
    "remove_from_segment": "Remove from a segment",
    "exit": "Exit",
}
assert set(STEP_LABELS) == set(STEPS), "every step type has its palette words"

UNITS = ("days", "hours", "minutes")
#: The longest a wait, a timeout or an offset may be, per unit: ten years.
LONGEST = {"days": 3_650, "hours": 87_600, "minutes": 5_256_000}
#: Text the marketer typed is a number exactly when the conditions would read it as one.
_NUMBER = re.compile(conditions.NUMBER_TEXT)
#: Fields of the condition language whose values are numbers or dates (others are text).
NUMBER_FIELDS = ("age", "orders.count", "orders.total", "events.<name>.count", "events.<name>.sum.<property>")
DATE_FIELDS = ("date_of_birth", "created_at")
TRUE_FALSE_OPS = ("is", "exists")
LIST_OPS = ("in", "not_in")


def number(text, what, problems, *, whole=False, required=True, most=None, least=None):
    """``text`` as an int (or a float with ``whole=False``), or None with a problem in words;
    ``most``/``least`` bound it (a wait of a million years is a typo, not a plan)."""
    text = (text or "").strip().replace(",", ".") if isinstance(text, str) else text
    if text in ("", None):
        if required:
            problems.append(f"{what}: give a number")
        return None
    if not isinstance(text, str) or not _NUMBER.match(text):
        problems.append(f"{what}: {str(text)[:40]!r} is not a number; write digits, e.g. 10")
        return None
    value = float(text)
    if most is not None and abs(value) > most:
        problems.append(f"{what}: at most {most:,}, not {text}")
        return None
    if least is not None and value < least:
        problems.append(f"{what}: at least {least:,}, not {text}")
        return None
    if whole or value == int(value):
        if value != int(value):
            problems.append(f"{what}: give a whole number, not {text}")
            return None
        return int(value)
    return value


def plain(value) -> str:
    """A value as the text a field shows for it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


# --- conditions as rows ------------------------------------------------------------------


@dataclass
class Row:
    """One condition: field (as conditions.FIELDS writes it), the names it needs, op, value."""

    field: str = ""
    name: str = ""
    prop: str = ""
    op: str = "eq"
    value: str = ""
    negate: bool = False

    @property
    def path(self) -> str:
        """The field as the condition language writes it: attributes.tier, events.order_placed.count."""
        return _join_field(self)


@dataclass
class Group:
    """Condition rows that must all hold, or any of them; ``kept`` holds a target rows cannot show."""

    prefix: str
    scope: str = "customer"
    match: str = "all"
    rows: list = field(default_factory=list)
    kept: Any = None  # the conditions as read (any JSON value), when rows cannot show them

    @property
    def fields(self):
        return conditions.EVENT_FIELDS if self.scope == "event" else conditions.FIELDS

    @classmethod
    def from_conditions(cls, prefix, value, scope="customer") -> "Group":
        group = cls(prefix, scope)
        value = value or []
        leaves = value
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and set(value[0]) == {"any"}:
            group.match, leaves = "any", value[0]["any"]
        rows = [_row_of(leaf) for leaf in leaves] if isinstance(leaves, list) else [None]
        if any(row is None for row in rows):
            group.kept = value
            return group
        group.rows = rows
        problems: list[str] = []
        if group.conditions("", problems) != value or problems:
            # Rows would read it back otherwise (a value with a comma in a list): kept as it is.
            group.rows, group.match, group.kept = [], "all", value
        return group

    def unkeep(self) -> None:
        """Edit kept conditions as rows anyway: what rows cannot show is dropped (the marketer asked)."""
        if self.kept is None:
            return
        leaves = self.kept
        if isinstance(leaves, list) and len(leaves) == 1 and isinstance(leaves[0], dict) and set(leaves[0]) == {"any"}:
            self.match, leaves = "any", leaves[0]["any"]
        self.rows = [row for row in (_row_of(leaf) for leaf in leaves if isinstance(leaves, list)) if row is not None]
        self.kept = None

    @classmethod
    def from_post(cls, prefix, data, scope="customer") -> "Group":
        group = cls(prefix, scope, match=data.get(f"{prefix}-match") or "all")
        kept = data.get(f"{prefix}-kept")
        if kept:
            try:
                return cls.from_conditions(prefix, json.loads(kept), scope)
            except ValueError:
                pass
        for index in data.getlist(f"{prefix}-row"):
            key = f"{prefix}-{index}"
            group.rows.append(
                Row(
                    field=data.get(f"{key}-field", ""),
                    name=data.get(f"{key}-name", "").strip(),
                    prop=data.get(f"{key}-prop", "").strip(),
                    op=data.get(f"{key}-op", "eq"),
                    value=", ".join(data.getlist(f"{key}-value")),
                    negate=bool(data.get(f"{key}-negate")),
                )
            )
        return group

    def conditions(self, where, problems) -> list:
        if self.kept is not None:
            return self.kept
        leaves = []
        for number_, row in enumerate(self.rows, 1):
            leaf = _leaf_of(row, f"{where}, condition {number_}", problems)
            if leaf is not None:
                leaves.append({"not": leaf} if row.negate else leaf)
        if self.match == "any" and leaves:
            return [{"any": leaves}]
        return leaves

    def describe(self) -> str:
        problems: list[str] = []
        return conditions.describe(self.conditions("", problems)) if not problems else "(being edited)"

    def kept_json(self) -> str:
        return json.dumps(self.kept, ensure_ascii=False) if self.kept is not None else ""


def _row_of(leaf) -> Row | None:
    negate = False
    if isinstance(leaf, dict) and set(leaf) == {"not"} and isinstance(leaf["not"], dict):
        negate, leaf = True, leaf["not"]
    if not isinstance(leaf, dict) or "field" not in leaf or set(leaf) - {"field", "op", "value", "days"}:
        return None
    if "days" in leaf:
        return None  # a window on an orders/events field: rows do not show it; kept whole
    template, name, prop = _split_field(leaf["field"])
    value = leaf.get("value")
    if isinstance(value, list):
        text = ", ".join(_value_text(one, template) for one in value)
    else:
        text = _value_text(value, template)
    return Row(field=template, name=name, prop=prop, op=leaf.get("op", "eq"), value=text, negate=negate)


def _value_text(value, template) -> str:
    if isinstance(value, str) and _inferred(template) and (_NUMBER.match(value) or value in ("true", "false")):
        return json.dumps(value)  # text that would read as a number: quoted, so it stays text
    return plain(value)


def _inferred(template) -> bool:
    return template in ("attributes.<name>", "properties.<name>")


def _split_field(path: str) -> tuple[str, str, str]:
    """``events.order_placed.sum.total`` → (``events.<name>.sum.<property>``, order_placed, total)."""
    for prefix in ("attributes.", "properties."):
        if path.startswith(prefix):
            return f"{prefix}<name>", path.removeprefix(prefix), ""
    summed = re.fullmatch(r"events\.(.+)\.sum\.([^.]+)", path)
    if summed:
        return "events.<name>.sum.<property>", summed[1], summed[2]
    counted = re.fullmatch(r"events\.(.+)\.count", path)
    if counted and path != "orders.count":
        return "events.<name>.count", counted[1], ""
    return path, "", ""


def _join_field(row: Row) -> str:
    return row.field.replace("<name>", row.name).replace("<property>", row.prop)


def _leaf_of(row: Row, where, problems) -> dict | None:
    if not row.field:
        problems.append(f"{where}: choose a field")
        return None
    if "<name>" in row.field and not row.name:
        problems.append(f"{where}: name the {row.field.split('.')[0].rstrip('s')} ({row.field})")
        return None
    if "<property>" in row.field and not row.prop:
        problems.append(f"{where}: name the property to add up")
        return None
    leaf: dict[str, Any] = {"field": _join_field(row), "op": row.op}
    template = _split_field(leaf["field"])[0]
    text = row.value.strip()
    if row.op in TRUE_FALSE_OPS:
        leaf["value"] = text.lower() != "false"
    elif row.op in LIST_OPS:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            problems.append(f"{where}: give one or more values, separated by commas")
            return None
        leaf["value"] = [_scalar(part, template, where, problems) for part in parts]
    elif row.op == "between":
        parts = [part.strip() for part in re.split(r",| and ", text) if part.strip()]
        if len(parts) != 2:
            problems.append(f"{where}: 'between' needs two values, low and high, e.g. 18, 30")
            return None
        leaf["value"] = [_scalar(part, template, where, problems) for part in parts]
    elif row.op == "contains":
        leaf["value"] = text
    else:
        leaf["value"] = _scalar(text, template, where, problems)
    return leaf


def _scalar(text, template, where, problems):
    """What the marketer typed as the value the condition language compares by."""
    if template in NUMBER_FIELDS:
        return number(text, where, problems)
    if template in DATE_FIELDS:
        return text
    if _inferred(template):
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return text[1:-1]
        if _NUMBER.match(text):
            return number(text, where, problems)
        if text in ("true", "false"):
            return text == "true"
    return text


# --- steps -------------------------------------------------------------------------------

#: What each step type's block reads from the page, beside its type and name.
STEP_FIELDS = {
    "send": ("channel", "template", "content", "category", "expires_after_hours"),
    "wait": ("amount", "unit"),
    "wait_until": ("field", "amount", "unit", "direction", "if_past"),
    "wait_for_event": ("event", "amount", "unit", "on_event", "on_timeout"),
    "branch": (),
    "issue_coupon": ("kind", "value", "pool", "valid_days", "prefix"),
    "add_to_segment": ("segment",),
    "remove_from_segment": ("segment",),
    "exit": ("note",),
}


@dataclass
class StepBlock:
    id: int
    type: str
    values: dict = field(default_factory=dict)
    lanes: dict = field(default_factory=dict)  # "then"/"else" → [StepBlock] for a branch
    condition: Group | None = None  # a branch's "if"
    kept: dict | None = None  # a step the block cannot show exactly, kept as it is

    @property
    def kept_json(self) -> str:
        return json.dumps(self.kept, ensure_ascii=False) if self.kept is not None else ""

    @property
    def label(self) -> str:
        return STEP_LABELS.get(self.type, self.type)


def _step_values(step: dict) -> dict:
    kind = step.get("type")
    values = {"name": step.get("name", "")}
    if kind == "send":
        values.update(
            channel=step.get("channel", "email"),
            template=step.get("template", ""),
            content=step.get("content", ""),
            category=step.get("category", ""),
            expires_after_hours=plain(step.get("expires_after_hours")),
        )
    elif kind == "wait":
        values.update(_amount_of(step, ""))
    elif kind == "wait_until":
        amount = _amount_of(step, "offset_")
        signed = float(amount["amount"] or 0)
        values.update(
            field=step.get("field", ""),
            unit=amount["unit"],
            amount=plain(abs(signed)) if signed else "",
            direction="before" if signed < 0 else "after",
            if_past=step.get("if_past", "continue"),
        )
    elif kind == "wait_for_event":
        values.update(
            event=step.get("event", ""),
            **_amount_of(step, "timeout_"),
            on_event=step.get("on_event", "continue"),
            on_timeout=step.get("on_timeout", "continue"),
        )
    elif kind == "issue_coupon":
        coupon_kind = "pool" if "pool" in step else "amount" if "amount_off" in step else "percent"
        values.update(
            kind=coupon_kind,
            value=plain(step.get("percent_off", step.get("amount_off"))),
            pool=step.get("pool", ""),
            valid_days=plain(step.get("valid_days")),
            prefix=step.get("prefix", ""),
        )
    elif kind in ("add_to_segment", "remove_from_segment"):
        values.update(segment=step.get("segment", ""))
    elif kind == "exit":
        values.update(note=step.get("note", ""))
    return values


def _amount_of(step, prefix) -> dict:
    for unit in UNITS:
        if f"{prefix}{unit}" in step:
            return {"amount": plain(step[f"{prefix}{unit}"]), "unit": unit}
    return {"amount": "", "unit": "days"}


def _step_of(block: StepBlock, where, problems) -> dict:
    if block.kept is not None:
        return json.loads(json.dumps(block.kept))  # a copy: the definition is not the page's
    values, kind = block.values, block.type
    step: dict[str, Any] = {"type": kind}
    if values.get("name", "").strip():
        step["name"] = values["name"].strip()
    here = f"{where} ({block.label.lower()})"
    if kind == "send":
        step["channel"] = values.get("channel") or "email"
        slot = "template" if step["channel"] == "email" else "content"
        if not values.get(slot):
            problems.append(f"{here}: choose the {'e-mail template' if slot == 'template' else 'SMS content'} to send")
        step[slot] = values.get(slot, "")
        if values.get("category"):
            step["category"] = values["category"]
        hours = number(
            values.get("expires_after_hours"),
            f"{here}, expires after hours",
            problems,
            required=False,
            most=LONGEST["hours"],
            least=1,
        )
        if hours is not None:
            step["expires_after_hours"] = hours
    elif kind == "wait":
        amount = number(values.get("amount"), f"{here}, how long", problems, most=LONGEST[_unit(values)])
        if amount is not None:
            step[_unit(values)] = amount
    elif kind == "wait_until":
        step["field"] = values.get("field", "").strip()
        amount = number(values.get("amount"), f"{here}, offset", problems, required=False, most=LONGEST[_unit(values)])
        if amount:
            step[f"offset_{_unit(values)}"] = -amount if values.get("direction") == "before" else amount
        if values.get("if_past") == "exit":
            step["if_past"] = "exit"
    elif kind == "wait_for_event":
        step["event"] = values.get("event", "").strip()
        amount = number(values.get("amount"), f"{here}, how long to wait", problems, most=LONGEST[_unit(values)])
        if amount is not None:
            step[f"timeout_{_unit(values)}"] = amount
        for path in ("on_event", "on_timeout"):
            if values.get(path) == "exit":
                step[path] = "exit"
    elif kind == "branch":
        step["if"] = block.condition.conditions(f"{here}, if", problems) if block.condition else []
        for arm in ("then", "else"):
            lane = [
                _step_of(inner, f"{where} › {'yes' if arm == 'then' else 'no'} {index}", problems)
                for index, inner in enumerate(block.lanes.get(arm, []), 1)
            ]
            if lane:  # an empty lane is no lane, as in activity files
                step[arm] = lane
    elif kind == "issue_coupon":
        coupon_kind = values.get("kind") or "percent"
        if coupon_kind == "pool":
            step["pool"] = values.get("pool", "")
            if not step["pool"]:
                problems.append(f"{here}: choose the coupon pool")
        else:
            value = number(values.get("value"), f"{here}, discount", problems, most=1_000_000_000)
            if value is not None:
                step["percent_off" if coupon_kind == "percent" else "amount_off"] = value
            if values.get("prefix", "").strip():
                step["prefix"] = values["prefix"].strip()
        days = number(
            values.get("valid_days"),
            f"{here}, valid for days",
            problems,
            whole=True,
            required=False,
            most=LONGEST["days"],
            least=1,
        )
        if days is not None:
            step["valid_days"] = days
    elif kind in ("add_to_segment", "remove_from_segment"):
        step["segment"] = values.get("segment", "")
    elif kind == "exit" and values.get("note", "").strip():
        step["note"] = values["note"].strip()
    return step


def _unit(values) -> str:
    return values.get("unit") if values.get("unit") in UNITS else "days"


# --- the whole activity ------------------------------------------------------------------

RECURRENCES = (("yearly", "every year"), ("once", "once (on the date itself)"), ("months", "every few months"))


@dataclass
class Builder:
    """The blocks of one activity's page; see the module's docstring."""

    trigger: dict = field(default_factory=dict)
    trigger_kept: dict | None = None
    trigger_where: Group = field(default_factory=lambda: Group("trigger-where", "event"))
    target: Group = field(default_factory=lambda: Group("target"))
    goal_event: str = ""
    goal_where: Group = field(default_factory=lambda: Group("goal-where", "event"))
    steps: list = field(default_factory=list)
    rules: dict = field(default_factory=dict)
    caps: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    rules_kept: dict | None = None
    next_id: int = 0
    opened: str = ""  # the block a palette button just changed: shown open

    # -- from a definition

    @classmethod
    def from_definition(cls, definition: dict) -> "Builder":
        """The blocks for ``definition``; a part they would not read back exactly is kept as it is."""
        builder = cls()
        trigger = definition.get("trigger") or {}
        builder.trigger = _trigger_values(trigger)
        builder.trigger_where = Group.from_conditions("trigger-where", trigger.get("where"), "event")
        builder.target = Group.from_conditions("target", definition.get("target"))
        goal = definition.get("goal") or {}
        builder.goal_event = goal.get("event", "")
        builder.goal_where = Group.from_conditions("goal-where", goal.get("where"), "event")
        builder.steps = [builder._block_of(step) for step in definition.get("steps") or []]
        rules = definition.get("send_rules") or {}
        window = rules.get("send_window") or {}
        builder.rules = {
            "start": window.get("start", ""),
            "end": window.get("end", ""),
            "no_weekends": bool(window.get("no_weekends")),
        }
        builder.caps = [
            {
                "channel": cap.get("channel", "sms"),
                "category": cap.get("category", "marketing"),
                "count": plain(cap.get("count")),
                "amount": plain(cap.get("days", cap.get("hours"))),
                "unit": "hours" if "hours" in cap and "days" not in cap else "days",
            }
            for cap in rules.get("caps") or []
            if isinstance(cap, dict)
        ]
        builder.regions = list(rules.get("excluded_regions") or [])
        problems: list[str] = []
        if builder._trigger(problems) != trigger or problems:
            builder.trigger_kept = trigger
        problems = []
        zones = [region for region in builder.regions if "/" in str(region)]  # the page offers areas and countries
        if builder._send_rules(problems) != rules or problems or zones:
            builder.rules_kept = rules
        return builder

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _block_of(self, step) -> StepBlock:
        step = step if isinstance(step, dict) else {}
        block = StepBlock(self._new_id(), step.get("type", "exit"), _step_values(step))
        if block.type not in STEPS:
            block.kept = step
            return block
        if block.type == "branch":
            block.condition = Group.from_conditions(f"step-{block.id}-if", step.get("if"))
            block.lanes = {arm: [self._block_of(inner) for inner in step.get(arm) or []] for arm in ("then", "else")}
        problems: list[str] = []
        if _step_of(block, "", problems) != step or problems:
            block.kept, block.lanes, block.condition = step, {}, None
        return block

    # -- from the page

    @classmethod
    def from_post(cls, data) -> "Builder":
        builder = cls()
        builder.trigger = {
            key.removeprefix("trigger-"): value
            for key, value in data.items()
            if key.startswith("trigger-") and not key.startswith("trigger-where")
        }
        builder.trigger_kept = _json_object(builder.trigger.pop("kept", ""))
        if builder.trigger.get("type") == "date":
            builder.trigger.setdefault("field", "date_of_birth")
            builder.trigger["field"] = builder.trigger["field"] or "date_of_birth"
        builder.trigger_where = Group.from_post("trigger-where", data, "event")
        builder.target = Group.from_post("target", data)
        builder.goal_event = data.get("goal-event", "").strip()
        builder.goal_where = Group.from_post("goal-where", data, "event")
        blocks, placed = {}, []
        for raw in data.getlist("step"):
            if not raw.isdigit() or raw in blocks:
                continue
            prefix = f"step-{raw}"
            kind = data.get(f"{prefix}-type", "")
            if kind not in STEPS:
                continue
            values = {"name": data.get(f"{prefix}-name", "")}
            values.update({name: data.get(f"{prefix}-{name}", "") for name in STEP_FIELDS[kind]})
            block = StepBlock(int(raw), kind, values)
            kept = _json_object(data.get(f"{prefix}-kept", ""))
            if kept is not None and kept.get("type") == kind:
                block.kept = kept
            elif kind == "branch":
                block.condition = Group.from_post(f"{prefix}-if", data)
                block.lanes = {"then": [], "else": []}
            blocks[raw] = block
            placed.append((block, data.get(f"{prefix}-parent", ""), data.get(f"{prefix}-arm", "")))
        for block, parent, arm in placed:
            owner = blocks.get(parent)
            if (
                owner is not None
                and owner is not block
                and owner.kept is None
                and owner.type == "branch"
                and arm in ("then", "else")
            ):
                owner.lanes[arm].append(block)
            else:
                builder.steps.append(block)
        reached = {id(block) for block in builder._walk()}
        # Steps whose parents point at each other (a forged post) reach no lane: they leave the
        # lanes of one another and go last.
        astray = [block for block, _, _ in placed if id(block) not in reached]
        for block in astray:
            block.lanes = {arm: [inner for inner in lane if id(inner) in reached] for arm, lane in block.lanes.items()}
        builder.steps += astray
        builder.next_id = max((int(key) for key in blocks), default=0)
        window = {name: data.get(f"rules-{name}", "").strip() for name in ("start", "end")}
        builder.rules = {**window, "no_weekends": bool(data.get("rules-no_weekends"))}
        builder.caps = [
            {name: data.get(f"cap-{index}-{name}", "") for name in ("channel", "category", "count", "amount", "unit")}
            for index in data.getlist("cap")
        ]
        builder.regions = [region for region in data.getlist("rules-regions") if region]
        builder.rules_kept = _json_object(data.get("rules-kept", ""))
        return builder

    # -- back to a definition

    def definition_parts(self) -> tuple[dict, list[str]]:
        """The trigger, target, goal, steps and send rules, and what could not be read."""
        problems: list[str] = []
        parts = {
            "trigger": self._trigger(problems),
            "target": self.target.conditions("Who", problems),
            "goal": self._goal(problems),
            "steps": [_step_of(block, f"Step {index}", problems) for index, block in enumerate(self.steps, 1)],
            "send_rules": self._send_rules(problems),
        }
        return parts, problems

    def _trigger(self, problems) -> dict:
        if self.trigger_kept is not None:
            return json.loads(json.dumps(self.trigger_kept))
        values, kind = self.trigger, self.trigger.get("type") or "event"
        if kind == "event":
            trigger = {"type": "event", "event": values.get("event", "").strip()}
            where = self.trigger_where.conditions("When, where", problems)
            return {**trigger, "where": where} if where else trigger
        if kind == "date":
            field_path = values.get("field") or "date_of_birth"
            if field_path == "attributes.<name>":
                field_path = f"attributes.{values.get('field_name', '').strip()}"
            trigger = {"type": "date", "field": field_path}
            days = number(
                values.get("offset"),
                "When, days before or after",
                problems,
                whole=True,
                required=False,
                most=LONGEST["days"],
            )
            if days is not None:
                trigger["offset_days"] = -days if values.get("direction") == "before" and days else days
            recurrence = values.get("recurrence") or "yearly"
            if recurrence == "months":
                months = number(
                    values.get("months"), "When, every how many months", problems, whole=True, least=1, most=120
                )
                trigger["recurrence"] = {"every_months": months} if months else "yearly"
            else:
                trigger["recurrence"] = recurrence
            trigger["at"] = values.get("at") or "10:00"
            return trigger
        if kind == "threshold":
            field_path = (values.get("t_field") or "attributes.<name>").replace(
                "<name>", values.get("t_name", "").strip()
            )
            trigger = {
                "type": "threshold",
                "field": field_path,
                "value": number(values.get("t_value"), "When, the line to cross", problems),
                "direction": values.get("t_direction") or "up",
            }
            days = number(
                values.get("t_days"), "When, within days", problems, whole=True, required=False, least=1, most=36_500
            )
            if days:
                trigger["days"] = days
            return trigger
        return {"type": kind}

    def hidden_trigger_values(self) -> list[tuple[str, str]]:
        """The fields of the trigger types not shown now, carried so that switching back finds them."""
        shown = TRIGGER_FIELDS.get(self.trigger.get("type") or "event", ())
        return [
            (key, value)
            for key, value in self.trigger.items()
            if key not in shown and key != "type" and isinstance(value, str)
        ]

    def _goal(self, problems) -> dict:
        if not self.goal_event:
            return {}
        where = self.goal_where.conditions("Goal, where", problems)
        return {"event": self.goal_event, **({"where": where} if where else {})}

    def _send_rules(self, problems) -> dict:
        if self.rules_kept is not None:
            return json.loads(json.dumps(self.rules_kept))
        rules: dict[str, Any] = {}
        window = {name: self.rules[name] for name in ("start", "end") if self.rules.get(name)}
        if self.rules.get("no_weekends"):
            window["no_weekends"] = True
        if window:
            rules["send_window"] = window
        caps = []
        for index, cap in enumerate(self.caps, 1):
            where = f"Send rules, cap {index}"
            unit = "hours" if cap.get("unit") == "hours" else "days"
            count = number(cap.get("count"), f"{where}, how many", problems, whole=True, most=10_000)
            amount = number(cap.get("amount"), f"{where}, per how long", problems, most=LONGEST[unit])
            if count is not None and amount is not None:
                caps.append(
                    {"channel": cap.get("channel"), "category": cap.get("category"), "count": count, unit: amount}
                )
        if caps:
            rules["caps"] = caps
        if self.regions:
            rules["excluded_regions"] = list(self.regions)
        return rules

    # -- the palette

    def apply(self, action: str) -> None:
        """Do a palette button's ``action``: ``add:<type>[:<parent id>:<arm>]``, ``up:<id>``,
        ``down:<id>``, ``remove:<id>``, ``row:<group prefix>``, ``unrow:<group prefix>:<index>``,
        ``cap``, ``uncap:<index>``, ``unkeep:<what>`` (edit a kept part here anyway: trigger,
        rules, a step's id or a group's prefix). Anything else changes nothing."""
        verb, _, rest = (action or "").partition(":")
        if verb == "add":
            kind, _, place = rest.partition(":")
            if kind not in STEPS:
                return
            block = StepBlock(self._new_id(), kind, _step_values({"type": kind}))
            if kind == "branch":
                block.condition = Group(f"step-{block.id}-if", rows=[Row()])
                block.lanes = {"then": [], "else": []}
            parent, _, arm = place.partition(":")
            lane = self._lane_of_branch(parent, arm) if parent else None
            (lane if lane is not None else self.steps).append(block)
        elif verb in ("up", "down", "remove"):
            lane, index = self._find(rest)
            if lane is None:
                return
            if verb == "remove":
                lane.pop(index)
            else:
                other = index - 1 if verb == "up" else index + 1
                if 0 <= other < len(lane):
                    lane[index], lane[other] = lane[other], lane[index]
        elif verb == "row":
            group = self._group(rest)
            if group is not None and group.kept is None:
                group.rows.append(Row())
                self.opened = "goal" if rest == "goal-where" else ""
        elif verb == "unrow":
            prefix, _, index = rest.rpartition(":")
            group = self._group(prefix)
            if group is not None and index.isdigit() and int(index) < len(group.rows):
                group.rows.pop(int(index))
        elif verb == "cap":
            self.caps.append({"channel": "sms", "category": "marketing", "count": "1", "amount": "7", "unit": "days"})
            self.opened = "rules"
        elif verb == "uncap" and rest.isdigit() and int(rest) < len(self.caps):
            self.caps.pop(int(rest))
            self.opened = "rules"
        elif verb == "unkeep":
            self._unkeep(rest)

    def _unkeep(self, what) -> None:
        if what == "trigger" and self.trigger_kept is not None:
            self.trigger = _trigger_values(self.trigger_kept)
            self.trigger_where = Group.from_conditions("trigger-where", self.trigger_kept.get("where"), "event")
            self.trigger_where.unkeep()
            self.trigger_kept = None
        elif what == "rules" and self.rules_kept is not None:
            kept = Builder.from_definition({"send_rules": self.rules_kept})
            self.rules, self.caps = kept.rules, kept.caps
            self.regions = [region for region in kept.regions if "/" not in region]  # zones: not offered here
            self.rules_kept, self.opened = None, "rules"
        elif self._group(what) is not None:
            self._group(what).unkeep()
        else:
            lane, index = self._find(what)
            if lane is not None and lane[index].kept is not None:
                step = lane[index].kept
                block = lane[index]
                block.values, block.kept = _step_values(step), None
                if block.type == "branch":
                    block.condition = Group.from_conditions(f"step-{block.id}-if", step.get("if"))
                    block.condition.unkeep()
                    block.lanes = {
                        arm: [self._block_of(inner) for inner in step.get(arm) or []] for arm in ("then", "else")
                    }

    def _walk(self, lane=None):
        for block in self.steps if lane is None else lane:
            yield block
            for inner in block.lanes.values():
                yield from self._walk(inner)

    def _lane_of_branch(self, parent, arm):
        for block in self._walk():
            if str(block.id) == parent and block.type == "branch" and block.kept is None and arm in ("then", "else"):
                return block.lanes.setdefault(arm, [])
        return None

    def _find(self, block_id):
        lanes = [self.steps] + [lane for block in self._walk() for lane in block.lanes.values()]
        for lane in lanes:
            for index, block in enumerate(lane):
                if str(block.id) == block_id:
                    return lane, index
        return None, None

    def groups(self) -> list:
        """Every group of condition rows on the page."""
        return [self.trigger_where, self.target, self.goal_where] + [
            block.condition for block in self._walk() if block.condition is not None
        ]

    def _group(self, prefix):
        return next((group for group in self.groups() if group.prefix == prefix), None)

    # -- for the page

    def step_rows(self):
        """(block, parent id, arm, depth, path) for every step, in page order: a branch, then its lanes."""

        def rows(lane, parent, arm, depth, path):
            for index, block in enumerate(lane):
                here = f"{path}.{index}" if path else f"steps.{index}"
                yield block, parent, arm, depth, here
                for inner_arm in ("then", "else"):
                    if block.type == "branch":
                        yield from rows(
                            block.lanes.get(inner_arm, []), block.id, inner_arm, depth + 1, f"{here}.{inner_arm}"
                        )

        return list(rows(self.steps, "", "", 0, ""))

    def summary(self) -> dict:
        """Each block in a line of words, for the flow at the top of the page."""
        parts, _ = self.definition_parts()
        return {
            "when": describe_trigger(parts["trigger"]),
            "who": conditions.describe(parts["target"]) if parts["target"] else "every customer",
            "goal": f"{parts['goal']['event']}" if parts["goal"] else "",
        }

    @property
    def trigger_kept_json(self) -> str:
        return json.dumps(self.trigger_kept, ensure_ascii=False) if self.trigger_kept is not None else ""

    @property
    def rules_kept_json(self) -> str:
        return json.dumps(self.rules_kept, ensure_ascii=False) if self.rules_kept is not None else ""

    @property
    def where_kept_json(self) -> str:
        """The event trigger's conditions, carried while another trigger type is shown."""
        problems: list[str] = []
        where = self.trigger_where.conditions("", problems)
        return json.dumps(where, ensure_ascii=False) if where and not problems else ""


#: The page's fields of each trigger type (names are the part after "trigger-").
TRIGGER_FIELDS = {
    "event": ("event",),
    "date": ("offset", "direction", "field", "field_name", "recurrence", "months", "at"),
    "threshold": ("t_field", "t_name", "t_direction", "t_value", "t_days"),
}


def _json_object(text):
    """A JSON object posted back by the page (a kept part), or None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _trigger_values(trigger: dict) -> dict:
    kind = trigger.get("type", "event")
    values = {"type": kind, "event": trigger.get("event", "") if kind == "event" else ""}
    if kind == "date":
        offset = trigger.get("offset_days", 0) or 0
        recurrence = trigger.get("recurrence", "yearly")
        field_path = trigger.get("field", "date_of_birth")
        values.update(
            field=field_path,
            offset=plain(abs(offset)) if "offset_days" in trigger else "",
            direction="before" if isinstance(offset, (int, float)) and offset < 0 else "after",
            at=trigger.get("at", "10:00"),
            recurrence="months" if isinstance(recurrence, dict) else recurrence,
            months=plain(recurrence.get("every_months")) if isinstance(recurrence, dict) else "",
        )
    elif kind == "threshold":
        template, name, _ = _split_field(str(trigger.get("field", "")))
        values.update(
            t_field=template,
            t_name=name,
            t_value=plain(trigger.get("value")),
            t_direction=trigger.get("direction", "up"),
            t_days=plain(trigger.get("days")),
        )
    return values


def describe_trigger(trigger: dict) -> str:
    """A trigger in words: "7 days before date of birth, every year, at 10:00 in the customer's own time zone"."""
    kind = trigger.get("type")
    if kind == "event":
        where = trigger.get("where")
        return f"the event {trigger.get('event') or '(not chosen)'}" + (
            f" where {conditions.describe(where)}" if where else ""
        )
    if kind == "date":
        offset = trigger.get("offset_days") or 0
        day = (
            f"{abs(offset)} day{'s' if abs(offset) != 1 else ''} {'before' if offset < 0 else 'after'} "
            if offset
            else "on "
        )
        recurrence = trigger.get("recurrence", "yearly")
        every = (
            "every year"
            if recurrence == "yearly"
            else "once"
            if recurrence == "once"
            else f"every {recurrence.get('every_months')} months"
            if isinstance(recurrence, dict)
            else ""
        )
        return (
            f"{day}the customer's {trigger.get('field', '').replace('_', ' ')}, {every}, "
            f"at {trigger.get('at', '10:00')} in the customer's own time zone"
        )
    if kind == "threshold":
        direction = "rises to" if trigger.get("direction", "up") == "up" else "falls below"
        return f"{trigger.get('field')} {direction} {plain(trigger.get('value'))}"
    return "(choose what starts it)"
