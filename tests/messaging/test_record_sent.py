"""Recording a batch's hand-overs: each row gets its own rendered texts, and a report that came first is kept.

On PostgreSQL the rows travel as one JSON document in one statement; elsewhere one
UPDATE per row. The texts here are the ones that break hand-made quoting.
"""

import pytest
from django.utils import timezone

from messaging import delivery
from messaging.models import Message, MessageEvent, Status
from tests import factories

pytestmark = pytest.mark.django_db

AWKWARD = [
    "quotes \" and ' and a backslash \\ at the end \\",
    'braces {a,b} and commas, NULL, and a "quoted, element" [1, 2]',
    "NULL",
    "",
    "lines\nand\ttabs, and unicode: è 😀 ’ \u2028",
    "%s %(rows)s {} $1 ::jsonb",
]


def sending(template, key):
    return Message.objects.create(
        customer=factories.customer(),
        channel="email",
        category="transactional",
        email_template=template,
        dedupe_key=key,
        send_after=timezone.now(),
        status=Status.SENDING,
        attempts=1,
    )


def test_each_row_gets_its_own_texts_and_provider_id_and_a_sent_event():
    template = factories.email_template()
    messages = [sending(template, f"record:{n}") for n in range(len(AWKWARD))]
    untouched = sending(template, "record:untouched")
    sent_at = timezone.now()
    for message, text in zip(messages, AWKWARD):
        message.to_address, message.subject, message.body_text, message.body_html = (
            "a@example.com",
            text[:300],
            text,
            text,
        )
        message.sent_at = sent_at

    outcomes = delivery._record_sent([(message, f"esp-{text}") for message, text in zip(messages, AWKWARD)])

    assert outcomes == {message.pk: Status.SENT for message in messages}
    stored = {m.pk: m for m in Message.objects.all()}
    assert [
        (stored[m.pk].subject, stored[m.pk].body_text, stored[m.pk].body_html, stored[m.pk].provider_message_id)
        for m in messages
    ] == [(text[:300], text, text, f"esp-{text}") for text in AWKWARD]
    assert {(stored[m.pk].status, stored[m.pk].sent_at, stored[m.pk].lease_expires_at) for m in messages} == {
        (Status.SENT, sent_at, None)
    }
    assert stored[untouched.pk].status == Status.SENDING and stored[untouched.pk].subject == ""
    assert sorted(MessageEvent.objects.values_list("message_id", "status", "detail")) == sorted(
        (m.pk, Status.SENT, "") for m in messages
    )


def test_a_report_recorded_before_the_hand_over_keeps_its_status_and_the_sent_event_says_so():
    template = factories.email_template()
    overtaken, plain = sending(template, "record:overtaken"), sending(template, "record:plain")
    Message.objects.filter(pk=overtaken.pk).update(status=Status.DELIVERED)

    outcomes = delivery._record_sent([(overtaken, "esp-1"), (plain, "esp-2")])

    assert outcomes == {overtaken.pk: Status.DELIVERED, plain.pk: Status.SENT}
    assert overtaken.status == Status.DELIVERED
    overtaken.refresh_from_db()
    assert (overtaken.status, overtaken.provider_message_id) == (Status.DELIVERED, "esp-1")
    assert list(overtaken.events.values_list("status", "detail")) == [(Status.SENT, delivery.LATE_SENT)]
    assert list(plain.events.values_list("status", "detail")) == [(Status.SENT, "")]
