from django.contrib import admin

from customers.admin import ReadOnlyAdmin

from .models import EmailTemplate, Message, MessageEvent, SmsContent


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "subject", "updated_at")
    search_fields = ("slug", "name", "subject")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(SmsContent)
class SmsContentAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "text", "updated_at")
    search_fields = ("slug", "name", "text")
    prepopulated_fields = {"slug": ("name",)}


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    fields = ("at", "status", "reason", "detail", "payload")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("pk", "customer", "channel", "category", "status", "reason", "subject", "send_after", "sent_at")
    list_filter = ("status", "reason", "channel", "category")
    search_fields = ("customer__email", "customer__phone", "dedupe_key", "provider_message_id", "subject")
    date_hierarchy = "created_at"
    inlines = [MessageEventInline]
