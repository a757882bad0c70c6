"""E-mail providers (ESPs), through django-anymail: its normalised tracking events as our reports.

anymail's views (``/anymail/<esp>/tracking/``, basic auth = ``ANYMAIL_WEBHOOK_SECRET``)
authenticate each ESP's webhook and send ``anymail.signals.tracking`` with an event in
anymail's fixed vocabulary; messaging/webhooks.py receives it and hands it here. An
ESP whose reports anymail does not normalise as we need has a module of its own
(``postmark.py``), listed in ``QUIRKS``.
"""

from .. import status
from ..models import Channel, Status
from . import postmark

#: anymail's normalized ``event_type`` values; None: a report with no bearing on delivery.
ANYMAIL_EVENT_TYPES = {
    "queued": Status.SENT,
    "sent": Status.SENT,
    "rejected": Status.FAILED,  # the ESP refuses the address or content: the same answer again
    "failed": Status.UNDELIVERED,  # the ESP took it and could not get it out
    "bounced": Status.BOUNCED,
    "deferred": Status.DEFERRED,  # recorded only: never moves a message (see status.RANK)
    "delivered": Status.DELIVERED,
    "autoresponded": Status.DELIVERED,
    "opened": Status.DELIVERED,
    "clicked": Status.DELIVERED,
    "complained": Status.DELIVERED,
    "unsubscribed": None,
    "subscribed": None,
    "unknown": None,
}

#: anymail event types that say what the recipient asked for.
RECIPIENT_ACTIONS = {
    "complained": status.RecipientAction.COMPLAINED,
    "unsubscribed": status.RecipientAction.UNSUBSCRIBED,
}

#: Per ESP (anymail's ``esp_name``): how its event's status is corrected.
QUIRKS = {
    postmark.ESP_NAME: postmark.adjusted_status,
}


def anymail_status(event_type: str) -> Status | None:
    return ANYMAIL_EVENT_TYPES.get(event_type)


def report_from(event, esp_name: str) -> status.StatusReport:
    """One anymail tracking event as a report in our words."""
    reported = anymail_status(event.event_type)
    quirk = QUIRKS.get(esp_name)
    if quirk is not None:
        reported = quirk(event, reported)
    said = "; ".join(str(part) for part in (event.description, event.mta_response) if part)
    description = f"{esp_name} {event.event_type}" + (f": {said}" if said else "")
    if event.event_type == "clicked" and event.click_url:
        description = f"{description} {event.click_url}"
    return status.StatusReport(
        channel=Channel.EMAIL,
        provider=esp_name,
        event=event.event_type,
        status=reported,
        description=description,
        provider_message_id=event.message_id or "",
        message_id=our_message_id(event.metadata),
        recipient=event.recipient or "",
        recipient_action=RECIPIENT_ACTIONS.get(event.event_type),
        occurred_at=event.timestamp,
        payload=event.esp_event,
    )


def record_tracking_event(*, event, esp_name: str):
    """Apply one anymail tracking event; None if it is not about a message of ours."""
    return status.apply_report(report_from(event, esp_name))


def our_message_id(metadata) -> int | None:
    """Our message id, sent as anymail metadata ``triggerhub_message`` (or the
    ``X-TriggerHub-Message`` header, where an ESP echoes headers as metadata)."""
    metadata = metadata or {}
    ours = metadata.get("triggerhub_message") or metadata.get("X-TriggerHub-Message")
    try:
        return int(ours)
    except (TypeError, ValueError):
        return None
