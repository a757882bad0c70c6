from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from customers.events import emit, republish_stale_events
from tests import factories

pytestmark = pytest.mark.django_db


def test_only_events_unprocessed_for_longer_than_the_threshold_are_published_again():
    customer = factories.customer()
    stale = emit(customer, "customer_registered")
    processed = emit(customer, "order_placed")
    processed.processed_at = timezone.now()
    processed.save()

    assert republish_stale_events(older_than=timedelta(minutes=2)) == []  # too fresh yet
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        emit(customer, "cart_updated")  # fresh at the moment of the sweep
        assert republish_stale_events(older_than=timedelta(minutes=2)) == [stale.pk]
