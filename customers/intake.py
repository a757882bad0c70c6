"""Events from outside Django (the HTTP API), many at a time, checked field by field.

``check_event()`` turns one submitted event into either clean values or a list of
field errors a developer can act on. ``accept_events()`` stores the clean ones in
set-based steps — one query per kind of customer look-up, one bulk insert of new
customers, one of events — and publishes their evaluation as one task.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytz
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from triggerhub.db import insert_or_get_existing
from triggerhub.queueing import publish_on_commit

from . import events, phones, tasks
from .models import Customer, Event

#: Customer fields an event may set or update, besides the identifying ones.
PROFILE_FIELDS = ("email", "phone", "country", "first_name", "last_name", "language")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class CheckedEvent:
    name: str
    customer: dict  # clean values: external_id, email, phone, country, ...
    properties: dict
    occurred_at: datetime | None
    idempotency_key: str | None


@dataclass
class Outcome:
    index: int
    event_id: int | None = None
    created: bool = False
    errors: list[FieldError] = field(default_factory=list)


def check_event(data: dict, *, prefix: str = "") -> tuple[CheckedEvent | None, list[FieldError]]:
    """Check the meaning of one structurally valid event (as the API schema parsed it)."""
    errors = []
    customer = {key: value for key, value in (data.get("customer") or {}).items() if value not in (None, "")}
    where = f"{prefix}customer"
    if not any(customer.get(key) for key in ("external_id", "email", "phone")):
        errors.append(FieldError(where, "Identify the customer with external_id, email or phone."))
    country = customer.get("country")
    if country is not None:
        country = customer["country"] = country.upper()
        if country not in pytz.country_names:
            errors.append(
                FieldError(f"{where}.country", f"'{country}' is not a country code (ISO 3166-1, e.g. US or IT).")
            )
            country = None
    if "email" in customer:
        customer["email"] = customer["email"].strip().lower()
        try:
            validate_email(customer["email"])
        except ValidationError:
            errors.append(FieldError(f"{where}.email", f"'{customer['email']}' is not an e-mail address."))
    if "phone" in customer:
        try:
            customer["phone"] = phones.normalize(customer["phone"], country)
        except ValidationError as exc:
            errors.append(FieldError(f"{where}.phone", " ".join(exc.messages)))
    occurred_at = data.get("occurred_at")
    if occurred_at is not None:
        occurred_at, problem = _as_utc(occurred_at)
        if problem:
            errors.append(FieldError(f"{prefix}occurred_at", problem))
    if errors:
        return None, errors
    return CheckedEvent(
        name=data["name"],
        customer=customer,
        properties=data.get("properties") or {},
        occurred_at=occurred_at,
        idempotency_key=data.get("idempotency_key"),
    ), []


def _as_utc(moment: datetime) -> tuple[datetime | None, str]:
    """``moment`` in UTC, or the reason it is not a real moment."""
    if timezone.is_naive(moment):
        return None, "Give a time zone offset, e.g. 2026-05-01T12:00:00Z or +02:00."
    # Real offsets run from -12:00 to +14:00; PostgreSQL refuses anything past ±15:59.
    offset = moment.utcoffset()
    assert offset is not None  # not naive
    if abs(offset) > timedelta(hours=14):
        return None, f"{offset} is not a real time zone offset (they run from -12:00 to +14:00)."
    try:
        return moment.astimezone(UTC), ""
    except OverflowError:
        return None, "That moment is out of range."


def accept_events(checked: list[tuple[int, CheckedEvent]], *, source: str) -> list[Outcome]:
    """Store the events (index, checked event) for ``source``; repeated keys return the first event."""
    if not checked:
        return []
    with transaction.atomic():
        customers = _resolve_customers([event.customer for _, event in checked])
        outcomes, new_events = [], []
        seen_keys = _existing_event_ids(source, [e.idempotency_key for _, e in checked if e.idempotency_key])
        pending: dict[str, list[Outcome]] = {}  # idempotency key -> the outcomes waiting for its event
        now = timezone.now()
        for (index, event), customer in zip(checked, customers):
            key = event.idempotency_key
            outcome = Outcome(index)
            outcomes.append(outcome)
            if key is not None and key in seen_keys:
                outcome.event_id = seen_keys[key]
                continue
            if key is not None and key in pending:  # the same key twice in one batch
                pending[key].append(outcome)
                continue
            row = Event(
                customer=customer,
                name=event.name,
                properties=event.properties,
                occurred_at=event.occurred_at or now,
                source=source,
                idempotency_key=key,
            )
            new_events.append((row, outcome))
            if key is not None:
                pending[key] = [outcome]
        _insert_events(new_events, source)
        for waiting in pending.values():
            for outcome in waiting[1:]:
                outcome.event_id = waiting[0].event_id
        created_ids = [outcome.event_id for _, outcome in new_events if outcome.created]
        if created_ids:
            publish_on_commit(tasks.process_events, created_ids, on_failure=events.process_events)
    return outcomes


def _existing_event_ids(source, keys) -> dict:
    if not keys:
        return {}
    return dict(Event.objects.filter(source=source, idempotency_key__in=set(keys)).values_list("idempotency_key", "pk"))


def _insert_events(new_events, source):
    rows = [row for row, _ in new_events]
    try:
        with transaction.atomic():
            Event.objects.bulk_create(rows)
        for row, outcome in new_events:
            outcome.event_id, outcome.created = row.pk, True
    except IntegrityError:
        # A concurrent request stored one of the keys first: go one by one.
        for row, outcome in new_events:
            row.pk = None
            row._state.adding = True
            stored, outcome.created = insert_or_get_existing(row, source=source, idempotency_key=row.idempotency_key)
            outcome.event_id = stored.pk


def _identity(values: dict):
    for key in ("external_id", "email", "phone"):
        if values.get(key):
            return key, values[key]
    raise ValueError("checked customers always have an identity")


def _resolve_customers(submitted: list[dict]) -> list[Customer]:
    """The customer of each submitted identity: found (and updated) or created, in bulk."""
    identities = [_identity(values) for values in submitted]
    wanted = {kind: {value for k, value in identities if k == kind} for kind in ("external_id", "email", "phone")}
    found = {}
    if wanted["external_id"]:
        for customer in Customer.objects.filter(external_id__in=wanted["external_id"]):
            found[("external_id", customer.external_id)] = customer
    if wanted["email"]:
        by_email = Customer.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=wanted["email"])
        for customer in by_email.order_by("created_at"):
            found.setdefault(("email", customer.email_lower), customer)
    if wanted["phone"]:
        for customer in Customer.objects.filter(phone__in=wanted["phone"]).order_by("created_at"):
            found.setdefault(("phone", customer.phone), customer)

    to_create = {}
    for identity, values in zip(identities, submitted):
        if identity in found:
            _update_profile(found[identity], values)
        elif identity not in to_create:
            to_create[identity] = Customer(
                **{k: v for k, v in values.items() if k in PROFILE_FIELDS + ("external_id",)}
            )
    if to_create:
        for customer in to_create.values():
            customer.refresh_local_zone()  # bulk_create skips save()
        try:
            with transaction.atomic():
                Customer.objects.bulk_create(to_create.values())
        except IntegrityError:
            # An external_id created meanwhile by a concurrent request: one by one.
            for identity, customer in to_create.items():
                customer.pk = None
                customer._state.adding = True
                to_create[identity], _ = insert_or_get_existing(customer, external_id=customer.external_id)
        found.update(to_create)
    return [found[identity] for identity in identities]


def _update_profile(customer, values):
    changed = False
    for name in PROFILE_FIELDS:
        if name in values and getattr(customer, name) != values[name]:
            setattr(customer, name, values[name])
            changed = True
    if changed:
        customer.save()  # fires profile_updated with what changed
