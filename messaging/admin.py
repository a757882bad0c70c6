import copy
import json
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from customers.admin import ReadOnlyAdmin, customer_local_time
from customers.models import Channel, Customer

from . import credits, outbox, placeholders, rendering, sms, suppressions, uncertain
from .models import (
    Category,
    CreditEntry,
    CreditEntryKind,
    EmailTemplate,
    EmailTemplateVariant,
    Message,
    MessageEvent,
    Reason,
    SmsContent,
    SmsContentVariant,
    SmsRate,
    Status,
    Suppression,
    SuppressionReason,
)


def segment_report(text: str) -> dict:
    """How ``text`` travels as SMS, for people: the counter on the SMS form and the preview."""
    result = sms.segment(text)
    parts = result.segments
    capacity = sms.SINGLE_LIMIT[result.encoding] if parts <= 1 else parts * sms.PART_LIMIT[result.encoding]
    forced = [
        {"character": c, "codepoint": f"U+{ord(c):04X}", "name": unicodedata.name(c, "")}
        for c in result.non_gsm_characters
    ]
    summary = f"{result.encoding} · {parts} part{'' if parts == 1 else 's'} · {result.units}/{capacity}"
    if forced:
        summary += " · forced by " + ", ".join(f"{f['character']} ({f['codepoint']})" for f in forced[:5])
        summary += " …" if len(forced) > 5 else ""
    return {
        "encoding": result.encoding,
        "parts": parts,
        "units": result.units,
        "capacity": capacity,
        "forced_by": forced,
        "summary": summary,
    }


class VariantForm(forms.ModelForm):
    def clean_language(self):
        # Normalised here too, so two rows of one formset ("pt-BR", "pt-br") meet as duplicates.
        return rendering.normalize_language(self.cleaned_data["language"])


class EmailTemplateVariantInline(admin.StackedInline):
    model = EmailTemplateVariant
    form = VariantForm
    fields = ("language", "subject", "html_body", "text_body")
    extra = 0


class SmsContentVariantInline(admin.TabularInline):
    model = SmsContentVariant
    form = VariantForm
    fields = ("language", "text")
    extra = 0


class RecipientForm(forms.Form):
    """A customer to render for or send to, and the values an activity would add."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.all())
    values = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text='Values beyond the customer\'s, as JSON, e.g. {"event": {"order_id": "1042"}, '
        '"coupon": {"code": "WELCOME10"}}.',
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        field.widget = AutocompleteSelect(Message._meta.get_field("customer"), admin_site)
        field.widget.choices = field.choices

    def clean_values(self):
        values = self.cleaned_data["values"] or {}
        if not isinstance(values, dict):
            raise forms.ValidationError('Give the values as a JSON object, e.g. {"event": {"order_id": "1042"}}.')
        if "customer" in values:
            raise forms.ValidationError('Leave out "customer": it comes from the customer chosen above.')
        return values


class PreviewForm(RecipientForm):
    language = forms.ChoiceField(required=False)

    def __init__(self, *args, content, **kwargs):
        super().__init__(*args, **kwargs)
        default = rendering.normalize_language(settings.LANGUAGE_CODE)
        languages = dict.fromkeys(
            [default, *(rendering.normalize_language(v.language) for v in content.variants.all())]
        )
        self.fields["language"].choices = [
            ("", "The customer's language"),
            *((code, f"{code} (the template itself)" if code == default else code) for code in languages),
        ]


class MessageContentAdmin(admin.ModelAdmin):
    """What e-mail templates and SMS content share: variants, a preview, a test send, and warnings
    about placeholders written for another tool (messaging.placeholders), which never stop a save."""

    channel: Channel
    actions = ["send_test"]
    #: The fields that are templates, with the names a marketer sees.
    template_fields: dict[str, str]

    def placeholder_warnings(self, content, variants=()) -> list[str]:
        """One sentence per placeholder nobody fills, in ``content`` and its ``variants`` (saved or typed)."""
        warnings = []
        for version in (content, *variants):
            language = f" ({version.language} variant)" if version is not content else ""
            for name, label in self.template_fields.items():
                for placeholder in placeholders.unfilled_placeholders(getattr(version, name, "") or ""):
                    warnings.append(f"{label}{language}, {placeholder}")
        return warnings

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        content = form.instance
        for warning in self.placeholder_warnings(content, content.variants.all()):
            self.message_user(request, warning, messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        # What the form shows: the text typed (a form sent back with errors) or the saved one.
        content = form.instance if not form.is_bound else _typed(form)
        variants = [
            _typed(inline_form) if inline_form.is_bound else inline_form.instance
            for inline in context.get("inline_admin_formsets", [])
            for inline_form in inline.formset.forms
            if (inline_form.instance.pk or inline_form.is_bound) and not _is_empty_extra(inline_form)
        ]
        context["placeholder_warnings"] = self.placeholder_warnings(content, variants)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view), name="%s_%s_preview" % info
            ),
            path(
                "<path:object_id>/send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="%s_%s_send_test" % info,
            ),
            *super().get_urls(),
        ]

    def _content_or_refuse(self, request, object_id, may):
        content = self.get_object(request, unquote(object_id))
        if content is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        if not may(request, content):
            raise PermissionDenied
        return content

    def _page(self, request, content, template, title, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": content,
                "title": title,
                "channel": self.channel,
                **context,
            },
        )

    def preview_view(self, request, object_id):
        content = self._content_or_refuse(request, object_id, self.has_view_permission)
        form = PreviewForm(request.GET or None, content=content, admin_site=self.admin_site)
        preview = None
        if form.is_valid():
            render_preview = rendering.preview_email if self.channel == Channel.EMAIL else rendering.preview_sms
            preview = render_preview(
                content,
                form.cleaned_data["customer"],
                language=form.cleaned_data["language"] or None,
                context=form.cleaned_data["values"],
            )
        report = segment_report(preview.text) if preview and self.channel == Channel.SMS and not preview.error else None
        return self._page(
            request,
            content,
            "admin/messaging/preview.html",
            f"Preview of {content}",
            form=form,
            preview=preview,
            segments=report,
            long_policy=self._long_policy_outcome(preview, report),
            values_json=json.dumps(form.cleaned_data["values"]) if preview else "",
            may_send_test=self.has_change_permission(request, content),
            default_language=rendering.normalize_language(settings.LANGUAGE_CODE),
        )

    def _long_policy_outcome(self, preview, report):
        if not report or report["parts"] <= 1:
            return None
        policy = settings.TRIGGERHUB_SMS_LONG_POLICY
        try:
            sent = sms.apply_long_policy(preview.text, policy)
        except sms.TooLong as exc:
            return f"The site refuses SMS over one part (TRIGGERHUB_SMS_LONG_POLICY=refuse): it would be blocked. {exc}"
        if policy == sms.LongSmsPolicy.TRUNCATE:
            return f"The site cuts SMS to one part (TRIGGERHUB_SMS_LONG_POLICY=truncate); it would send: {sent}"
        return f"The site sends it as {report['parts']} parts, each paid for (TRIGGERHUB_SMS_LONG_POLICY=split)."

    def send_test_view(self, request, object_id):
        content = self._content_or_refuse(request, object_id, self.has_change_permission)
        form = RecipientForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            message = outbox.enqueue(
                customer=form.cleaned_data["customer"],
                channel=self.channel,
                content=content,
                category=Category.TRANSACTIONAL,
                source=f"admin-test:{request.user.get_username()}",
                dedupe_key=f"admin-test:{uuid.uuid4()}",
                context=form.cleaned_data["values"],
            )
            self._report_test(request, message)
            return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[content.pk]))
        return self._page(request, content, "admin/messaging/send_test.html", f"Send a test of {content}", form=form)

    def _report_test(self, request, message):
        link = reverse("admin:messaging_message_change", args=[message.pk])
        what = f"{message.get_channel_display()} #{message.pk} to {message.customer}"
        if message.status in (Status.QUEUED, Status.SCHEDULED):
            level, outcome = messages.SUCCESS, "queued; its status follows on the message's page"
        elif message.reason:
            level, outcome = (
                messages.WARNING,
                f"{message.get_status_display().lower()} ({message.get_reason_display()})",
            )
        else:
            level, outcome = messages.WARNING, message.get_status_display().lower()
        self.message_user(request, format_html('Test <a href="{}">{}</a>: {}.', link, what, outcome), level)

    # The test send page it leads to needs the change permission too (send_test_view).
    @admin.action(permissions=["change"], description="Send a test of the selected item to a customer…")
    def send_test(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one to send a test of.", messages.WARNING)
            return None
        info = self.opts.app_label, self.opts.model_name
        return redirect(reverse("admin:%s_%s_send_test" % info, args=[queryset.get().pk]))


def _typed(form):
    """A copy of ``form``'s instance with the text typed into it, whether or not the form is valid."""
    typed = copy.copy(form.instance)
    for name in form.fields:
        value = form.data.get(form.add_prefix(name))
        if isinstance(value, str):
            setattr(typed, name, value)
    return typed


def _is_empty_extra(inline_form) -> bool:
    return inline_form.instance.pk is None and not inline_form.has_changed()


@admin.register(EmailTemplate)
class EmailTemplateAdmin(MessageContentAdmin):
    channel = Channel.EMAIL
    template_fields = {"subject": "Subject", "html_body": "HTML body", "text_body": "Text body"}
    list_display = ("slug", "name", "subject", "languages", "updated_at")
    search_fields = ("slug", "name", "subject")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [EmailTemplateVariantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    @admin.display(description="variants")
    def languages(self, template):
        return ", ".join(variant.language for variant in template.variants.all()) or "—"


@admin.register(SmsContent)
class SmsContentAdmin(MessageContentAdmin):
    channel = Channel.SMS
    template_fields = {"text": "Text"}
    list_display = ("slug", "name", "text", "languages", "updated_at")
    search_fields = ("slug", "name", "text")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SmsContentVariantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    @admin.display(description="variants")
    def languages(self, content):
        return ", ".join(variant.language for variant in content.variants.all()) or "—"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_render_for_customer"] = request.user.has_perm("customers.view_customer")
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        # Before the model's own URLs, whose "<object_id>/" would take "segments/".
        return [
            path("segments/", self.admin_site.admin_view(self.segments_view), name="messaging_smscontent_segments"),
            *super().get_urls(),
        ]

    def segments_view(self, request):
        """The live counter's JSON: how the text typed so far travels as SMS (counted by messaging.sms);
        with ``customer`` (an id, e-mail or phone), also how it travels rendered for that customer."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        text = request.GET.get("text", "")
        report = segment_report(text)
        if request.GET.get("customer", "").strip():
            # The rendered text shows the customer's name and fields: only to who may see customers.
            if not request.user.has_perm("customers.view_customer"):
                raise PermissionDenied
            report["for_customer"] = self._rendered_report(text, request.GET["customer"].strip())
        return JsonResponse(report)

    def _rendered_report(self, text: str, wanted: str) -> dict:
        customer, problem = find_customer(wanted)
        if customer is None:
            return {"error": problem}
        # The text as typed, unsaved: a content without a pk is rendered as itself, whatever the language.
        preview = rendering.preview_sms(SmsContent(slug="typed", text=text), customer)
        if preview.error:
            return {"customer": str(customer), "error": f"This cannot be rendered for {customer}: {preview.error}"}
        report = segment_report(preview.text)
        return {
            "customer": str(customer),
            "text": preview.text,
            **report,
            "long_policy": self._long_policy_outcome(preview, report) or "",
        }


def find_customer(wanted: str) -> tuple[Customer | None, str]:
    """The customer a person means by an id, an e-mail address or a phone number; else why none is found."""
    if len(wanted) > 254 or any(unicodedata.category(character).startswith("C") for character in wanted):
        # A database refuses NUL in a query: such a text is no one's address anyway.
        return None, "Give an id, an e-mail address or a phone number (E.164), without control characters."
    if wanted.isdigit() and len(wanted) < 19:
        customer = Customer.objects.filter(pk=int(wanted)).first()
        how = f"id {wanted}"
    elif "@" in wanted:
        customer = Customer.objects.filter(email__iexact=wanted).order_by("-created_at", "-pk").first()
        how = f"e-mail {wanted!r}"
    else:
        customer = Customer.objects.filter(phone=wanted).order_by("-created_at", "-pk").first()
        how = f"phone {wanted!r}"
    return (
        customer,
        "" if customer else f"No customer has {how}: give an id, an e-mail address or a phone number (E.164).",
    )


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    fields = ("at", "status", "reason", "detail", "payload")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        # A message's history is part of the message: whoever may see it sees who acted on it.
        return request.user.has_perm("messaging.view_message")


@dataclass(frozen=True)
class UncertainAction:
    """One thing staff can do to an unknown message: its button, its confirmation, what it runs."""

    name: str  # the admin action, and the last part of its URL on the message's page
    label: str
    will_happen: str  # what the confirmation page says will happen
    run: Callable  # (message, user) -> (level, what happened), for the admin's message and log


def _check(message, user) -> tuple[int, str]:
    outcome = uncertain.check(message, by=user)
    if outcome.found:
        return messages.SUCCESS, f"Message {message.pk}: {outcome.summary} It is now {outcome.status.label.lower()}."
    return messages.WARNING, (
        f"Message {message.pk}: {outcome.summary} It stays unknown: resend it if the customer should "
        "get it, or close it."
    )


def _resend(message, user) -> tuple[int, str]:
    uncertain.resend(message, by=user)
    return messages.SUCCESS, f"Message {message.pk} resent: it is queued and goes when a worker takes it."


def _close_as_sent(message, user) -> tuple[int, str]:
    uncertain.close(message, by=user, sent=True)
    return messages.SUCCESS, f"Message {message.pk} closed as sent."


def _close_as_not_sent(message, user) -> tuple[int, str]:
    uncertain.close(message, by=user, sent=False)
    return messages.SUCCESS, f"Message {message.pk} closed as not sent: it will not be sent."


#: Why a message is unknown, for its page.
UNKNOWN_BECAUSE = {
    Reason.NO_ANSWER: "Its request reached the provider, or may have, and no answer came back.",
    Reason.LEASE_EXPIRED: "The worker sending it stopped (killed or crashed) while the provider may have had it.",
}

UNCERTAIN_ACTIONS = {
    action.name: action
    for action in (
        UncertainAction(
            "check_with_provider",
            "Check with the provider",
            "TriggerHub asks the provider whether it has each message (Twilio: by its SID, else by number, "
            "text and time). A message the provider has takes the provider's status and SID; one it does not "
            "have stays unknown, and the check is recorded. E-mail and SMS through another backend cannot be "
            "checked from here: you are told where to look.",
            _check,
        ),
        UncertainAction(
            "resend",
            "Resend",
            "Each message is queued again and sent as soon as a worker takes it, the send policy deciding "
            "again (consent, quiet hours, caps, credits). If the provider had it after all, the customer "
            "receives it twice: you accept that risk.",
            _resend,
        ),
        UncertainAction(
            "close_as_sent",
            "Close as sent",
            "Each message is marked sent, as you know it went out; it is not sent again.",
            _close_as_sent,
        ),
        UncertainAction(
            "close_as_not_sent",
            "Close as not sent",
            "Each message is marked failed (closed by staff) and will never be sent.",
            _close_as_not_sent,
        ),
    )
}


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """Messages are records: no field is edited here. Staff with the change permission on messages
    may act on an unknown one (check, resend, close: messaging/uncertain.py), after a confirmation."""

    list_display = (
        "pk",
        "customer_link",
        "channel",
        "category",
        "status",
        "reason",
        "subject",
        "sms_parts",
        "send_after",
        "sent_at",
        "in_customers_time",
    )
    list_filter = ("status", "reason", "channel", "category")
    list_select_related = ("customer",)
    search_fields = (
        "customer__email",
        "customer__phone",
        "customer__first_name",
        "customer__last_name",
        "customer__external_id",
        "dedupe_key",
        "provider_message_id",
        "subject",
    )
    search_help_text = "Customer e-mail, phone, name or external id; dedupe key, provider id, subject."
    date_hierarchy = "created_at"
    inlines = [MessageEventInline]
    actions = list(UNCERTAIN_ACTIONS)

    @admin.display(description="customer", ordering="customer")
    def customer_link(self, message):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:customers_customer_change", args=[message.customer_id]),
            message.customer,
        )

    @admin.display(description="customer's local time")
    def in_customers_time(self, message):
        """The send_after or sent_at beside it as the customer lived it: quiet hours are in their zone."""
        if message.sent_at:
            return f"sent {customer_local_time(message.customer, message.sent_at)}"
        return f"due {customer_local_time(message.customer, message.send_after)}"

    @admin.display(description="SMS parts", ordering="parts")
    def sms_parts(self, message):
        return message.parts if message.channel == Channel.SMS else "—"

    # The change permission gates these actions only: has_change_permission stays False,
    # so the message's fields are never editable.
    def has_act_on_uncertain_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(permissions=["act_on_uncertain"], description="Check unknown messages with the provider…")
    def check_with_provider(self, request, queryset):
        return self._act_on_uncertain(request, queryset, UNCERTAIN_ACTIONS["check_with_provider"])

    @admin.action(permissions=["act_on_uncertain"], description="Resend unknown messages…")
    def resend(self, request, queryset):
        return self._act_on_uncertain(request, queryset, UNCERTAIN_ACTIONS["resend"])

    @admin.action(permissions=["act_on_uncertain"], description="Close unknown messages as sent…")
    def close_as_sent(self, request, queryset):
        return self._act_on_uncertain(request, queryset, UNCERTAIN_ACTIONS["close_as_sent"])

    @admin.action(permissions=["act_on_uncertain"], description="Close unknown messages as not sent…")
    def close_as_not_sent(self, request, queryset):
        return self._act_on_uncertain(request, queryset, UNCERTAIN_ACTIONS["close_as_not_sent"])

    def get_urls(self):
        return [
            path(
                "<path:object_id>/uncertain/<str:action>/",
                self.admin_site.admin_view(self.uncertain_view),
                name="messaging_message_uncertain",
            ),
            *super().get_urls(),
        ]

    def uncertain_view(self, request, object_id, action):
        """A button of the message's page: the same confirmation and action as from the list."""
        if action not in UNCERTAIN_ACTIONS:
            raise Http404(f"No action {action!r} on messages.")
        if not self.has_act_on_uncertain_permission(request):
            raise PermissionDenied
        queryset = self.get_queryset(request).filter(pk=unquote(object_id))
        if not queryset.exists():
            raise Http404(f"No message with id {object_id!r}.")
        back = reverse("admin:messaging_message_change", args=[object_id])
        response = self._act_on_uncertain(request, queryset, UNCERTAIN_ACTIONS[action], back=back)
        return response or redirect(back)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self.get_object(request, unquote(object_id))
        if message is not None and message.status == Status.UNKNOWN:
            may_act = self.has_act_on_uncertain_permission(request)
            extra_context = {
                **(extra_context or {}),
                "is_unknown": True,
                "unknown_because": UNKNOWN_BECAUSE.get(message.reason, ""),
                "uncertain_buttons": [
                    (action.label, reverse("admin:messaging_message_uncertain", args=[message.pk, action.name]))
                    for action in UNCERTAIN_ACTIONS.values()
                ]
                if may_act
                else [],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _act_on_uncertain(self, request, queryset, action: UncertainAction, *, back=None):
        """Show what ``action`` will do to the unknown messages of ``queryset``; once confirmed, do it."""
        selected = list(queryset.select_related("customer").order_by("pk"))
        unknown = [message for message in selected if message.status == Status.UNKNOWN]
        skipped = len(selected) - len(unknown)
        if not unknown:
            self.message_user(request, f"{self._skipped(skipped)} Nothing was done.", messages.WARNING)
            return None
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/messaging/message/confirm_uncertain_action.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": f"{action.label}: are you sure?",
                    "action": action,
                    "messages_to_act_on": unknown,
                    "skipped": self._skipped(skipped) if skipped else "",
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "original": unknown[0] if back else None,
                    "cancel_url": back or reverse("admin:messaging_message_changelist"),
                },
            )
        if skipped:
            self.message_user(request, self._skipped(skipped), messages.WARNING)
        for position, message in enumerate(unknown):
            try:
                level, said = action.run(message, request.user)
            except uncertain.ProviderUnreachable as exc:
                # The next ones would wait for the same unreachable provider.
                left = len(unknown) - position - 1
                self.message_user(request, str(exc) + (f" {left} more not checked." if left else ""), messages.ERROR)
                break
            except uncertain.UncertainActionRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            self.message_user(request, said, level)
            self.log_change(request, message, said)
        return None

    @staticmethod
    def _skipped(count: int) -> str:
        return (
            f"{count} selected message(s) skipped: only an unknown message can be checked, resent or closed "
            "(the others already have an outcome, or are still on their way)."
        )


@admin.register(SmsRate)
class SmsRateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "country", "credits_per_part")
    search_fields = ("country",)


class AddCreditsForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[(CreditEntryKind.PURCHASE, "Credits added"), (CreditEntryKind.ADJUSTMENT, "Adjustment")]
    )

    class Meta:
        model = CreditEntry
        fields = ("kind", "amount", "note")
        help_texts = {"amount": "Credits to add (negative to correct a mistake)."}


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    """The SMS credit ledger; "add" tops the balance up and releases SMS held for credits."""

    form = AddCreditsForm
    list_display = ("created_at", "kind", "amount", "balance_after", "message", "note")
    list_filter = ("kind",)
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        held = Message.objects.filter(status=Status.DEFERRED, reason=Reason.NO_CREDITS).count()
        entry = credits.add(
            form.cleaned_data["amount"],
            kind=form.cleaned_data["kind"],
            note=form.cleaned_data["note"] or f"by {request.user}",
        )
        obj.pk, obj.balance_after = entry.pk, entry.balance_after
        messages.info(request, f"Balance now {entry.balance_after}; {held} held SMS released.")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": f"SMS credits — balance {credits.balance()}"}
        return super().changelist_view(request, extra_context)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("channel", "address", "reason", "detail")

    def clean_address(self):
        return suppressions.normalize_address(self.cleaned_data.get("channel"), self.cleaned_data["address"])


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Addresses nothing more is sent to. Deleting one lifts it (e.g. a mailbox fixed after a bounce)."""

    form = SuppressionForm
    list_display = ("address", "channel", "reason", "created_at", "message")
    list_filter = ("channel", "reason")
    search_fields = ("address",)
    readonly_fields = ("message", "created_at")

    def get_changeform_initial_data(self, request):
        return {"reason": SuppressionReason.MANUAL}

    def has_change_permission(self, request, obj=None):
        return False
