"""Postmark's quirks, beyond what anymail normalises.

Postmark reports a soft bounce (mailbox full, ...) once it has stopped retrying, and
anymail normalises it to "bounced"; the address is not bad, so it must not be
suppressed: it is "undelivered" (resend.py may try again).
"""

from ..models import Status

#: anymail's ``esp_name`` for Postmark.
ESP_NAME = "Postmark"


def adjusted_status(event, status: Status | None) -> Status | None:
    """``status`` (anymail's reading of ``event``) corrected for Postmark's soft bounce."""
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    if status == Status.BOUNCED and esp_event.get("Type") == "SoftBounce":
        return Status.UNDELIVERED
    return status
