"""The order of provider statuses: reports arrive late, twice and shuffled; a message only moves forward."""

import threading
from datetime import UTC, datetime
from itertools import count

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers.models import Channel
from messaging import status as provider_status
from messaging.models import Category, Message, Status
from messaging.providers.email import anymail_status
from messaging.providers.twilio.statuses import status_of as twilio_status
from messaging.status import RANK, apply_provider_status
from tests import factories

_keys = count(1)


def message_in(status=Status.SENT, channel=Channel.SMS) -> Message:
    customer = factories.customer(phone="+12125550100")
    content = (
        {"sms_content": factories.sms_content(slug=f"sms-{next(_keys)}")}
        if channel == Channel.SMS
        else {"email_template": factories.email_template(slug=f"mail-{next(_keys)}")}
    )
    return Message.objects.create(
        customer=customer,
        channel=channel,
        category=Category.TRANSACTIONAL,
        dedupe_key=f"order:{next(_keys)}",
        status=status,
        send_after=timezone.now(),
        sent_at=timezone.now() if status == Status.SENT else None,
        **content,
    )


def apply(message, status):
    moved = apply_provider_status(message=message, status=status)
    message.refresh_from_db()
    return moved


@pytest.mark.django_db
def test_a_late_sent_after_delivered_is_recorded_but_ignored():
    message = message_in(Status.SENT)
    assert apply(message, Status.DELIVERED) is True
    assert apply(message, Status.SENT) is False
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("status", flat=True)) == [Status.DELIVERED, Status.SENT]


@pytest.mark.django_db
@pytest.mark.parametrize("failure", [Status.UNDELIVERED, Status.FAILED, Status.BOUNCED])
def test_delivered_after_a_failure_does_not_resurrect_the_message(failure):
    message = message_in()
    apply(message, failure)
    assert apply(message, Status.DELIVERED) is False
    assert message.status == failure


@pytest.mark.django_db
def test_a_bounce_after_delivered_wins_as_an_out_of_band_bounce():
    message = message_in()
    apply(message, Status.DELIVERED)
    assert apply(message, Status.BOUNCED) is True
    assert message.status == Status.BOUNCED


@pytest.mark.django_db
def test_among_failures_the_more_definite_wins():
    message = message_in()
    apply(message, Status.FAILED)
    assert apply(message, Status.UNDELIVERED) is False
    assert apply(message, Status.BOUNCED) is True
    assert message.status == Status.BOUNCED


@pytest.mark.django_db
@pytest.mark.parametrize("pending", [Status.QUEUED, Status.SCHEDULED, Status.DEFERRED])
def test_a_provider_never_puts_a_message_back_into_a_pending_status(pending):
    message = message_in(Status.SENT)
    assert apply(message, pending) is False
    assert message.status == Status.SENT
    assert message.events.get().status == pending  # kept as the provider said it


@pytest.mark.django_db
def test_a_message_whose_worker_died_mid_send_is_confirmed_sent_by_the_provider():
    message = message_in(Status.UNKNOWN)
    assert apply(message, Status.SENT) is True
    assert message.status == Status.SENT
    assert message.sent_at is not None  # from now on it counts against the caps


@pytest.mark.django_db
def test_a_message_we_blocked_is_never_moved_by_a_provider():
    message = message_in(Status.BLOCKED)
    assert apply(message, Status.DELIVERED) is False
    assert message.status == Status.BLOCKED


@pytest.mark.django_db
def test_a_report_with_no_bearing_on_delivery_records_the_status_as_it_stands():
    message = message_in(Status.DELIVERED)
    assert apply_provider_status(message=message, status=None, detail="Postmark unsubscribed") is False
    event = message.events.get()
    assert (event.status, event.detail) == (Status.DELIVERED, "Postmark unsubscribed")


@pytest.mark.django_db
def test_the_event_keeps_the_providers_time_and_raw_payload():
    message = message_in()
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    apply_provider_status(message=message, status=Status.DELIVERED, at=at, payload={"MessageSid": "SM1"})
    event = message.events.get()
    assert (event.at, event.payload) == (at, {"MessageSid": "SM1"})


@pytest.mark.parametrize(
    "reported, ours",
    [
        ("accepted", Status.SENT),
        ("scheduled", Status.SENT),
        ("queued", Status.SENT),
        ("sending", Status.SENT),
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("read", Status.DELIVERED),
        ("undelivered", Status.UNDELIVERED),
        ("failed", Status.FAILED),
        ("canceled", Status.FAILED),
        ("receiving", None),
    ],
)
def test_twilio_message_statuses_map_to_ours(reported, ours):
    assert twilio_status(reported) == ours


@pytest.mark.parametrize(
    "event_type, ours",
    [
        ("queued", Status.SENT),
        ("sent", Status.SENT),
        ("rejected", Status.FAILED),
        ("failed", Status.UNDELIVERED),
        ("bounced", Status.BOUNCED),
        ("deferred", Status.DEFERRED),
        ("delivered", Status.DELIVERED),
        ("autoresponded", Status.DELIVERED),
        ("opened", Status.DELIVERED),
        ("clicked", Status.DELIVERED),
        ("complained", Status.DELIVERED),
        ("unsubscribed", None),
        ("subscribed", None),
        ("unknown", None),
    ],
)
def test_anymail_event_types_map_to_ours(event_type, ours):
    assert anymail_status(event_type) == ours


REPORTABLE = [*RANK, Status.DEFERRED, Status.QUEUED, None]


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reports=st.lists(st.sampled_from(REPORTABLE), max_size=8))
def test_whatever_the_order_of_reports_the_message_ends_at_the_highest_ranked_one(reports):
    message = message_in(Status.SENDING)
    for reported in reports:
        apply_provider_status(message=message, status=reported)
    message.refresh_from_db()
    ranked = [reported for reported in reports if reported in RANK]
    expected = max(ranked, key=RANK.get) if ranked else Status.SENDING
    assert message.status == expected
    assert message.events.count() == len(reports)


@pytest.mark.django_db(transaction=True)
def test_two_callbacks_at_once_cannot_move_a_message_backwards():
    """Many rounds of a late "sent" racing a "delivered", each on its own connection."""
    messages = [message_in(Status.SENDING) for _ in range(15)]

    def report(message, status, start):
        start.wait()
        try:
            apply_provider_status(message=Message.objects.get(pk=message.pk), status=status)
        finally:
            connection.close()

    for message in messages:
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=report, args=(message, status, start)) for status in (Status.DELIVERED, Status.SENT)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    assert all(message.events.count() == 2 for message in messages)


def test_no_status_ranks_below_what_a_provider_can_report():
    assert set(provider_status.BEFORE_PROVIDER).isdisjoint(RANK)
    assert Status.BLOCKED not in RANK and Status.BLOCKED not in provider_status.BEFORE_PROVIDER
