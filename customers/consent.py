"""The consent ledger: every grant and revocation, appended, never changed.

Whether a customer may get marketing on a channel is the latest record for that
channel (``Customer.has_consent``), so a revocation holds for everything not yet
sent from the moment it is recorded: the send policy asks again at send time.
"""

from django.db import transaction
from django.utils import timezone

from .events import emit
from .models import ConsentAction, ConsentRecord, ConsentSource, Customer


def grant(customer: Customer, channel, source: ConsentSource, evidence: str = "", **details) -> ConsentRecord:
    """Record that ``customer`` agreed to marketing on ``channel``."""
    return _record(customer, channel, ConsentAction.GRANTED, source, evidence, **details)


def revoke(customer: Customer, channel, source: ConsentSource, evidence: str = "", **details) -> ConsentRecord:
    """Record that ``customer`` withdrew consent (or a bounce, complaint or carrier did)."""
    return _record(customer, channel, ConsentAction.REVOKED, source, evidence, **details)


def _record(customer, channel, action, source, evidence, *, ip_address=None, user_agent="", recorded_at=None):
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            customer=customer,
            channel=channel,
            action=action,
            source=source,
            evidence=evidence,
            ip_address=ip_address,
            user_agent=(user_agent or "")[:500],
            recorded_at=recorded_at or timezone.now(),
        )
        emit(customer, "consent_changed", {"channel": channel, "action": action, "source": source})
    return record
