"""Suppressed addresses: where a hard bounce or a complaint says never to send again.

The policy asks ``is_suppressed()`` before every e-mail; the status webhooks call
``suppress()`` when an ESP reports a hard bounce or a complaint.
"""

from .models import Channel, Suppression


def normalize_address(channel, address: str) -> str:
    return address.strip().lower() if channel == Channel.EMAIL else address.strip()


def is_suppressed(channel, address: str) -> bool:
    return Suppression.objects.filter(channel=channel, address=normalize_address(channel, address)).exists()


def suppress(*, channel, address: str, reason, detail: str = "", message=None) -> Suppression:
    """Suppress ``address`` on ``channel``; a second report of the same address changes nothing."""
    suppression, _ = Suppression.objects.get_or_create(
        channel=channel,
        address=normalize_address(channel, address),
        defaults={"reason": reason, "detail": detail, "message": message},
    )
    return suppression
