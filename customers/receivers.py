"""Connects each storefront signal to ``emit()``: the signal's arguments become event properties."""

from django.dispatch import receiver

from . import signals
from .events import emit

# For each signal: the event name and the keyword arguments kept as properties.
SIGNAL_EVENTS = {
    signals.customer_registered: ("customer_registered", ()),
    signals.order_placed: ("order_placed", ("order_id", "total", "currency", "items")),
    signals.cart_updated: ("cart_updated", ("cart_id", "items", "total")),
    signals.profile_updated: ("profile_updated", ("changes",)),
}


def _emit_from_signal(signal, customer, idempotency_key=None, occurred_at=None, **kwargs):
    name, property_names = SIGNAL_EVENTS[signal]
    properties = {key: kwargs[key] for key in property_names if key in kwargs}
    return emit(
        customer,
        name,
        properties,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
    )


for _signal in SIGNAL_EVENTS:
    receiver(_signal, dispatch_uid=f"customers.emit.{SIGNAL_EVENTS[_signal][0]}")(_emit_from_signal)
