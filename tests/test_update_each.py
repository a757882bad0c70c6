"""``triggerhub.db.update_each`` writes each row's own values, whatever characters they hold."""

import pytest
from django.utils import timezone

from messaging.models import Message, Status
from tests import factories
from triggerhub.db import update_each

pytestmark = pytest.mark.django_db

AWKWARD = [
    'quotes " and \' and a backslash \\ at the end \\',
    "braces {a,b} and commas, NULL, and a \"quoted, element\"",
    "NULL",
    "",
    "lines\nand\ttabs, and unicode: è 😀 ’",
]


def test_each_row_gets_its_own_values_and_others_stay_as_they_were():
    template = factories.email_template()
    messages = [
        Message.objects.create(
            customer=factories.customer(), channel="email", category="transactional", email_template=template,
            dedupe_key=f"update-each:{n}", send_after=timezone.now(), status=Status.SENDING,
        )
        for n in range(len(AWKWARD) + 1)
    ]
    untouched = messages.pop()
    for message, text in zip(messages, AWKWARD):
        message.subject, message.body_html, message.status, message.sent_at = text[:300], text, Status.SENT, None

    update_each(messages, ["subject", "body_html", "status", "sent_at"])

    stored = {m.pk: m for m in Message.objects.all()}
    assert [(stored[m.pk].subject, stored[m.pk].body_html, stored[m.pk].status) for m in messages] == [
        (text[:300], text, Status.SENT) for text in AWKWARD
    ]
    assert stored[untouched.pk].status == Status.SENDING
    assert update_each([], ["subject"]) is None
