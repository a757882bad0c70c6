from django.contrib import admin

from customers.admin import ReadOnlyAdmin

from .models import Activity, Enrollment


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "category", "trigger_event", "reentry", "updated_at")
    list_filter = ("status", "category")
    search_fields = ("name", "trigger_event")


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("activity", "customer", "occurrence_key", "state", "current_step", "created_at")
    list_filter = ("state", "activity")
    search_fields = ("customer__email",)
