from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class Customer(models.Model):
    """One person TriggerHub may write to, as the storefront knows them."""

    external_id = models.CharField(
        max_length=100, null=True, blank=True, unique=True,
        help_text="The storefront's own id for this customer.",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="customer",
    )
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True, db_index=True, help_text="E.164, e.g. +12125550100")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, db_index=True, help_text="ISO 3166-1 alpha-2")
    language = models.CharField(max_length=35, blank=True, help_text="BCP 47, e.g. it or pt-BR")
    timezone = models.CharField(max_length=64, blank=True, db_index=True, help_text="IANA zone name")
    date_of_birth = models.DateField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.email or self.phone or self.external_id or f"customer {self.pk}"

    @property
    def full_name(self):
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class Event(models.Model):
    """Something that happened to a customer, stored before anything reacts to it."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=100, db_index=True)
    properties = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(
        max_length=100, default="django",
        help_text="Who sent it: 'django' for signals, the API key's name for the HTTP API.",
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    processed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the activities finished evaluating it."
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_idempotency_key_unique_per_source",
            )
        ]
        indexes = [
            # The sweeper looks for events nobody evaluated.
            models.Index(
                fields=["received_at"], condition=Q(processed_at__isnull=True),
                name="event_unprocessed",
            )
        ]

    def __str__(self):
        return f"{self.name} for {self.customer}"
