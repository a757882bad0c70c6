"""Dialog activities: when something happens to a customer (trigger), if they fit (target),
do these steps. An activity's definition lives in versions; enrollments run on the
version they started on."""

import re

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q

from customers.models import Customer, Event
from messaging.models import Category


class ActivityStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


class Reentry(models.TextChoices):
    ONCE = "once", "Once per customer, ever"
    AFTER_DAYS = "after_days", "Again after some days"
    ALWAYS = "always", "Every time the trigger fires"


class TriggerType(models.TextChoices):
    EVENT = "event", "An event"
    DATE = "date", "A date of the customer's"
    THRESHOLD = "threshold", "A figure crossing a line"


#: What a version freezes: everything that decides what an enrollment does.
VERSIONED_FIELDS = ("category", "trigger", "target", "goal", "steps", "send_rules", "reentry", "reentry_days")


class Activity(models.Model):
    """A dialog activity. Its definition is edited here; ``ActivityVersion`` keeps each one that ran."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ActivityStatus.choices, default=ActivityStatus.DRAFT)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.MARKETING)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Not before this moment (optional).")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Not after this moment (optional).")
    priority = models.IntegerField(default=0, help_text="Higher first, when one event starts several.")
    trigger = models.JSONField(
        default=dict,
        encoder=DjangoJSONEncoder,
        help_text='When it starts, e.g. {"type": "event", "event": "cart_updated", "where": [...]}.',
    )
    trigger_event = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        editable=False,
        help_text="The trigger's event name (event triggers), kept for fast look-up.",
    )
    target = models.JSONField(default=list, blank=True, help_text="Conditions the customer must meet.")
    goal = models.JSONField(
        default=dict,
        blank=True,
        help_text='An event that ends the enrollment as converted, e.g. {"event": "order_placed"}.',
    )
    reentry = models.CharField(max_length=10, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveIntegerField(null=True, blank=True, help_text="For re-entry after days.")
    steps = models.JSONField(
        default=list,
        help_text='A list of steps, e.g. [{"type": "send", "channel": "email", "template": "welcome"}].',
    )
    send_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text="Overrides of the site's send rules for this activity's messages, e.g. "
        '{"send_window": {"start": "10:00", "end": "19:00", "no_weekends": true}, '
        '"caps": [{"channel": "sms", "category": "marketing", "count": 1, "days": 7}], '
        '"excluded_regions": ["Asia", "Australia"]}.',
    )
    version = models.PositiveIntegerField(default=0, editable=False, help_text="The current version number.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]
        verbose_name_plural = "activities"

    def __str__(self):
        return self.name

    def definition(self) -> dict:
        return {name: getattr(self, name) for name in VERSIONED_FIELDS}

    def clean(self):
        """Every problem of the definition, shown on the field it belongs to."""
        from . import spec

        self._derive_trigger_event()
        errors = {}
        for problem in spec.definition_problems(self.definition()):
            field = re.match(r"\w*", problem).group()
            if field == "reentry" and problem.startswith("reentry:"):
                field = "reentry_days"  # "reentry: after_days needs days"
            errors.setdefault(field if field in VERSIONED_FIELDS else "__all__", []).append(problem)
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        """Save, and freeze a new version when the definition changed (running enrollments keep theirs)."""
        self._derive_trigger_event()
        with transaction.atomic():
            super().save(*args, **kwargs)
            current = self.versions.filter(number=self.version).first() if self.version else None
            if current is None or current.definition != self.definition():
                number = self.version + 1
                ActivityVersion.objects.create(activity=self, number=number, definition=self.definition())
                Activity.objects.filter(pk=self.pk).update(version=number)
                self.version = number

    def _derive_trigger_event(self):
        if not self.trigger and self.trigger_event:
            self.trigger = {"type": TriggerType.EVENT, "event": self.trigger_event}
        self.trigger_event = self.trigger.get("event", "") if self.trigger.get("type") == TriggerType.EVENT else ""

    def current_version(self) -> "ActivityVersion":
        return self.versions.get(number=self.version)


class ActivityVersion(models.Model):
    """One frozen definition of an activity; enrollments point at the one they started on."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["activity", "-number"]
        constraints = [models.UniqueConstraint(fields=["activity", "number"], name="one_version_number_per_activity")]

    def __str__(self):
        return f"{self.activity} v{self.number}"

    @property
    def steps(self) -> list:
        return self.definition["steps"]


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "Running"
    WAITING = "waiting", "Waiting"
    HELD = "held", "Held (activity paused)"
    COMPLETED = "completed", "Completed"
    CONVERTED = "converted", "Converted (reached the goal)"
    EXITED = "exited", "Exited"


#: States an enrollment can still move on from.
OPEN_STATES = (EnrollmentState.ACTIVE, EnrollmentState.WAITING, EnrollmentState.HELD)


class Enrollment(models.Model):
    """One customer going through one activity, once per occurrence."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(ActivityVersion, on_delete=models.PROTECT, related_name="enrollments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrollments")
    occurrence_key = models.CharField(
        max_length=100, help_text="'once' for once-ever activities, else what makes this occurrence unique."
    )
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=10, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    position = models.JSONField(
        default=list,
        blank=True,
        help_text="Where in the steps it stands: indices, with 'then'/'else' into branches.",
    )
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="When a wait ends.")
    waiting_for = models.JSONField(
        default=dict, blank=True, help_text="The event a wait-for-event step waits for, and what then."
    )
    context = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="Values its messages may use: the trigger's event, coupons issued...",
    )
    history = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "customer", "occurrence_key"], name="enrollment_once_per_occurrence"
            )
        ]
        indexes = [
            # The clock looks for waits that ended.
            models.Index(fields=["next_run_at"], condition=Q(state="waiting"), name="enrollment_due"),
            # Goals and wait-for-event look up a customer's open enrollments.
            models.Index(
                fields=["customer", "state"],
                condition=Q(state__in=["active", "waiting", "held"]),
                name="enrollment_open_per_customer",
            ),
        ]

    def __str__(self):
        return f"{self.customer} in {self.activity} ({self.occurrence_key})"

    @property
    def current_step(self) -> int:
        """The top-level step it stands at (for lists and reports)."""
        return self.position[0] if self.position else 0


class CouponPool(models.Model):
    """Codes bought or generated elsewhere, handed out one per enrollment."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)

    def __str__(self):
        return self.name


class Coupon(models.Model):
    """A unique code given to one customer by one enrollment."""

    code = models.CharField(max_length=64, unique=True)
    pool = models.ForeignKey(CouponPool, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    enrollment = models.ForeignKey(Enrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="coupons")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="coupons")
    step_key = models.CharField(max_length=50, blank=True, help_text="The step that issued it.")
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "step_key"],
                condition=Q(enrollment__isnull=False),
                name="one_coupon_per_enrollment_step",
            )
        ]
        indexes = [models.Index(fields=["pool"], condition=Q(enrollment__isnull=True), name="coupon_free_in_pool")]

    def __str__(self):
        return self.code


class ThresholdMark(models.Model):
    """Which side of a threshold trigger's line a customer was last seen on.

    The memory that makes a threshold fire on the crossing, not on every value beyond
    the line; no mark means the side the trigger starts from (below for "up", above for "down").
    """

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="threshold_marks")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    above = models.BooleanField(help_text="At or above the line when last seen.")
    crossings = models.PositiveIntegerField(
        default=0, help_text="Crossings in the trigger's direction so far; each is one occurrence."
    )
    updated_at = models.DateTimeField(help_text="When the customer was seen reaching this side.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["activity", "customer"], name="one_threshold_mark_per_customer")]

    def __str__(self):
        return f"{self.customer} {'above' if self.above else 'below'} the line of {self.activity}"
