"""The send policy: the one place that decides whether a message may go now.

``decide()`` is asked when a message is written and again when it is delivered.
It answers send, defer until a moment, or block with a reason from ``Reason``.

This first version knows addresses and categories. Marketing messages need the
customer's consent for the channel; until the consent ledger exists, no customer
has given any, so marketing is blocked with "no consent" — the safe answer.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

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
        return Decision.block(Reason.NO_CONSENT)
    return Decision.send()
