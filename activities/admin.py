
from django.contrib import admin, messages

from customers.admin import ReadOnlyAdmin

from . import conditions, engine
from .models import Activity, ActivityStatus, ActivityVersion, Coupon, CouponPool, Enrollment


class ActivityVersionInline(admin.TabularInline):
    model = ActivityVersion
    fields = ("number", "created_at", "definition")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "category", "trigger_summary", "reentry", "version", "updated_at")
    list_filter = ("status", "category")
    search_fields = ("name", "trigger_event", "description")
    readonly_fields = ("status", "version")
    inlines = [ActivityVersionInline]
    actions = ["activate", "pause", "resume", "end"]
    fieldsets = [
        (None, {"fields": ("name", "description", "status", "version", "category", "priority", "starts_at", "ends_at")}),
        ("When, who, what", {"fields": ("trigger", "target", "goal", "steps")}),
        ("Re-entry and send rules", {"fields": ("reentry", "reentry_days", "send_rules")}),
    ]

    @admin.display(description="trigger")
    def trigger_summary(self, activity):
        trigger = activity.trigger or {}
        kind = trigger.get("type", "")
        if kind == "event":
            where = conditions.describe(trigger.get("where", [])) if trigger.get("where") else ""
            return f"event {trigger.get('event')}" + (f" where {where}" if where else "")
        return f"{kind} {trigger.get('field', '')}".strip()

    @admin.action(description="Activate the selected draft activities")
    def activate(self, request, queryset):
        count = queryset.filter(status=ActivityStatus.DRAFT).update(status=ActivityStatus.ACTIVE)
        messages.info(request, f"{count} activated.")

    @admin.action(description="Pause (hold enrollments and their unsent messages)")
    def pause(self, request, queryset):
        for activity in queryset.filter(status=ActivityStatus.ACTIVE):
            held = engine.pause(activity)
            messages.info(request, f"{activity}: paused, {held} enrollment(s) held.")

    @admin.action(description="Resume (enrollments and held messages go on)")
    def resume(self, request, queryset):
        for activity in queryset.filter(status=ActivityStatus.PAUSED):
            resumed = engine.resume(activity)
            messages.info(request, f"{activity}: resumed, {resumed} enrollment(s) going on.")

    @admin.action(description="End (enrollments exit, unsent messages are cancelled)")
    def end(self, request, queryset):
        for activity in queryset.exclude(status=ActivityStatus.ENDED):
            ended = engine.end(activity)
            messages.info(request, f"{activity}: ended, {ended} enrollment(s) exited.")


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("activity", "customer", "occurrence_key", "state", "position", "next_run_at", "created_at")
    list_filter = ("state", "activity")
    search_fields = ("customer__email", "customer__external_id")
    date_hierarchy = "created_at"


@admin.register(CouponPool)
class CouponPoolAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "percent_off", "amount_off")


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "pool", "customer", "enrollment", "percent_off", "amount_off", "issued_at")
    search_fields = ("code", "customer__email")
    list_filter = ("pool",)
