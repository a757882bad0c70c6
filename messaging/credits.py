"""Prepaid SMS credits: a balance, a cost per part by destination country, and a ledger.

When ``TRIGGERHUB_SMS_CREDITS_ENFORCED`` is on, the policy holds an SMS that cannot be
paid for (status deferred, reason "no credits"); delivery debits the balance in the
same locked transaction that approves the send, and refunds it if the provider
refuses. ``add()`` tops the balance up and releases what was held, oldest first.
"""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from customers import phones

from .models import CreditBalance, CreditEntry, CreditEntryKind, Message, Reason, SmsRate, Status


def rate_for(country: str) -> Decimal | None:
    """Credits per part to ``country``: its own rate, else the default rate, else None."""
    rates = dict(SmsRate.objects.filter(country__in=[country, ""]).values_list("country", "credits_per_part"))
    return rates.get(country, rates.get(""))


def cost_of(phone: str, parts: int) -> Decimal | None:
    rate = rate_for(phones.country_of(phone))
    return None if rate is None else rate * parts


def balance() -> Decimal:
    row = CreditBalance.objects.filter(pk=1).values_list("credits", flat=True).first()
    return row if row is not None else Decimal(0)


def shortfall(phone: str, parts: int) -> str:
    """Why ``parts`` parts to ``phone`` cannot be paid for now, or "" when they can."""
    cost = cost_of(phone, parts)
    if cost is None:
        country = phones.country_of(phone) or "this number"
        return f"no SMS rate for {country} and no default rate"
    available = balance()
    if cost > available:
        return f"needs {_plain(cost)} credits, {_plain(available)} left"
    return ""


def _plain(amount: Decimal) -> str:
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _locked_balance() -> CreditBalance:
    CreditBalance.objects.get_or_create(pk=1)
    return CreditBalance.objects.select_for_update().get(pk=1)


def _move(kind, amount: Decimal, *, message=None, note="") -> CreditEntry:
    """Change the balance by ``amount`` and write the ledger line; call inside a transaction."""
    account = _locked_balance()
    account.credits += amount
    account.save(update_fields=["credits", "updated_at"])
    return CreditEntry.objects.create(
        kind=kind, amount=amount, balance_after=account.credits, message=message, note=note
    )


def debit(message, parts: int) -> bool:
    """Pay for ``parts`` parts of ``message``; False (and nothing spent) when the balance is short.

    Must run inside the caller's transaction, so that the debit and the approval of the
    send commit together.
    """
    cost = cost_of(message.to_address or message.customer.phone, parts)
    if cost is None:
        return False
    account = _locked_balance()
    if account.credits < cost:
        return False
    _move(CreditEntryKind.SEND, -cost, message=message, note=f"{parts} part(s)")
    return True


def refund(message, *, note: str) -> CreditEntry | None:
    """Give back what ``message`` was charged (its provider refused it)."""
    with transaction.atomic():
        paid = -sum(
            message.credit_entries.filter(kind__in=[CreditEntryKind.SEND, CreditEntryKind.REFUND]).values_list(
                "amount", flat=True
            ),
            Decimal(0),
        )
        if paid <= 0:
            return None
        return _move(CreditEntryKind.REFUND, paid, message=message, note=note)


def add(amount: Decimal, *, note: str = "", kind=CreditEntryKind.PURCHASE) -> CreditEntry:
    """Add ``amount`` credits and release the SMS held for lack of them."""
    from .outbox import publish_delivery_on_commit  # the outbox imports the policy, which imports this module

    amount = Decimal(amount)
    with transaction.atomic():
        entry = _move(kind, amount, note=note)
        held = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Status.DEFERRED, reason=Reason.NO_CREDITS)
            .order_by("created_at")
            .values_list("pk", "channel")
        )
        Message.objects.filter(pk__in=[pk for pk, _ in held]).update(
            status=Status.QUEUED, send_after=timezone.now(), updated_at=timezone.now()
        )
        for pk, channel in held:
            publish_delivery_on_commit(channel, pk)
    return entry
