"""The events HTTP API, for storefronts that are not Django (OpenAPI at /api/v1/openapi.json).

Answers: 202 with the ids of new events; 200 with the original ids when every
event repeats an idempotency key; 401 without a valid key; 422 naming every bad
field; 413 for a body over ``TRIGGERHUB_API_MAX_BODY_BYTES``; 429 past the key's
rate limit. A batch accepts its valid events and reports the rest per index.
"""

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ninja import Body, Field, NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import ConfigDict
from pydantic import ValidationError as PydanticValidationError

from customers import api_keys, storable_json
from customers.intake import FieldError, accept_events, check_event

BATCH_LIMIT = 1000


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``; a valid key is also rate limited, per minute."""

    def authenticate(self, request, token):
        api_key = api_keys.authenticate(token)
        if api_key is None:
            return None
        window = int(timezone.now().timestamp() // 60)
        counter = f"ratelimit:{api_key.key_hash[:16]}:{window}"
        cache.add(counter, 0, timeout=120)
        if cache.incr(counter) > api_key.rate_limit_per_minute:
            raise RateLimited(60 - int(timezone.now().timestamp()) % 60)
        if api_key.last_used_at is None or (timezone.now() - api_key.last_used_at).total_seconds() > 60:
            type(api_key).objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        return api_key


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = max(1, retry_after)


class EventsParser(Parser):
    """JSON with each number no JSON column holds (NaN, 1e400, 5,000 digits) kept as written.

    Python's json reads NaN and Infinity, turns 1e400 into infinity, and fails the whole
    body on an integer past its digit limit; kept as ``UnstorableNumber``, each is named
    by its field and the index of its event, and the rest of a batch goes in.
    """

    def parse_body(self, request):
        return json.loads(request.body, **storable_json.JSON_NUMBER_HOOKS)


api = NinjaAPI(
    title="TriggerHub events API",
    version="1",
    description=__doc__,
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ApiKeyAuth(),
    parser=EventsParser(),
)


class CustomerIn(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently lost

    external_id: str | None = Field(None, max_length=100, description="The storefront's id of the customer.")
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40, description="E.164, or national with country.")
    country: str | None = Field(None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2.")
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    language: str | None = Field(None, max_length=35, description="BCP 47, e.g. it or pt-BR.")


class EventIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="e.g. order_placed, cart_updated, or any name of yours.",
    )
    customer: CustomerIn
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(None, description="With a time zone offset; default: now.")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200, description="A repeated key stores nothing new and returns the first id."
    )


class FieldErrorOut(Schema):
    field: str
    message: str


class EventAccepted(Schema):
    id: int
    status: str = Field(..., description="'accepted' (new) or 'duplicate' (repeated idempotency key).")


class ErrorsOut(Schema):
    errors: list[FieldErrorOut]


class BatchIn(Schema):
    events: list[Any] = Field(..., description=f"Up to {BATCH_LIMIT} events, each an EventIn.")


class BatchResult(Schema):
    index: int
    status: str = Field(..., description="accepted, duplicate or rejected")
    id: int | None = None
    errors: list[FieldErrorOut] = []


class BatchOut(Schema):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchResult]


def _pydantic_errors(errors, prefix="") -> list[FieldError]:
    found = []
    for error in errors:
        path = [str(part) for part in error["loc"] if part not in ("body", "payload", "event")]
        message = error["msg"].removeprefix("Value error, ")
        found.append(FieldError(prefix + ".".join(path) if path else prefix.rstrip(".") or "body", message))
    return found


def _as_dicts(errors):
    return [{"field": e.field, "message": e.message} for e in errors]


def _errors_body(errors):
    return {"errors": _as_dicts(errors)}


def _check(raw, prefix=""):
    """Every problem of one submitted event: what no JSON column stores, its shape and its meaning."""
    if not isinstance(raw, dict):
        return None, [FieldError(prefix.rstrip(".") or "body", "Each event must be a JSON object.")]
    unstorable = [FieldError(prefix + problem.path, problem.message) for problem in storable_json.problems_in(raw)]
    if not unstorable:
        return _check_fields(raw, prefix)
    # The rest is checked with stand-ins for those parts, leaving out what that says
    # again about a field already named.
    _, more = _check_fields(storable_json.with_stand_ins(raw), prefix)
    named = {error.field for error in unstorable}
    return None, unstorable + [error for error in more if error.field not in named]


def _check_fields(raw, prefix):
    """The problems of an event's fields: their shape (pydantic) and their meaning (intake)."""
    try:
        parsed = EventIn.model_validate(raw)
    except PydanticValidationError as exc:
        errors = _pydantic_errors(exc.errors(), prefix)
        # Still check what can be checked, so the answer names every bad field at once.
        customer = raw.get("customer") if isinstance(raw.get("customer"), dict) else {}
        occurred_at = raw.get("occurred_at")
        _, more = check_event(
            {
                "name": "",
                "customer": {k: v for k, v in customer.items() if isinstance(v, str)},
                "occurred_at": _datetime_or_none(occurred_at),
            },
            prefix=prefix,
        )
        named = {error.field for error in errors}
        errors += [e for e in more if e.field not in named and e.field != f"{prefix}customer"]
        return None, errors
    return check_event(parsed.model_dump(), prefix=prefix)


def _datetime_or_none(value) -> datetime | None:
    """``value`` read as a datetime for checking its offset, if it is one (else pydantic named it)."""
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # "2026-13-01T00:00:00Z": well formed, not a date
        return None


def _schema_of(model) -> dict:
    """``model``'s JSON schema with its nested models written inline, for openapi_extra."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return inline(schema)


def _request_body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@api.post(
    "/events",
    response={200: EventAccepted, 202: EventAccepted, 422: ErrorsOut},
    summary="Send one event",
    openapi_extra=_request_body(_schema_of(EventIn)),
)
def post_event(request, event: Any = Body(...)):
    checked, errors = _check(event)
    if errors:
        return Status(422, _errors_body(errors))
    [outcome] = accept_events([(0, checked)], source=request.auth.name)
    if outcome.created:
        return Status(202, {"id": outcome.event_id, "status": "accepted"})
    return Status(200, {"id": outcome.event_id, "status": "duplicate"})


@api.post(
    "/events/batch",
    response={200: BatchOut, 202: BatchOut, 422: BatchOut | ErrorsOut},
    summary=f"Send up to {BATCH_LIMIT} events",
    openapi_extra=_request_body(
        {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "maxItems": BATCH_LIMIT, "items": _schema_of(EventIn)}},
        }
    ),
)
def post_batch(request, batch: BatchIn = Body(...)):
    if len(batch.events) > BATCH_LIMIT:
        return Status(
            422,
            _errors_body(
                [FieldError("events", f"A batch holds at most {BATCH_LIMIT} events, not {len(batch.events)}.")]
            ),
        )
    results = [None] * len(batch.events)
    checked = []
    for index, raw in enumerate(batch.events):
        event, errors = _check(raw, prefix=f"events[{index}].")
        if errors:
            results[index] = {"index": index, "status": "rejected", "errors": _as_dicts(errors)}
        else:
            checked.append((index, event))
    for outcome in accept_events(checked, source=request.auth.name):
        results[outcome.index] = {
            "index": outcome.index,
            "id": outcome.event_id,
            "status": "accepted" if outcome.created else "duplicate",
        }
    counts = {status: sum(r["status"] == status for r in results) for status in ("accepted", "duplicate", "rejected")}
    body = {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": results,
    }
    if counts["accepted"]:
        return Status(202, body)
    if counts["duplicate"]:
        return Status(200, body)
    return Status(422, body)


@api.exception_handler(NinjaValidationError)
def validation_failed(request, exc):
    return api.create_response(request, _errors_body(_pydantic_errors(exc.errors)), status=422)


@api.exception_handler(RequestDataTooBig)
def body_too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(
        request,
        {"errors": [{"field": "body", "message": f"The body is over {limit} bytes; send smaller batches."}]},
        status=413,
    )


@api.exception_handler(RateLimited)
def rate_limited(request, exc):
    response = api.create_response(
        request,
        {"errors": [{"field": "Authorization", "message": "Too many requests for this key; slow down."}]},
        status=429,
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    return api.create_response(
        request,
        {
            "errors": [
                {
                    "field": "Authorization",
                    "message": "Give a valid, unrevoked API key as 'Authorization: Bearer <key>'.",
                }
            ]
        },
        status=401,
    )


@api.exception_handler(HttpError)
def http_error(request, exc):
    return api.create_response(request, {"errors": [{"field": "body", "message": str(exc)}]}, status=exc.status_code)
