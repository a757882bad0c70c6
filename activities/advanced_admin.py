"""The advanced view of an activity: its definition as JSON, for engineers.

Marketers build activities in the builder (the change page); this page shows the same
definition as the activity file writes it, and lets someone with the change permission
edit it as text. What it saves goes through the same checks as the builder and the files.
"""

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from . import review

#: The definition's parts this page edits, in the order the builder shows them.
PARTS = ("trigger", "target", "goal", "steps", "send_rules")


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, one key a line, so a step list can be read and edited by hand."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def _text_area():
    return forms.Textarea(
        attrs={
            "rows": 12,
            "cols": 90,
            "class": "vLargeTextField",
            "spellcheck": "false",
            "style": "font-family: monospace;",
        }
    )


class AdvancedForm(forms.Form):
    trigger = PrettyJSONField(widget=_text_area())
    target = PrettyJSONField(widget=_text_area(), required=False)
    goal = PrettyJSONField(widget=_text_area(), required=False)
    steps = PrettyJSONField(widget=_text_area())
    send_rules = PrettyJSONField(widget=_text_area(), required=False)


def advanced_view(model_admin, request, activity):
    may_change = model_admin.has_change_permission(request, activity)
    initial = {part: getattr(activity, part) for part in PARTS}
    form = AdvancedForm(request.POST if request.method == "POST" and may_change else None, initial=initial)
    if form.is_bound and form.is_valid():
        for part in PARTS:
            empty = [] if part in ("target", "steps") else {}
            setattr(activity, part, form.cleaned_data[part] if form.cleaned_data[part] is not None else empty)
        try:
            activity.full_clean()
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(name if name in PARTS else None, problem)
        else:
            # The builder's checks too: an error there stops this save as it stops the builder's.
            for finding in review.errors_in(review.review(activity.definition(), activity=activity)):
                form.add_error(None, finding.text)
        if not form.errors:
            activity.save()
            messages.success(request, f"{activity}: definition saved (version {activity.version}).")
            return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[activity.pk]))
    if not may_change:
        for field in form.fields.values():
            field.disabled = True
    return TemplateResponse(
        request,
        "admin/activities/activity/advanced.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": f"Advanced view of {activity}",
            "opts": model_admin.opts,
            "original": activity,
            "form": form,
            "may_change": may_change,
        },
    )
