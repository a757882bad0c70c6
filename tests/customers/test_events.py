from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from customers import signals
from customers.events import emit, process_event
from customers.models import Event
from tests import factories

pytestmark = pytest.mark.django_db


def test_emit_stores_the_event_with_its_properties():
    customer = factories.customer()
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    event = emit(customer, "order_placed", {"total": "59.90"}, occurred_at=at)

    stored = Event.objects.get(pk=event.pk)
    assert (stored.customer, stored.name, stored.properties, stored.occurred_at) == (
        customer,
        "order_placed",
        {"total": "59.90"},
        at,
    )
    assert stored.processed_at is None


def test_emit_enqueues_evaluation_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks,
):
    customer = factories.customer()
    with django_capture_on_commit_callbacks() as callbacks:
        emit(customer, "customer_registered")
        assert Event.objects.count() == 1  # stored at once, in the caller's transaction
    assert len(callbacks) == 1


def test_repeated_idempotency_key_returns_the_first_event_and_enqueues_nothing_more(
    django_capture_on_commit_callbacks,
):
    customer = factories.customer()
    with django_capture_on_commit_callbacks() as callbacks:
        first = emit(customer, "customer_registered", idempotency_key="reg-1")
        again = emit(customer, "customer_registered", {"other": 1}, idempotency_key="reg-1")

    assert again.pk == first.pk
    assert again.properties == {}
    assert Event.objects.count() == 1
    assert len(callbacks) == 1


def test_the_same_key_from_another_source_is_another_event():
    customer = factories.customer()
    first = emit(customer, "customer_registered", idempotency_key="k", source="django")
    other = emit(customer, "customer_registered", idempotency_key="k", source="shop-api")
    assert first.pk != other.pk


def test_order_placed_signal_stores_its_arguments_as_properties():
    customer = factories.customer()

    signals.order_placed.send(
        sender=None,
        customer=customer,
        order_id="1042",
        total="59.90",
        currency="EUR",
        items=[{"sku": "moka-pot", "quantity": 1}],
        idempotency_key="order:1042",
    )

    event = Event.objects.get(name="order_placed")
    assert event.properties == {
        "order_id": "1042",
        "total": "59.90",
        "currency": "EUR",
        "items": [{"sku": "moka-pot", "quantity": 1}],
    }
    assert event.idempotency_key == "order:1042"


def test_processing_an_event_marks_it_processed_and_tolerates_a_deleted_event():
    event = emit(factories.customer(), "customer_registered")
    process_event(event.pk)
    assert Event.objects.get(pk=event.pk).processed_at is not None
    process_event(event.pk + 1000)  # gone: nothing to do, no error


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ({"total": float("nan")}, "properties.total: NaN is not a JSON number"),
        ({"items": [{"price": float("inf")}]}, "properties.items[0].price: Infinity is not a JSON number"),
        ({"order": {"id": 10**5_000}}, "properties.order.id: A number of more than 4,300 digits cannot be stored"),
        ({"note": "moka\x00"}, "properties.note: Contains the NUL character (\\u0000)"),
        ({"note": "caf\udce9"}, "properties.note: Contains \\udce9, half of a UTF-16 surrogate pair"),
    ],
)
def test_emit_refuses_what_a_json_column_cannot_store_by_its_path_and_stores_nothing(properties, named):
    customer = factories.customer()

    with pytest.raises(ValidationError) as refused:
        emit(customer, "order_placed", properties)

    [message] = refused.value.messages
    assert message.startswith(named)
    assert not Event.objects.exists()


def test_emit_refuses_a_nul_in_the_idempotency_key():
    with pytest.raises(ValidationError, match="idempotency_key: Contains the NUL character"):
        emit(factories.customer(), "order_placed", idempotency_key="order\x00-1")
