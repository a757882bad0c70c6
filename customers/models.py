import copy
import re
import zoneinfo
from functools import lru_cache

import pytz
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import ExtractDay, ExtractMonth, Lower

from . import phones, storable_json

#: Customer fields whose changes are reported as ``profile_updated`` events.
TRACKED_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "language",
    "timezone",
    "date_of_birth",
    "attributes",
)
_LANGUAGE_TAG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z]{4})?(-([a-zA-Z]{2}|\d{3}))?$")
#: The fields ``local_zone`` is derived from.
LOCAL_ZONE_SOURCES = ("timezone", "phone", "country")


@lru_cache(maxsize=1)
def _known_zones() -> frozenset:
    return frozenset(zoneinfo.available_timezones())


#: Where most of a country's people live, for countries whose first zone in pytz's list
#: (east to west) is not it. phonenumbers gives a mobile's zones alphabetically: neither
#: order says which of an Australian mobile's eight zones its owner most likely is in.
_MOST_POPULOUS_ZONE = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
}


def local_zone_for(*, timezone: str = "", phone: str = "", country: str = "") -> str:
    """The one zone a customer's dates come round in: "" when nothing is known (the site default then).

    The zone set by hand; else one of the phone number's zones, else one of the
    country's. Of several, the country's most populous zone if it is one of them,
    else the first of them in the country's list (the customer's country, else the
    number's). Date triggers group customers by it, so it is stored
    (``Customer.local_zone``) rather than derived in each query.
    """
    known = _known_zones()
    if timezone in known:
        return timezone
    country = (country or "").upper() or (phones.country_of(phone) if phone else "")
    country_zones = list(pytz.country_timezones[country]) if country in pytz.country_timezones else []
    candidates = [zone for zone in (phones.time_zones(phone) if phone else []) or country_zones if zone in known]
    if len(candidates) <= 1:
        return candidates[0] if candidates else ""
    if _MOST_POPULOUS_ZONE.get(country) in candidates:
        return _MOST_POPULOUS_ZONE[country]
    return next((zone for zone in country_zones if zone in candidates), candidates[0])


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


class Customer(models.Model):
    """One person TriggerHub may write to, as the storefront knows them."""

    external_id = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="The storefront's own id for this customer.",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
    )
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True, db_index=True, help_text="E.164, e.g. +12125550100")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, db_index=True, help_text="ISO 3166-1 alpha-2")
    language = models.CharField(max_length=35, blank=True, help_text="BCP 47, e.g. it or pt-BR")
    timezone = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="IANA zone, set by hand. Leave empty to derive it from the phone number or country.",
    )
    local_zone = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        editable=False,
        help_text="The zone date triggers use: derived on save from the zone, phone and country; empty for "
        "the site default.",
    )
    date_of_birth = models.DateField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Birthday and anniversary triggers look customers up by month and day.
            models.Index(ExtractMonth("date_of_birth"), ExtractDay("date_of_birth"), name="customer_birthday"),
            # The events API finds customers by e-mail address, whatever its case.
            models.Index(Lower("email"), name="customer_email_lower"),
            # The audience estimate counts customers by country and age, and their addresses,
            # without reading their rows (bench/audience.py).
            models.Index(
                fields=["country", "date_of_birth"], include=["id", "phone", "email"], name="customer_country_birth"
            ),
        ]

    def __str__(self):
        return self.email or self.phone or self.external_id or f"customer {self.pk}"

    @classmethod
    def from_db(cls, db, field_names, values):
        customer = super().from_db(db, field_names, values)
        customer._loaded = customer._tracked_values()
        return customer

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._loaded = self._tracked_values()

    def _tracked_values(self) -> dict:
        # Deep copies of what can change in place (attributes): an attribute list changed
        # in place must still differ from its old self. Strings and dates cannot.
        values = self.__dict__
        return {
            name: copy.deepcopy(values[name]) if isinstance(values[name], (dict, list)) else values[name]
            for name in TRACKED_FIELDS
            if name in values
        }

    def changes(self) -> dict:
        """What changed since the row was loaded: {field: (old, new)}, attributes per key."""
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            return {}
        # A field deferred at load (only()/defer()) and set since: its old value is in the row.
        unloaded = [name for name in TRACKED_FIELDS if name not in loaded and name in self.__dict__]
        if unloaded and self.pk is not None:
            old_values = type(self)._base_manager.filter(pk=self.pk).values(*unloaded).first() or {}
            loaded = {**loaded, **old_values}
        changes = {}
        for name, old in loaded.items():
            new = getattr(self, name)
            if name == "attributes":
                new = new or {}
                for key in sorted(set(old) | set(new)):
                    if old.get(key) != new.get(key):
                        changes[f"attributes.{key}"] = (old.get(key), new.get(key))
            elif old != new:
                changes[name] = (old, new)
        return changes

    def save(self, *args, **kwargs):
        from . import signals  # signals' receivers import this module

        changes = self.changes()
        update_fields = kwargs.get("update_fields")
        sources = set(LOCAL_ZONE_SOURCES)
        if not self.get_deferred_fields() & sources and (update_fields is None or set(update_fields) & sources):
            self.refresh_local_zone()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "local_zone"}
        super().save(*args, **kwargs)
        self._loaded = self._tracked_values()
        if changes:
            signals.profile_updated.send(sender=Customer, customer=self, changes=changes)

    def clean(self):
        errors = {}
        self.country = (self.country or "").upper()
        if self.country and self.country not in pytz.country_names:
            errors["country"] = f"'{self.country}' is not a country code (ISO 3166-1 alpha-2, e.g. US or IT)."
        if self.phone:
            try:
                self.phone = phones.normalize(self.phone, self.country or None)
            except ValidationError as exc:
                errors["phone"] = exc.messages
        if self.language and not _LANGUAGE_TAG.match(self.language):
            errors["language"] = f"'{self.language}' is not a language tag such as it or pt-BR."
        if self.timezone and self.timezone not in zoneinfo.available_timezones():
            errors["timezone"] = f"'{self.timezone}' is not an IANA time zone such as Europe/Rome."
        if not isinstance(self.attributes, dict):
            errors["attributes"] = "Attributes must be an object of names and values."
        elif unstorable := storable_json.messages_about(self.attributes):
            errors["attributes"] = unstorable
        if errors:
            raise ValidationError(errors)

    def refresh_local_zone(self) -> str:
        """Derive ``local_zone`` again (``save()`` does; bulk inserts and updates call it themselves)."""
        self.local_zone = local_zone_for(timezone=self.timezone, phone=self.phone, country=self.country)
        return self.local_zone

    @property
    def full_name(self):
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def time_zones(self) -> list[str]:
        """The zones the customer may be in, best knowledge first.

        A zone set by hand wins; else the phone number's zones; else the country's;
        else the site default.
        """
        if self.timezone:
            return [self.timezone]
        if self.phone:
            from_phone = phones.time_zones(self.phone)
            if from_phone:
                return from_phone
        if self.country and self.country in pytz.country_timezones:
            return list(pytz.country_timezones[self.country])
        return [settings.TRIGGERHUB_DEFAULT_TIMEZONE]

    def has_consent(self, channel) -> bool:
        """Whether the latest consent record for ``channel`` grants it."""
        return self.consent_state(channel) == ConsentAction.GRANTED

    def consent_state(self, channel):
        """The action of the latest consent record for ``channel``, or None if there is none.

        A customer loaded through ``with_consent_state(channel)`` answers from its row.
        """
        loaded = self.__dict__.get(consent_state_name(channel), _NOT_LOADED)
        if loaded is not _NOT_LOADED:
            return loaded
        return latest_consent(channel, self.pk).first()


_NOT_LOADED = object()


def consent_state_name(channel) -> str:
    return f"latest_{channel}_consent"


def latest_consent(channel, customer):
    """The action of ``customer``'s latest consent record for ``channel`` (a pk or an ``OuterRef``)."""
    return (
        ConsentRecord.objects.filter(customer=customer, channel=channel)
        .order_by("-recorded_at", "-pk")
        .values_list("action", flat=True)[:1]
    )


def with_consent_state(customers, channel):
    """``customers`` (a queryset) with each one's latest ``channel`` consent read in the same
    query, so that ``consent_state(channel)`` costs no query per customer."""
    return customers.annotate(**{consent_state_name(channel): Subquery(latest_consent(channel, OuterRef("pk")))})


class Event(models.Model):
    """Something that happened to a customer, stored before anything reacts to it."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=100, db_index=True)
    properties = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(
        max_length=100,
        default="django",
        help_text="Who sent it: 'django' for signals, the API key's name for the HTTP API.",
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True, help_text="When the activities finished evaluating it.")

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
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="event_unprocessed",
            ),
            # Targets and thresholds count a customer's events of a name in a window.
            models.Index(fields=["customer", "name", "occurred_at"], name="event_customer_name_time"),
        ]

    def __str__(self):
        return f"{self.name} for {self.customer}"


class ConsentAction(models.TextChoices):
    GRANTED = "granted", "Granted"
    REVOKED = "revoked", "Revoked"


class ConsentSource(models.TextChoices):
    FORM = "form", "Form"
    KEYWORD = "keyword", "SMS keyword"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    IMPORT = "import", "Import"
    BOUNCE = "bounce", "Bounce"
    COMPLAINT = "complaint", "Complaint"
    CARRIER = "carrier", "Carrier"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe (link or the provider's list-unsubscribe)"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The consent ledger is append-only: record a new grant or revocation instead.")

    def delete(self):
        raise TypeError("The consent ledger is append-only: records are never deleted.")


class ConsentRecord(models.Model):
    """One grant or revocation of consent, as it happened. Never edited, never deleted."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="consent_records")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    action = models.CharField(max_length=10, choices=ConsentAction.choices)
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    evidence = models.TextField(
        blank=True, help_text="The consent wording shown, the inbound message, the provider's report..."
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    recorded_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            # The latest record of a customer's channel, its action read from the index alone.
            models.Index(
                fields=["customer", "channel", "-recorded_at", "-id"], include=["action"], name="consent_latest"
            ),
        ]

    def __str__(self):
        return f"{self.channel} {self.action} ({self.source}) at {self.recorded_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("The consent ledger is append-only: record a new grant or revocation instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The consent ledger is append-only: records are never deleted.")


class Segment(models.Model):
    """A named, static list of customers."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    customers: "models.ManyToManyField[Customer, SegmentMembership]" = models.ManyToManyField(
        Customer, through="SegmentMembership", related_name="segments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_once")]


class ApiKey(models.Model):
    """A key a storefront uses for the events API. Only its SHA-256 is stored."""

    name = models.CharField(max_length=100, unique=True, help_text="Also the source of the events it sends.")
    prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600, help_text="Requests a minute this key may make; more get 429."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
