import re
import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from customers.models import Channel, Customer

from .rendering import normalize_language, template_problems


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


#: Unsent and not being sent: what a delivery task may still pick up, and what hold() and cancel() may still stop.
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
    ENROLLMENT_ENDED = "enrollment ended", "Its enrollment ended (goal reached, exited or activity ended)"
    NO_SEND_WINDOW = "no send window", "No send window"
    TRANSIENT_ERROR = "transient error", "Transient gateway error"
    PROVIDER_REJECTED = "provider rejected", "Rejected by the provider"
    LEASE_EXPIRED = "lease expired", "Worker lost while sending"
    NO_ANSWER = "no answer", "The provider did not answer in time (it may have sent it)"
    TOO_LONG = "too long", "SMS longer than one part (refused by the site's policy)"
    TEMPLATE_ERROR = "template error", "Its template could not be rendered"
    CLOSED_BY_STAFF = "closed by staff", "Closed by staff after checking"


def validate_template_source(source: str) -> None:
    """Refuse syntax errors, tags and filters outside the message language (template_language) and
    unknown variables (rendering.TEMPLATE_VARIABLES), each with its line and what to write instead."""
    problems = template_problems(source)
    if problems:
        raise ValidationError(problems)


def _clean_variant_language(variant) -> None:
    variant.language = normalize_language(variant.language)
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", variant.language):
        raise ValidationError({"language": f"'{variant.language}' is not a language code such as it or pt-br."})


class EmailTemplate(models.Model):
    """An e-mail a marketer writes once and activities send many times."""

    slug = models.SlugField(unique=True, help_text="The name activities refer to, e.g. welcome.")
    name = models.CharField(max_length=200)
    from_email = models.CharField(max_length=200, blank=True, help_text="Leave empty for the site's default sender.")
    subject = models.CharField(max_length=300, validators=[validate_template_source])
    html_body = models.TextField(validators=[validate_template_source])
    text_body = models.TextField(
        blank=True,
        validators=[validate_template_source],
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


class EmailTemplateVariant(models.Model):
    """The same e-mail in another language; the template itself is the site's default language."""

    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE, related_name="variants")
    language = models.CharField(max_length=10, help_text="A language code such as it or pt-br.")
    subject = models.CharField(max_length=300, validators=[validate_template_source])
    html_body = models.TextField(validators=[validate_template_source])
    text_body = models.TextField(
        blank=True,
        validators=[validate_template_source],
        help_text="Leave empty to derive it from the HTML body.",
    )

    class Meta:
        ordering = ["template", "language"]
        constraints = [models.UniqueConstraint(fields=["template", "language"], name="email_variant_per_language")]

    def __str__(self):
        return f"{self.template.slug} [{self.language}]"

    def clean(self):
        _clean_variant_language(self)


class SmsContentVariant(models.Model):
    """The same SMS in another language."""

    content = models.ForeignKey(SmsContent, on_delete=models.CASCADE, related_name="variants")
    language = models.CharField(max_length=10, help_text="A language code such as it or pt-br.")
    text = models.TextField(validators=[validate_template_source])

    class Meta:
        ordering = ["content", "language"]
        constraints = [models.UniqueConstraint(fields=["content", "language"], name="sms_variant_per_language")]

    def __str__(self):
        return f"{self.content.slug} [{self.language}]"

    def clean(self):
        _clean_variant_language(self)


class Message(models.Model):
    """One e-mail or SMS to one customer: the outbox row that delivery works from."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    # Indexed below only where set: every index is written again on each status change.
    email_template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    sms_content = models.ForeignKey(
        SmsContent, null=True, blank=True, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    context = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="Values for the template beyond the customer's own (event properties, coupon...).",
    )
    source = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where it came from, e.g. activity:3/enrollment:17/step:0.",
    )
    dedupe_key = models.CharField(max_length=255)  # unique: see Meta (one index, not two)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True, help_text="The provider's own words, when it refused.")
    send_after = models.DateTimeField()
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Past this moment a message still waiting is blocked instead of sent late.",
    )
    rules = models.JSONField(
        default=dict,
        blank=True,
        help_text="Send-policy overrides of the activity that wrote it (quiet hours, caps, regions).",
    )
    resend_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resends",
        db_index=False,
        help_text="The undelivered message this one sends again.",
    )
    parts = models.PositiveSmallIntegerField(default=0, help_text="SMS parts paid for.")
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="Claims by a worker to send it; one a worker lost counts too.",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The batch claim that holds it ("sending"), if a drain claimed it: its Handover's id.
    handover_id = models.BigIntegerField(null=True, blank=True, editable=False)
    to_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
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
            ),
            # A constraint rather than unique=True, which on PostgreSQL would add a second
            # index (for LIKE) that no query uses and every write of a row pays for.
            models.UniqueConstraint(fields=["dedupe_key"], name="message_dedupe_key_unique"),
        ]
        indexes = [
            # Drains, the sweeper and the release of deferred messages look for due pending
            # rows, oldest first: the index hands them over in that order, with no sort.
            models.Index(
                fields=["send_after", "id"],
                condition=Q(status__in=["scheduled", "queued", "deferred"]),
                name="message_pending_due",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="sending"),
                name="message_sending_lease",
            ),
            # Each message row is written three times (queued, sending, sent), and each write
            # of a row adds an entry to every index whose condition it meets: the look-ups
            # below only ever ask for set values, so the rows without one stay out.
            models.Index(
                fields=["email_template"],
                condition=Q(email_template__isnull=False),
                name="message_email_template",
            ),
            models.Index(
                fields=["sms_content"],
                condition=Q(sms_content__isnull=False),
                name="message_sms_content",
            ),
            models.Index(fields=["resend_of"], condition=Q(resend_of__isnull=False), name="message_resend_of"),
            # Status reports find their message by the provider's id (never by an empty one).
            models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_provider_id",
            ),
            # Frequency caps count a customer's recent messages per channel and category.
            models.Index(
                fields=["customer", "channel", "category", "sent_at"],
                condition=Q(sent_at__isnull=False),
                name="message_sent_per_customer",
            ),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.customer} ({self.status})"

    @property
    def content(self):
        return self.email_template if self.channel == Channel.EMAIL else self.sms_content


def new_handover_id() -> int:
    """A random id, chosen before the batch is claimed, so that the claim can write it on its rows."""
    return secrets.randbits(62) + 1


class Handover(models.Model):
    """A batch of e-mails a worker hands to the backend one after another, and how far it got.

    Written in the transaction that claims the batch (whose rows carry its id, ``handover_id``),
    with its messages in the order they will go. Before each send the worker moves
    ``position`` to that message (and renews the lease) in a commit of its own; the row is
    deleted with the write that records the batch's sends. A row left past its lease is a
    worker that died: the messages before ``position`` were taken by the provider, the one
    at ``position`` may have been, and those after it never left, so they go back to the
    queue (``handovers.settle_abandoned``).

    On PostgreSQL the table is UNLOGGED (migration 0011): a commit that touches only it
    does not wait for the disk, which halves the cost of a position. A server crash empties
    it; the messages of the batches it held are then unknown (``outbox.expire_leases``).
    """

    id = models.BigIntegerField(primary_key=True, default=new_handover_id, editable=False)
    message_ids = models.JSONField(help_text="The batch's messages, in the order they are sent.")
    position = models.IntegerField(default=-1, help_text="Index of the message whose send started last.")
    lease_expires_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker sending it.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"hand-over of {len(self.message_ids)} e-mail(s) by {self.worker or 'a worker'}"


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


class SuppressionReason(models.TextChoices):
    BOUNCE = "bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    MANUAL = "manual", "Added by hand"


class Suppression(models.Model):
    """An address nothing more may be sent to on its channel (hard bounce, complaint)."""

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    address = models.CharField(max_length=254, help_text="Stored lower-case for e-mail.")
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    detail = models.TextField(blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="one_suppression_per_address")]

    def __str__(self):
        return f"{self.address} ({self.get_reason_display()})"


class SmsRate(models.Model):
    """What one SMS part costs, in credits, to a destination country ("" is every other one)."""

    country = models.CharField(
        max_length=2,
        blank=True,
        unique=True,
        help_text="ISO 3166 alpha-2 code of the destination; leave empty for the default rate.",
    )
    credits_per_part = models.DecimalField(max_digits=10, decimal_places=4)

    class Meta:
        ordering = ["country"]
        verbose_name = "SMS rate"

    def __str__(self):
        return f"{self.country or 'default'}: {self.credits_per_part} per part"


class CreditBalance(models.Model):
    """The prepaid SMS balance: one row, locked while a send is paid for."""

    credits = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.credits} credits"


class CreditEntryKind(models.TextChoices):
    PURCHASE = "purchase", "Credits added"
    SEND = "send", "SMS sent"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class CreditEntry(models.Model):
    """One movement of the SMS balance; the ledger that explains it."""

    kind = models.CharField(max_length=20, choices=CreditEntryKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=4, help_text="Negative for spending.")
    balance_after = models.DecimalField(max_digits=14, decimal_places=4)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="credit_entries"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "credit entries"

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount:+}"
