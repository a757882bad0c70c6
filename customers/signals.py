"""The signals a Django storefront sends. Each is a thin wrapper over ``events.emit()``.

Send them inside the transaction that saves what happened; the event is stored in it
and evaluated only once it commits::

    customer_registered.send(sender=MyView, customer=customer)
    order_placed.send(sender=MyView, customer=customer, order_id="1042",
                      total="59.90", currency="EUR", items=[...])

Every signal also takes ``idempotency_key`` (a repeated key stores nothing new) and
``occurred_at`` (an aware datetime; default now).
"""

from django.dispatch import Signal

#: customer
customer_registered = Signal()
#: customer, order_id, total, currency, items
order_placed = Signal()
#: customer, cart_id, items, total
cart_updated = Signal()
#: customer, changes ({field: (old, new)}; attributes as "attributes.<name>").
#: Sent by Customer.save() itself whenever a tracked field changes.
profile_updated = Signal()

#: Sent in the worker when a stored event is ready to be evaluated (event).
#: ``activities`` connects to it; ``customers`` knows nothing of what listens.
event_ready = Signal()
