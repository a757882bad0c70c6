"""The send policy: the one place that decides whether a message may go now.

``decide()`` is asked when a message is written and again when it is delivered.
It answers send, defer until a moment, or block with a reason from ``Reason``.

This version knows addresses, categories and consent: a marketing message needs
the customer's consent for its channel, read from the consent ledger at the moment
of the decision, so a revocation stops what is still waiting.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from customers.models import ConsentAction

from .models import Category, Channel, Reason


class Action(models.TextChoices):
    SEND = "send", "Send"
    DEFER = "defer", "Defer"
    BLOCK = "block", "Block"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason | str = ""
    until: datetime | None = None

    @classmethod
    def send(cls):
        return cls(Action.SEND)

    @classmethod
    def block(cls, reason):
        return cls(Action.BLOCK, reason)

    @classmethod
    def defer(cls, until, reason):
        return cls(Action.DEFER, reason, until)


def address_of(customer, channel) -> str:
    return customer.email if channel == Channel.EMAIL else customer.phone


def decide(customer, channel, category, at: datetime) -> Decision:
    address = address_of(customer, channel)
    if not address:
        return Decision.block(Reason.NO_ADDRESS)
    if channel == Channel.EMAIL:
        try:
            validate_email(address)
        except ValidationError:
            return Decision.block(Reason.INVALID_ADDRESS)
    if category == Category.MARKETING:
        state = customer.consent_state(channel)
        if state == ConsentAction.REVOKED:
            return Decision.block(Reason.OPTED_OUT)
        if state != ConsentAction.GRANTED:
            return Decision.block(Reason.NO_CONSENT)
    return Decision.send()
