"""The activities' admin: editing, import and export of activity files, and the actions
that start, pause, resume and end an activity (each needing the change permission).
"""

import io
import json
import zipfile

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from customers.admin import ReadOnlyAdmin

from . import (
    admin_coupons,  # noqa: F401  (registers coupon pools and coupons)
    builder_admin,
    conditions,
    engine,
    files,
    review,
    spec,
)
from .advanced_admin import advanced_view
from .builder_admin import ActivityForm
from .models import Activity, ActivityStatus, ActivityVersion, Enrollment
from .spec import SpecError


class ActivityFileForm(forms.Form):
    file = forms.FileField(
        label="Activity file",
        help_text="JSON (.json) or YAML (.yaml, .yml), as 'Activity files' in "
        "docs/activities.md describes or 'Export as file' writes.",
    )


class ActivityVersionInline(admin.TabularInline):
    model = ActivityVersion
    fields = ("number", "created_at", "definition_json")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    @admin.display(description="definition")
    def definition_json(self, version):
        return format_html(
            "<details><summary>as JSON</summary><pre>{}</pre></details>",
            json.dumps(version.definition, ensure_ascii=False, indent=2),
        )


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "category", "trigger_summary", "reentry", "version", "updated_at")
    list_filter = ("status", "category")
    search_fields = ("name", "trigger_event", "description")
    readonly_fields = ("status", "version")
    inlines = [ActivityVersionInline]
    actions = ["activate", "pause", "resume", "end", "export_files"]
    change_list_template = "admin/activities/activity/change_list.html"
    change_form_template = "admin/activities/activity/change_form.html"
    form = ActivityForm
    fieldsets = [
        (None, {"fields": ("name", "description", "status", "version", "category", "priority")}),
        ("Re-entry and dates", {"fields": ("reentry", "reentry_days", "starts_at", "ends_at")}),
    ]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        # Before the model's own URLs, whose "<object_id>/" would take "import/".
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="%s_%s_import" % info),
            path("estimate/", self.admin_site.admin_view(self.estimate_view), name="%s_%s_estimate" % info),
            path(
                "<path:object_id>/advanced/",
                self.admin_site.admin_view(self.advanced_view),
                name="%s_%s_advanced" % info,
            ),
            path("<path:object_id>/export/", self.admin_site.admin_view(self.export_view), name="%s_%s_export" % info),
            path("<path:object_id>/try/", self.admin_site.admin_view(self.dry_run_view), name="%s_%s_try" % info),
            *super().get_urls(),
        ]

    def has_import_permission(self, request):
        """An import both creates and changes activities."""
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_import_permission": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ActivityFileForm(request.POST, request.FILES) if request.method == "POST" else ActivityFileForm()
        problems = []
        if form.is_bound and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                data = files.parse(upload.read(), file_format=files.format_of(upload.name))
                refused = review_errors_of_file(data)
                if refused:
                    raise SpecError(refused)
                imported = files.import_data(data)
            except SpecError as exc:
                problems = exc.problems
            else:
                messages.success(request, imported.summary())
                return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[imported.activity.pk]))
        return TemplateResponse(
            request,
            "admin/activities/activity/import.html",
            {
                **self.admin_site.each_context(request),
                "title": "Import an activity file",
                "opts": self.opts,
                "form": form,
                "problems": problems,
                "filename": request.FILES["file"].name if problems else "",
            },
        )

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj is not None else []  # versions: once there are some

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A palette button (``_builder``) changes the blocks and shows the page again, unsaved."""
        if request.method == "POST" and "_builder" in request.POST:
            return builder_admin.refresh_view(self, request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        context.update(builder_admin.builder_context(form, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "_activate" in request.POST and obj.status == ActivityStatus.DRAFT:
            Activity.objects.filter(pk=obj.pk).update(status=ActivityStatus.ACTIVE)
            obj.status = ActivityStatus.ACTIVE
            messages.success(request, f"{obj} is active: it starts for the next customer its trigger finds.")

    def estimate_view(self, request):
        return builder_admin.estimate_view(self, request)

    def advanced_view(self, request, object_id):
        """The definition as JSON, for engineers: activities/advanced_admin.py."""
        activity = self.get_object(request, unquote(object_id))
        if activity is None:
            raise Http404(f"No activity with id {object_id!r}.")
        if not self.has_view_permission(request, activity):
            raise PermissionDenied
        return advanced_view(self, request, activity)

    def dry_run_view(self, request, object_id):
        """Try the activity on one customer: activities/dry_run_admin.py."""
        from .dry_run_admin import dry_run_view

        return dry_run_view(self, request, object_id)

    def export_view(self, request, object_id):
        activity = self.get_object(request, unquote(object_id))
        if activity is None:
            raise Http404(f"No activity with id {object_id!r}.")
        if not self.has_view_permission(request, activity):
            raise PermissionDenied
        return _download(files.render(activity), files.filename_for(activity), "application/json")

    @admin.action(permissions=["view"], description="Export the selected as activity files (JSON)")
    def export_files(self, request, queryset):
        activities = list(queryset)
        if len(activities) == 1:
            return _download(files.render(activities[0]), files.filename_for(activities[0]), "application/json")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            names = set()
            for activity in activities:
                name = files.filename_for(activity)
                if name in names:
                    name = name.replace(".json", f"-{activity.pk}.json")
                names.add(name)
                bundle.writestr(name, files.render(activity))
        return _download(archive.getvalue(), f"activities-{timezone.now():%Y%m%d-%H%M}.zip", "application/zip")

    @admin.display(description="trigger")
    def trigger_summary(self, activity):
        trigger = activity.trigger or {}
        kind = trigger.get("type", "")
        if kind == "event":
            where = conditions.describe(trigger.get("where", [])) if trigger.get("where") else ""
            return f"event {trigger.get('event')}" + (f" where {where}" if where else "")
        return f"{kind} {trigger.get('field', '')}".strip()

    @admin.action(permissions=["change"], description="Activate the selected draft activities")
    def activate(self, request, queryset):
        """Drafts without warnings start; one with warnings is activated from its page, where they are confirmed."""
        activated = []
        for activity in queryset.filter(status=ActivityStatus.DRAFT):
            warnings = [f for f in review.review(activity.definition(), activity=activity) if f.level == "warning"]
            if warnings:
                messages.warning(
                    request,
                    f"{activity}: not activated, it has {len(warnings)} warning(s); "
                    "open it, read them and activate it there.",
                )
                continue
            activated.append(activity.pk)
        count = Activity.objects.filter(pk__in=activated).update(status=ActivityStatus.ACTIVE)
        messages.info(request, f"{count} activated.")

    @admin.action(permissions=["change"], description="Pause (hold enrollments and their unsent messages)")
    def pause(self, request, queryset):
        for activity in queryset.filter(status=ActivityStatus.ACTIVE):
            held = engine.pause(activity)
            messages.info(request, f"{activity}: paused, {held} enrollment(s) held.")

    @admin.action(permissions=["change"], description="Resume (enrollments and held messages go on)")
    def resume(self, request, queryset):
        for activity in queryset.filter(status=ActivityStatus.PAUSED):
            resumed = engine.resume(activity)
            messages.info(request, f"{activity}: resumed, {resumed} enrollment(s) going on.")

    @admin.action(permissions=["change"], description="End (enrollments exit, unsent messages are cancelled)")
    def end(self, request, queryset):
        for activity in queryset.exclude(status=ActivityStatus.ENDED):
            ended = engine.end(activity)
            messages.info(request, f"{activity}: ended, {ended} enrollment(s) exited.")


def review_errors_of_file(data) -> list[str]:
    """The builder's checks that stop a save (activities/review.py), for a file the spec accepts."""
    if spec.problems_in(data):
        return []  # the import reports them
    existing = Activity.objects.filter(name=data.get("name")).first()
    return [finding.text for finding in review.errors_in(review.review(spec.definition_of(data), activity=existing))]


def _download(content, filename, content_type) -> HttpResponse:
    charset = "; charset=utf-8" if isinstance(content, str) else ""
    response = HttpResponse(content, content_type=content_type + charset)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("activity", "customer", "occurrence_key", "state", "position", "next_run_at", "created_at")
    list_filter = ("state", "activity")
    search_fields = ("customer__email", "customer__external_id")
    date_hierarchy = "created_at"
