"""The activity's change page as a builder: the form behind it, the palette's round trips,
the live audience estimate, and what each send step's content looks like.

The form keeps the admin's own machinery (permissions, history, "Save and continue"):
its model fields are the descriptive ones (name, category, re-entry...), and the builder's
blocks (activities/builder.py) become the trigger, target, goal, steps and send rules in
``clean()``. Every problem the spec or the checks (activities/review.py) find stops the
save, written for a person ("Step 2 (send a message): ..."); warnings are shown on the page
and must be confirmed to activate.
"""

import re
import time

import pytz
from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.forms.utils import ErrorDict
from django.http import Http404, HttpResponse
from django.template.loader import render_to_string

from customers import storable_json
from customers.models import Segment
from messaging import sms
from messaging.models import EmailTemplate, SmsContent

from . import audience, conditions, review, spec, vocabulary
from .builder import RECURRENCES, STEP_LABELS, UNITS, Builder, plain
from .models import Activity, CouponPool

#: What a new activity starts from: an event trigger and one e-mail, as a marketer would begin.
NEW_DEFINITION = {
    "category": "marketing",
    "trigger": {"type": "event", "event": ""},
    "target": [],
    "goal": {},
    "steps": [],
    "send_rules": {},
    "reentry": "once",
    "reentry_days": None,
}


class ActivityForm(forms.ModelForm):
    confirm_warnings = forms.BooleanField(
        required=False,
        label="I have read the warnings and want to activate it anyway",
    )

    class Meta:
        model = Activity
        fields = ("name", "description", "category", "priority", "reentry", "reentry_days", "starts_at", "ends_at")
        labels = {"reentry": "Re-entry", "reentry_days": "Re-entry after days"}

    def __init__(self, *args, builder=None, refresh=False, **kwargs):
        super().__init__(*args, **kwargs)
        if builder is None:
            builder = (
                Builder.from_post(self.data)
                if self.is_bound
                else Builder.from_definition(self.instance.definition() if self.instance.pk else NEW_DEFINITION)
            )
        self.builder = builder
        self.findings = []
        self.block_problems = {}
        if refresh:  # a palette round trip: show the blocks, judge nothing yet
            self._errors, self.cleaned_data = ErrorDict(), {}

    @property
    def warnings(self):
        return [finding for finding in self.findings if finding.level == "warning"]

    def clean(self):
        cleaned = super().clean()
        parts, problems = self.builder.definition_parts()
        for name, value in parts.items():
            setattr(self.instance, name, value)
        for name in ("category", "reentry", "reentry_days"):
            if name in cleaned:
                setattr(self.instance, name, cleaned[name])
        definition = self.instance.definition()
        problems += [for_people(problem) for problem in spec.definition_problems(definition)]
        # A NUL or a lone surrogate typed into a field: no database stores it (PostgreSQL refuses).
        problems += [for_people(problem) for problem in storable_json.messages_about(parts)]
        if cleaned.get("starts_at") and cleaned.get("ends_at") and cleaned["ends_at"] <= cleaned["starts_at"]:
            self.add_error("ends_at", "It must end after it starts.")
        for problem in problems:
            self.block_problems.setdefault(block_of(problem), []).append(problem)
        if not problems:
            self.findings = review.review(definition, activity=self.instance if self.instance.pk else None)
            for finding in self.findings:
                if finding.level == "error":
                    problems.append(finding.text)
                    self.block_problems.setdefault(finding_block(finding), []).append(finding.text)
        if problems:
            raise ValidationError(problems)
        if "_activate" in self.data and self.warnings and not cleaned.get("confirm_warnings"):
            raise ValidationError(
                f"This activity has {len(self.warnings)} warning(s), listed above. Read them, then tick "
                '"I have read the warnings" to activate it.'
            )
        return cleaned

    def _update_errors(self, errors):
        """The model's own check of the definition repeats ``clean()``'s, in the file's words
        (``steps[1]: ...``) and on fields this form does not have: only its errors on the form's
        own fields are kept."""
        if hasattr(errors, "error_dict"):
            errors = ValidationError(
                {name: messages for name, messages in errors.error_dict.items() if name in self.fields}
            )
            if not errors.error_dict:
                return
        super()._update_errors(errors)


_PATH = re.compile(r"steps((?:\[\d+\](?:\.(?:then|else))?)+)")


def for_people(problem: str) -> str:
    """A spec problem in the builder's words: ``steps[1].then[0]: ...`` → ``Step 2 › yes 1: ...``."""

    def path(match):
        parts = re.findall(r"\[(\d+)\]|\.(then|else)", match.group(1))
        words, arm = [], ""
        for index, branch in parts:
            if branch:
                arm = "yes" if branch == "then" else "no"
            else:
                words.append(f"{arm} {int(index) + 1}".strip() if arm else f"Step {int(index) + 1}")
        return " › ".join(words)

    problem = _PATH.sub(path, problem)
    for word, block in (("trigger", "When"), ("target", "Who"), ("goal", "Goal"), ("send_rules", "Send rules")):
        if problem.startswith(word):
            problem = block + problem[len(word) :]
    return problem


def block_of(problem: str) -> str:
    """Which block of the page a problem belongs to: when, who, goal, rules, or step <n>."""
    step = re.match(r"Step (\d+)", problem)
    if step:
        return f"step-{step.group(1)}"
    for word, block in (("When", "when"), ("Who", "who"), ("Goal", "goal"), ("Send rules", "rules")):
        if problem.startswith(word):
            return block
    return "other"


def finding_block(finding) -> str:
    where = finding.where or ""
    if where.startswith("steps."):
        return f"step-{int(where.split('.')[1]) + 1}"
    return {"trigger": "when", "target": "who", "goal": "goal", "send_rules": "rules", "reentry": "when"}.get(
        where, "other"
    )


# --- what the page offers ------------------------------------------------------------------


#: The event names with their counts are one GROUP BY over every stored event: a page reads
#: them at most once a minute per process (a name stored meanwhile can still be typed).
EVENTS_FOR = 60
_events_read: dict[str, tuple[float, list[vocabulary.KnownEvent]]] = {}


def known_events() -> list:
    read_at, events = _events_read.get(connection.alias, (None, []))
    if read_at is None or time.monotonic() - read_at > EVENTS_FOR:
        events = vocabulary.known_events()
        _events_read[connection.alias] = (time.monotonic(), events)
    return events


def choices() -> dict:
    """The choices the blocks offer, read from the site (a few queries, once per page)."""
    return {
        "events": known_events(),
        "date_fields": vocabulary.date_fields(),
        "condition_fields": vocabulary.condition_fields(),
        "event_fields": [("properties.<name>", "a property of the event")],
        "ops": conditions.Op.choices,
        "templates": list(EmailTemplate.objects.order_by("name").values_list("slug", "name")),
        "sms_contents": list(SmsContent.objects.order_by("name").values_list("slug", "name")),
        "segments": list(Segment.objects.order_by("name").values_list("slug", "name")),
        "pools": list(CouponPool.objects.order_by("name").values_list("slug", "name")),
        "step_labels": STEP_LABELS,
        "units": UNITS,
        "recurrences": RECURRENCES,
        "areas": AREAS,
        "countries": sorted(pytz.country_names.items(), key=lambda item: item[1]),
        "threshold_fields": [
            ("attributes.<name>", "a customer attribute (a number)"),
            ("events.<name>.count", "how many times an event happened"),
            ("messages.failed.count", "messages that failed"),
        ],
    }


AREAS = (
    ("Africa", "Africa"),
    ("America", "the Americas"),
    ("Antarctica", "Antarctica"),
    ("Asia", "Asia"),
    ("Atlantic", "Atlantic islands"),
    ("Australia", "Australia"),
    ("Europe", "Europe"),
    ("Indian", "Indian Ocean islands"),
    ("Pacific", "Pacific islands"),
)


def annotate_rows(builder, offered) -> None:
    """Give each condition row what its widgets offer: fields, the ops its field takes, finite values."""
    fields = {field.field: field for field in offered["condition_fields"]}
    event_fields = offered["event_fields"]
    for group in builder.groups():
        for row in group.rows:
            if group.scope == "event":
                row.field_choices, row.selected = event_fields, "properties.<name>"
                probe = "attributes.x"
            else:
                row.field_choices = [(field.field, field.label) for field in fields.values()]
                row.selected = row.path if row.path in fields else row.field
                probe = row.path if "<" not in row.path else row.field.replace("<name>", "x").replace("<property>", "x")
            row.ops = vocabulary.ops_for(probe) if row.field else conditions.Op.choices
            if row.ops and row.op not in dict(row.ops):
                row.op = row.ops[0][0]  # a new field: its first operator, as the select shows
            info = fields.get(row.selected)
            row.value_choices = [(plain(value), label) for value, label in info.choices] if info is not None else []
            row.values = [part.strip() for part in row.value.split(",") if part.strip()]
            if row.value_choices:
                # What the row holds comes first and in its order, even a value the site no longer
                # offers (a deleted segment), so that saving the page unchanged changes nothing.
                offered_values = dict(row.value_choices)
                held = row.values if row.op in ("in", "not_in") else row.values[:1]
                row.value_choices = [(value, offered_values.get(value, value)) for value in held] + [
                    choice for choice in row.value_choices if choice[0] not in held
                ]
            row.placeholder = {"number": "a number", "date": "YYYY-MM-DD"}.get(info.kind if info else "", "")


def builder_context(form, activity) -> dict:
    """What the builder's template needs beside the form."""
    builder = form.builder
    offered = choices()
    annotate_rows(builder, offered)
    date_field = builder.trigger.get("field", "")
    offered["date_fields"] = offered["date_fields"] + [
        *(
            [(date_field, date_field)]
            if date_field.startswith("attributes.")
            and "<" not in date_field
            and date_field not in dict(offered["date_fields"])
            else []
        ),
        ("attributes.<name>", "another attribute holding a date…"),
    ]
    parts, _ = builder.definition_parts()
    if not form.findings and not form.block_problems and (activity is not None or form.is_bound):
        # The page shown before any save, or again after a palette button: the checks of what it shows.
        form.findings = review_of(parts, form, activity)
    findings = [(finding, finding_block(finding)) for finding in form.findings]
    return {
        "builder": builder,
        "summary": builder.summary(),
        "step_rows": builder.step_rows(),
        "choices": offered,
        "estimate": audience_estimate(parts["target"], parts["steps"], form_category(form, activity)),
        "findings": findings,
        "block_problems": form.block_problems,
        "previews": previews(builder),
    }


def review_of(parts, form, activity) -> list:
    """The checks of the definition the page shows, once it has no problem of its own."""
    data = form.data if form.is_bound else {}
    definition = {
        **parts,
        "category": data.get("category") or (activity.category if activity else "marketing"),
        "reentry": data.get("reentry") or (activity.reentry if activity else "once"),
        "reentry_days": activity.reentry_days if activity else None,
    }
    if data.get("reentry_days", "").isdigit():
        definition["reentry_days"] = int(data["reentry_days"])
    if spec.definition_problems(definition) or storable_json.problems_in(parts):
        return []
    return review.review(definition, activity=activity if activity is not None and activity.pk else None)


def form_category(form, activity) -> str:
    value = form.data.get("category") if form.is_bound else None
    return value or (activity.category if activity is not None else "marketing")


def channels_of(steps) -> list[str]:
    found = []
    for step in steps:
        if step.get("type") == "send" and step.get("channel") not in found:
            found.append(step.get("channel"))
        for arm in ("then", "else"):
            for channel in channels_of(step.get(arm) or []):
                if channel not in found:
                    found.append(channel)
    return found


def audience_estimate(target, steps, category) -> dict:
    channels = channels_of(steps) or ["email", "sms"]  # no send step yet: both, until one is chosen
    answers = [(channel, audience.estimate(target, channel=channel, category=category)) for channel in channels]
    return {"answers": answers, "problems": answers[0][1].problems if answers else []}


def previews(builder) -> dict:
    """Each send step's content in brief: the e-mail's subject, or the SMS text with its parts."""
    shown = {}
    for block, *_ in builder.step_rows():
        if block.type != "send":
            continue
        shown[block.id] = preview_of(
            block.values.get("channel"), block.values.get("template"), block.values.get("content")
        )
    return shown


def preview_of(channel, template_slug, content_slug) -> dict:
    if channel == "sms":
        content = SmsContent.objects.filter(slug=content_slug).first()
        if content is None:
            return {}
        report = sms.segment(content.text)
        return {
            "kind": "sms",
            "name": content.name,
            "text": content.text,
            "parts": report.segments,
            "encoding": report.encoding,
            "units": report.units,
        }
    template = EmailTemplate.objects.filter(slug=template_slug).first()
    if template is None:
        return {}
    return {"kind": "email", "name": template.name, "subject": template.subject}


# --- the views ------------------------------------------------------------------------------


def refresh_view(model_admin, request, object_id):
    """A palette button: the page again with the blocks changed, nothing saved."""
    obj = model_admin.get_object(request, unquote(object_id)) if object_id else None
    if object_id and obj is None:
        raise Http404(f"No activity with id {object_id!r}.")
    allowed = model_admin.has_change_permission(request, obj) if obj else model_admin.has_add_permission(request)
    if not allowed:
        raise PermissionDenied
    builder = Builder.from_post(request.POST)
    builder.apply(request.POST.get("_builder", ""))
    form_class = model_admin.get_form(request, obj, change=obj is not None)
    form = form_class(request.POST, request.FILES, instance=obj or Activity(), builder=builder, refresh=True)
    fieldsets = list(model_admin.get_fieldsets(request, obj))
    admin_form = helpers.AdminForm(
        form, fieldsets, {}, model_admin.get_readonly_fields(request, obj), model_admin=model_admin
    )
    add = obj is None
    formsets, inline_instances = model_admin._create_formsets(request, obj or Activity(), change=not add)
    inline_formsets = model_admin.get_inline_formsets(request, formsets, inline_instances, obj)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": ("Add %s" if add else "Change %s") % model_admin.opts.verbose_name,
        "subtitle": str(obj) if obj else None,
        "adminform": admin_form,
        "object_id": object_id,
        "original": obj,
        "is_popup": False,
        "to_field": None,
        "media": model_admin.media + admin_form.media,
        "inline_admin_formsets": inline_formsets,
        "errors": None,
        "app_label": model_admin.opts.app_label,
        "preserved_filters": model_admin.get_preserved_filters(request),
    }
    return model_admin.render_change_form(request, context, add=add, change=not add, obj=obj)


def estimate_view(model_admin, request):
    """The audience estimate for the target being edited (htmx swaps it in as rows change)."""
    if not (model_admin.has_view_permission(request) or model_admin.has_add_permission(request)):
        raise PermissionDenied
    builder = Builder.from_post(request.POST)
    parts, problems = builder.definition_parts()
    estimate = audience_estimate(parts["target"], parts["steps"], request.POST.get("category") or "marketing")
    if problems:
        estimate["problems"] = [p for p in problems if p.startswith("Who")] + list(estimate["problems"])
    return HttpResponse(render_to_string("admin/activities/activity/builder_estimate.html", {"estimate": estimate}))
