"""Unsubscribe links: one per message, signed, withdrawing the customer's consent for its channel.

A link carries the message's id, its customer's id and its channel, signed with the
site's ``SECRET_KEY`` (``django.core.signing``, salt ``triggerhub.unsubscribe``): it
cannot be made from a guessed id, and a changed character makes it invalid. It has no
timestamp and never expires, because a recipient may unsubscribe from a message years
old (CAN-SPAM wants links to work for 30 days at least), and so the link in the body and
in the ``List-Unsubscribe`` header is the same string.

Opening the link (GET) changes nothing, because mail scanners and link previews open
every link in a message; the page asks to confirm and the POST unsubscribes. Mail
clients' one-click unsubscribe (RFC 8058) POSTs ``List-Unsubscribe=One-Click`` to the
same address. Unsubscribing records a consent revocation (source *unsubscribe*) for
the message's channel; while the ledger already says revoked, another click adds nothing.
"""

from dataclasses import dataclass

from django.core import signing
from django.db import transaction
from django.urls import reverse

from customers import consent
from customers.models import Channel, ConsentAction, ConsentSource, Customer

from . import rendering
from .models import Category

SALT = "triggerhub.unsubscribe"

#: What a one-click unsubscribe POSTs (RFC 8058), and so the ``List-Unsubscribe-Post`` header's value.
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


class InvalidLink(Exception):
    """The token was not made by this site: tampered with, cut short, or signed with another key."""


@dataclass(frozen=True)
class Subscription:
    """What one unsubscribe link is about. ``customer`` is None once the customer was deleted."""

    customer: Customer | None
    channel: str
    message_id: int

    @property
    def masked_address(self) -> str:
        """The customer's address for the channel, enough to recognise it and no more."""
        if self.customer is None:
            return ""
        if self.channel == Channel.EMAIL:
            local, _, domain = self.customer.email.partition("@")
            return f"{local[:1]}•••@{domain}" if domain else ""
        phone = self.customer.phone
        return f"•••{phone[-4:]}" if phone else ""

    @property
    def channel_label(self) -> str:
        return "e-mail" if self.channel == Channel.EMAIL else "text messages"

    def is_unsubscribed(self) -> bool:
        return self.customer is None or self.customer.consent_state(self.channel) == ConsentAction.REVOKED


def unsubscribe_url(message) -> str:
    """The absolute address of ``message``'s unsubscribe page (also its one-click address)."""
    return rendering.public_base_url() + reverse("unsubscribe", args=[token_for(message)])


def list_unsubscribe_headers(message) -> dict:
    """RFC 2369 / RFC 8058 headers for ``message``: mail clients show an unsubscribe button.

    Only on marketing: unsubscribing withdraws marketing consent, which would not stop an
    order confirmation, so offering it there would promise what it cannot do.
    """
    if message.category != Category.MARKETING:
        return {}
    return {"List-Unsubscribe": f"<{unsubscribe_url(message)}>", "List-Unsubscribe-Post": ONE_CLICK_BODY}


def token_for(message) -> str:
    return signing.Signer(salt=SALT).sign_object([message.pk, message.customer_id, message.channel])


def read(token: str) -> Subscription:
    """The subscription ``token`` unsubscribes from; ``InvalidLink`` if we did not sign it."""
    try:
        message_id, customer_id, channel = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise InvalidLink(
            "This unsubscribe link is invalid or damaged. Open it again from the message itself; "
            "if your mail program split it over two lines, copy the whole address into the browser."
        ) from exc
    return Subscription(Customer.objects.filter(pk=customer_id).first(), channel, message_id)


def unsubscribe(token: str, *, ip: str | None, user_agent: str, one_click: bool = False) -> Subscription:
    """Withdraw the consent ``token`` is about, unless the ledger already says withdrawn.

    ``ip`` and ``user_agent`` are kept on the consent record as evidence; ``one_click``
    says a mail client's unsubscribe button sent it rather than the confirmation page.
    """
    subscription = read(token)
    if subscription.customer is None:
        return subscription
    how = "one-click unsubscribe (List-Unsubscribe-Post)" if one_click else "unsubscribe page"
    with transaction.atomic():
        # Locked so that two clicks at once (a double submit, the mail client and the
        # page) cannot both find consent still granted and both record a revocation.
        customer = Customer.objects.select_for_update().filter(pk=subscription.customer.pk).first()
        if customer is not None and customer.consent_state(subscription.channel) != ConsentAction.REVOKED:
            consent.revoke(
                customer,
                subscription.channel,
                ConsentSource.UNSUBSCRIBE,
                evidence=f"{how}, link in message {subscription.message_id}",
                ip_address=ip or None,
                user_agent=user_agent,
            )
    return subscription
