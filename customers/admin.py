from django.contrib import admin

from .models import Customer, Event


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: readable, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EventInline(admin.TabularInline):
    model = Event
    fields = ("name", "occurred_at", "properties", "processed_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-occurred_at"]
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "phone", "country", "language", "created_at")
    list_filter = ("country", "language")
    search_fields = ("email", "phone", "external_id", "first_name", "last_name")
    readonly_fields = ("created_at", "updated_at")
    raw_id_fields = ("user",)
    inlines = [EventInline]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("name", "customer", "occurred_at", "received_at", "source", "processed_at")
    list_filter = ("name", "source")
    search_fields = ("customer__email", "idempotency_key")
    date_hierarchy = "received_at"
