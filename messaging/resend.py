"""Sending an undelivered e-mail again, later, a limited number of times.

Which e-mails qualify: those a provider report moves to ``undelivered`` (status.py),
that is, the ESP took the message and could not get it to the mailbox for a reason
that is not the address's fault: anymail's ``failed`` (the ESP gave up on it) and
Postmark's soft bounce once Postmark stopped retrying (mailbox full, ...). Never
resent:

* a hard bounce (``bounced``): the address is bad, and now suppressed;
* a complaint: the message arrived, and the address is suppressed;
* ``rejected`` (our ``failed``): the ESP refuses the address or the content, and
  would give the same answer again;
* ``deferred``: the ESP is still retrying itself; it ends in delivered or bounced.

Site settings (triggerhub/settings.py): ``TRIGGERHUB_EMAIL_RESEND_ATTEMPTS`` (how many
times one e-mail is sent again; 0, the default, turns resending off) and
``TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS`` (how long after the failure; default 24).

A resend is a new message (``resend_of`` = the undelivered one) written through the
outbox, so the send policy is asked again: a suppressed address, a withdrawn consent
or a full frequency cap stops it like any other message. Its dedupe key is
``<first message's key>:resend:<n>``, so the same failure reported twice writes it once.
"""

from datetime import timedelta
from typing import cast

from django.conf import settings
from django.utils import timezone

from . import outbox
from .models import Channel, Message


def resend_later(message: Message) -> Message | None:
    """Write the next resend of undelivered e-mail ``message``, or None if none is due."""
    first, resends_so_far = _chain_start(message)
    if message.channel != Channel.EMAIL or resends_so_far >= settings.TRIGGERHUB_EMAIL_RESEND_ATTEMPTS:
        return None
    n = resends_so_far + 1
    resent = outbox.enqueue(
        customer=message.customer,
        channel=Channel.EMAIL,
        content=message.email_template,
        category=message.category,
        source=message.source,
        dedupe_key=f"{first.dedupe_key}:resend:{n}",
        send_after=timezone.now() + timedelta(hours=settings.TRIGGERHUB_EMAIL_RESEND_AFTER_HOURS),
        context=message.context,
        rules=message.rules,
        expires_at=message.expires_at,
    )
    Message.objects.filter(pk=resent.pk).update(resend_of=message)
    resent.resend_of = message
    return resent


def _chain_start(message: Message) -> tuple[Message, int]:
    """The first message of the chain ``message`` belongs to, and how many resends lead to it."""
    first, resends = message, 0
    while first.resend_of_id is not None:
        first, resends = cast(Message, first.resend_of), resends + 1  # resend_of_id is set
    return first, resends
