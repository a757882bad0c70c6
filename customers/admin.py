import datetime
import json
import unicodedata
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from . import api_keys, consent, exporting, importing
from .models import (
    ApiKey,
    Channel,
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Customer,
    Event,
    Segment,
    SegmentMembership,
)


def customer_zone(customer) -> str:
    """The zone a customer's times are shown in: the one date triggers use, else the site default."""
    return customer.local_zone or settings.TRIGGERHUB_DEFAULT_TIMEZONE


def customer_local_time(customer, moment) -> str:
    """``moment`` as the customer lives it, with its zone: "2026-12-03 14:03 Australia/Sydney"; "—" for none."""
    if moment is None or customer is None:
        return "—"
    zone = customer_zone(customer)
    return f"{moment.astimezone(zoneinfo.ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


#: The longest evidence the admin form takes: a pasted message or form wording fits many times over.
EVIDENCE_MAX_CHARACTERS = 10_000


class RecordConsentForm(forms.Form):
    """A grant or revocation a member of staff records by hand, with what proves it."""

    channel = forms.ChoiceField(choices=Channel.choices)
    action = forms.ChoiceField(choices=ConsentAction.choices, widget=forms.RadioSelect, label="Consent")
    evidence = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        strip=True,
        error_messages={
            "required": "Evidence is required: say how the customer agreed or withdrew "
            '(e.g. "Phoned on 2 Dec, asked for SMS offers; call ref 4411").'
        },
        help_text="How you know: the customer's words, where and when, a ticket or call reference. "
        "It is kept with the record for ever.",
    )

    def clean_evidence(self):
        evidence = self.cleaned_data["evidence"]
        if len(evidence) > EVIDENCE_MAX_CHARACTERS:
            raise ValidationError(
                f"Evidence is {len(evidence):,} characters; keep it within {EVIDENCE_MAX_CHARACTERS:,} "
                "(quote what matters and give a reference to the rest)."
            )
        for position, character in enumerate(evidence, 1):
            # UTF-8 has no lone surrogate, so the save would fail (NUL is refused by CharField itself).
            if unicodedata.category(character) == "Cs":
                raise ValidationError(
                    f"Evidence holds a character that cannot be stored (U+{ord(character):04X} at character "
                    f"{position}); remove it and save again."
                )
        return evidence


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
    verbose_name_plural = "consent history (latest first)"
    fields = (
        "recorded_at",
        "recorded_at_customer_time",
        "channel",
        "action",
        "source",
        "evidence",
        "ip_address",
        "user_agent",
    )
    readonly_fields = fields
    ordering = ["-recorded_at", "-pk"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer")

    @admin.display(description="customer's local time")
    def recorded_at_customer_time(self, record):
        return customer_local_time(record.customer, record.recorded_at)


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
    readonly_fields = ("local_time_now", "created_at", "updated_at", "zones")
    raw_id_fields = ("user",)
    inlines = [ConsentHistoryInline, EventInline]
    actions = ["export_as_csv", "export_as_csv_for_another_program"]
    change_list_template = "admin/customers/customer/change_list.html"
    change_form_template = "admin/customers/customer/change_form.html"

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

    @admin.display(description="local time now")
    def local_time_now(self, customer):
        """ "14:03 Australia/Sydney (03:03 UTC)": what the clock says where the customer is."""
        if customer is None or customer.pk is None:
            return "—"
        now = timezone.now()
        zone = customer_zone(customer)
        return f"{now.astimezone(zoneinfo.ZoneInfo(zone)):%H:%M} {zone} ({now.astimezone(datetime.UTC):%H:%M} UTC)"

    def get_urls(self):
        # Before the model's own URLs, whose "<object_id>/" would take "import/".
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="customers_customer_import"),
            path(
                "<path:object_id>/consent/",
                self.admin_site.admin_view(self.record_consent_view),
                name="customers_customer_record_consent",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def has_record_consent_permission(request):
        # The ledger's admin adds nothing (ReadOnlyAdmin): the permission is asked for by name.
        return request.user.has_perm("customers.add_consentrecord")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.has_record_consent_permission(request):
            extra_context = {
                **(extra_context or {}),
                "record_consent_form": RecordConsentForm(),
                "record_consent_url": reverse("admin:customers_customer_record_consent", args=[object_id]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def record_consent_view(self, request, object_id):
        """Append one consent record (source "admin") for the customer, through consent.grant/revoke."""
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404(f"No customer with id {object_id!r}.")
        if not (self.has_view_or_change_permission(request, customer) and self.has_record_consent_permission(request)):
            raise PermissionDenied
        form = RecordConsentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            channel, action = form.cleaned_data["channel"], form.cleaned_data["action"]
            record_with = consent.grant if action == ConsentAction.GRANTED else consent.revoke
            record = record_with(customer, channel, ConsentSource.ADMIN, form.cleaned_data["evidence"])
            said = (
                f"Recorded {record.get_channel_display()} consent {record.get_action_display().lower()} (source admin)."
            )
            self.log_change(request, customer, said)
            self.message_user(request, said, messages.SUCCESS)
            return redirect(reverse("admin:customers_customer_change", args=[customer.pk]))
        return TemplateResponse(
            request,
            "admin/customers/customer/record_consent.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Record consent for {customer}",
                "opts": self.model._meta,
                "original": customer,
                "form": form,
            },
        )

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
    """The ledger, read only: records are added from a customer's page (or by code), never changed."""

    list_display = ("customer", "channel", "action", "source", "recorded_at", "recorded_at_customer_time")
    list_filter = ("channel", "action", "source")
    list_select_related = ("customer",)
    search_fields = ("customer__email", "customer__phone", "evidence")
    date_hierarchy = "recorded_at"

    @admin.display(description="customer's local time", ordering="recorded_at")
    def recorded_at_customer_time(self, record):
        return customer_local_time(record.customer, record.recorded_at)


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
