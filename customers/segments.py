"""Static segments: named lists of customers."""

from .models import Segment, SegmentMembership


def add(segment: Segment, customers) -> int:
    """Add ``customers`` (ids or instances); those already in stay. Returns how many were new."""
    ids = {getattr(customer, "pk", customer) for customer in customers}
    already = set(
        SegmentMembership.objects.filter(segment=segment, customer_id__in=ids).values_list("customer_id", flat=True)
    )
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, customer_id=pk) for pk in ids - already], ignore_conflicts=True
    )
    return len(ids - already)


def remove(segment: Segment, customers) -> int:
    """Remove ``customers`` from ``segment``. Returns how many were in it."""
    ids = {getattr(customer, "pk", customer) for customer in customers}
    deleted, _ = SegmentMembership.objects.filter(segment=segment, customer_id__in=ids).delete()
    return deleted
