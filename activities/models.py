from django.core.exceptions import ValidationError
from django.db import models

from customers.models import Customer, Event
from messaging.models import Category, Channel, EmailTemplate, SmsContent
from messaging.policy import SendRules


class ActivityStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


class Reentry(models.TextChoices):
    ONCE = "once", "Once per customer, ever"
    ALWAYS = "always", "Every time the trigger fires"


class StepType(models.TextChoices):
    SEND = "send", "Send a message"


class Activity(models.Model):
    """A dialog activity: when an event happens to a customer, do these steps."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ActivityStatus.choices, default=ActivityStatus.DRAFT)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.MARKETING)
    trigger_event = models.CharField(
        max_length=100, db_index=True, help_text="The event name that starts it, e.g. customer_registered."
    )
    reentry = models.CharField(max_length=10, choices=Reentry.choices, default=Reentry.ONCE)
    steps = models.JSONField(
        default=list,
        help_text='A list of steps, e.g. [{"type": "send", "channel": "email", "template": "welcome"}].',
    )
    send_rules = models.JSONField(
        default=dict, blank=True,
        help_text='Overrides of the site\'s send rules for this activity\'s messages, e.g. '
        '{"send_window": {"start": "10:00", "end": "19:00", "no_weekends": true}, '
        '"caps": [{"channel": "sms", "category": "marketing", "count": 1, "days": 7}], '
        '"excluded_regions": ["Asia", "Australia"]}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "activities"

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        problems = list(step_problems(self.steps))
        if problems:
            errors["steps"] = problems
        rule_problems = SendRules.errors_in(self.send_rules)
        if rule_problems:
            errors["send_rules"] = rule_problems
        if errors:
            raise ValidationError(errors)


def step_problems(steps):
    """Every problem of a step list, in words a marketer can act on."""
    if not isinstance(steps, list) or not steps:
        yield "Give at least one step, as a list."
        return
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            yield f"Step {number} must be an object with a 'type'."
            continue
        if step.get("type") not in StepType.values:
            yield f"Step {number}: unknown type {step.get('type')!r}; known: {', '.join(StepType.values)}."
            continue
        channel = step.get("channel")
        if channel == Channel.EMAIL:
            if not EmailTemplate.objects.filter(slug=step.get("template")).exists():
                yield f"Step {number}: there is no e-mail template {step.get('template')!r}."
        elif channel == Channel.SMS:
            if not SmsContent.objects.filter(slug=step.get("content")).exists():
                yield f"Step {number}: there is no SMS content {step.get('content')!r}."
        else:
            yield f"Step {number}: channel must be 'email' or 'sms', not {channel!r}."


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"


class Enrollment(models.Model):
    """One customer going through one activity, once per occurrence."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="enrollments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrollments")
    occurrence_key = models.CharField(
        max_length=100, help_text="'once' for once-ever activities, else what makes this occurrence unique."
    )
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=10, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    current_step = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "customer", "occurrence_key"], name="enrollment_once_per_occurrence"
            )
        ]

    def __str__(self):
        return f"{self.customer} in {self.activity} ({self.occurrence_key})"
