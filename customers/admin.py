import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from . import api_keys, exporting, importing
from .models import ApiKey, ConsentRecord, Customer, Event, Segment, SegmentMembership


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: readable, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("name", "occurred_at", "properties", "processed_at")
    readonly_fields = fields
    ordering = ["-occurred_at"]
    show_change_link = True


class ConsentHistoryInline(ReadOnlyInline):
    """The consent ledger of the customer: readable here, appended only through consent.grant/revoke."""

    model = ConsentRecord
    verbose_name_plural = "consent history"
    fields = ("recorded_at", "channel", "action", "source", "evidence", "ip_address", "user_agent")
    readonly_fields = fields
    ordering = ["-recorded_at", "-pk"]


class AttributesField(forms.JSONField):
    """The attributes box, shown back as typed even when it holds what no database stores.

    A lone surrogate (``"\\ud800"`` typed as an escape) cannot be encoded in the page:
    Django's own field would fail the response with a 500 where ``Customer.clean()``
    names the attribute. Such a value is shown escaped instead.
    """

    def prepare_value(self, value):
        text = super().prepare_value(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return text


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "phone", "country", "language", "created_at")
    list_filter = ("country", "language")
    search_fields = ("email", "phone", "external_id", "first_name", "last_name")
    readonly_fields = ("created_at", "updated_at", "zones")
    raw_id_fields = ("user",)
    inlines = [ConsentHistoryInline, EventInline]
    actions = ["export_as_csv", "export_as_csv_for_another_program"]
    change_list_template = "admin/customers/customer/change_list.html"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "attributes":
            kwargs["form_class"] = AttributesField
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    class ImportForm(forms.Form):
        file = forms.FileField(label="CSV file", help_text="UTF-8, with a header line naming the columns.")

        def clean_file(self):
            upload = self.cleaned_data["file"]
            try:
                return importing.open_csv_upload(upload.file)
            except importing.ImportFileError as exc:
                raise ValidationError(str(exc)) from None

    @admin.display(description="time zones in use")
    def zones(self, customer):
        return ", ".join(customer.time_zones())

    def get_urls(self):
        # Before the model's own URLs, whose "<object_id>/" would take "import/".
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="customers_customer_import"),
            *super().get_urls(),
        ]

    def has_import_permission(self, request):
        """An import both creates and changes customers."""
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_import_permission": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.ImportForm(request.POST, request.FILES) if request.method == "POST" else self.ImportForm()
        report = None
        if form.is_bound and form.is_valid():
            try:
                report = importing.import_customers(form.cleaned_data["file"], filename=request.FILES["file"].name)
            except importing.ImportFileError as exc:
                form.add_error("file", str(exc))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import customers from CSV",
            "opts": self.model._meta,
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/customers/customer/import.html", context)

    @admin.action(description="Export selected as CSV")
    def export_as_csv(self, request, queryset):
        return self._csv_export(queryset, protect_formulas=True)

    @admin.action(description="Export selected as CSV for another program (cells as stored, unsafe in a spreadsheet)")
    def export_as_csv_for_another_program(self, request, queryset):
        return self._csv_export(queryset, protect_formulas=False)

    def _csv_export(self, queryset, *, protect_formulas):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="customers-{timezone.now():%Y%m%d-%H%M}.csv"'
        response.write("\ufeff")  # the byte-order mark Excel needs to read UTF-8; the importer skips it
        exporting.export_customers(queryset, response, protect_formulas=protect_formulas)
        return response


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("customer", "channel", "action", "source", "recorded_at")
    list_filter = ("channel", "action", "source")
    search_fields = ("customer__email", "customer__phone", "evidence")
    date_hierarchy = "recorded_at"


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("name", "customer", "occurred_at", "received_at", "source", "processed_at")
    list_filter = ("name", "source")
    search_fields = ("customer__email", "idempotency_key")
    date_hierarchy = "received_at"


class SegmentMembershipInline(admin.TabularInline):
    model = SegmentMembership
    raw_id_fields = ("customer",)
    readonly_fields = ("added_at",)
    extra = 0


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SegmentMembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "rate_limit_per_minute", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("name", "rate_limit_per_minute", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key = api_keys.fill_new_key(obj)
        super().save_model(request, obj, form, change)
        messages.warning(
            request, f"The key for {obj.name} is {key} — copy it now: it is stored hashed and shown only once."
        )

    @admin.action(permissions=["change"], description="Revoke the selected keys")
    def revoke(self, request, queryset):
        revoked = api_keys.revoke(queryset)
        self.message_user(request, f"{revoked} key(s) revoked.")
