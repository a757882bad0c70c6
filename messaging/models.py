from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.template import TemplateSyntaxError

from customers.models import Channel, Customer

from .rendering import compile_template


class Category(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    UNDELIVERED = "undelivered", "Undelivered"
    UNKNOWN = "unknown", "Unknown"


#: Statuses a delivery task may still pick up.
PENDING_STATUSES = (Status.SCHEDULED, Status.QUEUED, Status.DEFERRED)


class Reason(models.TextChoices):
    """Why a message waits or was refused: the fixed vocabulary of the reports."""

    NO_ADDRESS = "no address", "No address"
    INVALID_ADDRESS = "invalid address", "Invalid address"
    NO_CONSENT = "no consent", "No consent"
    OPTED_OUT = "opted out", "Opted out"
    SUPPRESSED = "suppressed", "Suppressed (bounce / complaint)"
    QUIET_HOURS = "quiet hours", "Quiet hours"
    FREQUENCY_CAP = "frequency cap", "Frequency cap"
    NO_CREDITS = "no credits", "No credits"
    REGION_EXCLUDED = "region excluded", "Region excluded"
    ACTIVITY_PAUSED = "activity paused", "Activity paused"
    NO_SEND_WINDOW = "no send window", "No send window"
    TRANSIENT_ERROR = "transient error", "Transient gateway error"
    PROVIDER_REJECTED = "provider rejected", "Rejected by the provider"
    LEASE_EXPIRED = "lease expired", "Worker lost while sending"
    TOO_LONG = "too long", "SMS longer than one part (refused by the site's policy)"


def validate_template_source(source: str) -> None:
    try:
        compile_template(source)
    except TemplateSyntaxError as exc:
        line = getattr(exc, "template_debug", {}).get("line")
        where = f"line {line}: " if line else ""
        raise ValidationError(f"{where}{exc}") from None


class EmailTemplate(models.Model):
    """An e-mail a marketer writes once and activities send many times."""

    slug = models.SlugField(unique=True, help_text="The name activities refer to, e.g. welcome.")
    name = models.CharField(max_length=200)
    from_email = models.CharField(
        max_length=200, blank=True, help_text="Leave empty for the site's default sender."
    )
    subject = models.CharField(max_length=300, validators=[validate_template_source])
    html_body = models.TextField(validators=[validate_template_source])
    text_body = models.TextField(
        blank=True, validators=[validate_template_source],
        help_text="Leave empty to derive it from the HTML body.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name or self.slug


class SmsContent(models.Model):
    """The text of an SMS, with the same variables as e-mail templates."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    text = models.TextField(validators=[validate_template_source])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = "SMS content"

    def __str__(self):
        return self.name or self.slug


class Message(models.Model):
    """One e-mail or SMS to one customer: the outbox row that delivery works from."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    email_template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    sms_content = models.ForeignKey(
        SmsContent, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    context = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder,
        help_text="Values for the template beyond the customer's own (event properties, coupon...).",
    )
    source = models.CharField(
        max_length=200, blank=True,
        help_text="Where it came from, e.g. activity:3/enrollment:17/step:0.",
    )
    dedupe_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True, help_text="The provider's own words, when it refused.")
    send_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    to_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(channel=Channel.EMAIL, email_template__isnull=False, sms_content__isnull=True)
                    | Q(channel=Channel.SMS, sms_content__isnull=False, email_template__isnull=True)
                ),
                name="message_content_matches_channel",
            )
        ]
        indexes = [
            # The sweeper and the release of deferred messages look for due pending rows.
            models.Index(
                fields=["send_after"],
                condition=Q(status__in=["scheduled", "queued", "deferred"]),
                name="message_pending_due",
            ),
            models.Index(
                fields=["lease_expires_at"], condition=Q(status="sending"),
                name="message_sending_lease",
            ),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.customer} ({self.status})"

    @property
    def content(self):
        return self.email_template if self.channel == Channel.EMAIL else self.sms_content


class MessageEvent(models.Model):
    """A status change of a message, with when it happened and what the provider said."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=Status.choices)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"
