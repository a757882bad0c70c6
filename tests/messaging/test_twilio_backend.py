from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from customers import consent
from customers.models import ConsentAction, ConsentSource
from messaging import outbox
from messaging.backends.sms.base import OutgoingSms
from messaging.backends.sms.twilio import SmsBackend
from messaging.delivery import deliver
from messaging.exceptions import (
    OutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from messaging.models import Category, Channel, MessageEvent, Reason, Status
from tests import factories
from tests.fake_twilio import FakeTwilio, Reply

pytestmark = pytest.mark.django_db

PHONE = "+12125550100"
CALLBACK = "https://triggerhub.example.com/webhooks/twilio/status/"


def transactional_sms(customer=None, text="Order {{ event.order_id }} shipped"):
    return outbox.enqueue(
        customer=customer or factories.customer(phone=PHONE),
        channel=Channel.SMS,
        content=factories.sms_content(text=text),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="twilio:1",
        context={"event": {"order_id": "1042"}},
    )


def send(to=PHONE, body="Hello"):
    return SmsBackend().send(OutgoingSms(to=to, body=body, message_id=7))


def test_the_sms_goes_to_twilio_with_the_messaging_service_and_status_callback(fake_twilio):
    result = send(body="Your code is 1234")

    [request] = fake_twilio.requests
    assert request.account_sid == FakeTwilio.account_sid
    assert request.auth == (FakeTwilio.account_sid, FakeTwilio.auth_token)
    assert request.form == {
        "To": PHONE,
        "Body": "Your code is 1234",
        "MessagingServiceSid": FakeTwilio.messaging_service_sid,
        "StatusCallback": CALLBACK,
    }
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34


def test_without_a_messaging_service_the_from_number_is_the_sender(fake_twilio, settings):
    settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TRIGGERHUB_TWILIO_FROM_NUMBER = "+13125550199"
    settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL = ""

    send()

    [request] = fake_twilio.requests
    assert request.form == {"To": PHONE, "Body": "Hello", "From": "+13125550199"}


def test_the_message_records_twilios_sid_as_its_provider_id(fake_twilio):
    message = transactional_sms()

    assert deliver(message.pk) == Status.SENT

    message.refresh_from_db()
    [request] = fake_twilio.requests
    assert request.form["Body"] == "Order 1042 shipped"
    assert message.provider_message_id.startswith("SM")


def test_two_server_errors_then_acceptance_send_on_the_third_attempt_with_growing_backoff(
    fake_twilio,
    settings,
):
    settings.TRIGGERHUB_RETRY_BACKOFF_SECONDS = 60
    fake_twilio.reply_with(500, 500, 201)
    message = transactional_sms()
    delays = []

    with time_machine.travel(timezone.now(), tick=False) as clock:
        for expected in (Status.QUEUED, Status.QUEUED, Status.SENT):
            attempted_at = timezone.now()
            assert deliver(message.pk) == expected
            message.refresh_from_db()
            if expected == Status.QUEUED:
                delays.append((message.send_after - attempted_at).total_seconds())
                assert deliver(message.pk) is None  # not before its retry time
                clock.move_to(message.send_after + timedelta(seconds=1))

    assert (message.status, message.attempts, len(fake_twilio.requests)) == (Status.SENT, 3, 3)
    assert message.provider_message_id.startswith("SM")
    retries = MessageEvent.objects.filter(message=message, reason=Reason.TRANSIENT_ERROR)
    assert retries.count() == 2
    assert all("20500" in event.detail for event in retries)
    first, second = delays
    assert 30 <= first <= 60 and 60 <= second <= 120  # doubling ceiling, jittered down to half
    assert first < second


def test_an_unsubscribed_recipient_fails_at_once_and_revokes_sms_consent_from_the_carrier(fake_twilio):
    customer = factories.customer(phone=PHONE)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM, evidence="checkout box")
    fake_twilio.reply_with(FakeTwilio.error(21610, "Attempt to send to unsubscribed recipient"))
    message = transactional_sms(customer)

    assert deliver(message.pk) == Status.FAILED

    message.refresh_from_db()
    assert (message.reason, message.attempts, len(fake_twilio.requests)) == (Reason.PROVIDER_REJECTED, 1, 1)
    assert "21610" in message.detail and "unsubscribed recipient" in message.detail
    assert customer.consent_state(Channel.SMS) == ConsentAction.REVOKED
    revocation = customer.consent_records.latest("recorded_at", "pk")
    assert revocation.source == ConsentSource.CARRIER
    assert "Twilio" in revocation.evidence and "21610" in revocation.evidence
    assert f"message {message.pk}" in revocation.evidence


def test_an_invalid_to_number_fails_at_once_and_leaves_consent_alone(fake_twilio):
    customer = factories.customer(phone=PHONE)
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    fake_twilio.reply_with(FakeTwilio.error(21211, "The 'To' number +12125550100 is not a valid phone number."))
    message = transactional_sms(customer)

    assert deliver(message.pk) == Status.FAILED

    message.refresh_from_db()
    assert message.reason == Reason.PROVIDER_REJECTED
    assert message.detail.startswith("21211: ") and "not a valid phone number" in message.detail
    assert len(fake_twilio.requests) == 1
    assert customer.consent_state(Channel.SMS) == ConsentAction.GRANTED
    assert customer.consent_records.count() == 1


def test_twilio_unreachable_is_a_transient_error_and_the_message_waits_for_a_retry(fake_twilio):
    message = transactional_sms()
    fake_twilio.stop()  # the port is closed: connection refused

    assert deliver(message.pk) == Status.QUEUED

    message.refresh_from_db()
    assert message.reason == Reason.TRANSIENT_ERROR
    assert f"Could not reach Twilio at {fake_twilio.url}" in message.detail
    assert message.send_after > timezone.now()


def test_twilio_answering_too_slowly_leaves_the_message_unknown_not_resent(fake_twilio, settings):
    # The request reached Twilio; whether it sent the SMS is unknown, and a retry could send it twice.
    settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS = 0.2
    fake_twilio.reply_with(Reply(201, delay=1))

    with pytest.raises(OutcomeUnknown, match="did not answer within 0.2s"):
        send()


def test_a_message_whose_send_timed_out_is_marked_unknown_for_ops(fake_twilio, settings):
    settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS = 0.2
    fake_twilio.reply_with(Reply(201, delay=1))
    message = transactional_sms()

    assert deliver(message.pk) == Status.UNKNOWN
    message.refresh_from_db()
    assert (message.reason, message.attempts) == (Reason.NO_ANSWER, 1)
    assert deliver(message.pk) is None  # not picked up again
    assert len(fake_twilio.requests) == 1


@pytest.mark.parametrize(
    "reply, code",
    [
        (Reply(429), "20429"),
        (FakeTwilio.error(20429, "Too Many Requests", status=429), "20429"),
        (Reply(503), "20503"),
        (FakeTwilio.error(30001, "Queue overflow", status=400), "30001"),
        (FakeTwilio.error(20500, "Internal Server Error", status=500), "20500"),
        (Reply(502, {"message": "Bad Gateway"}), "502"),  # no Twilio code: the HTTP status stands in
    ],
)
def test_rate_limits_server_errors_and_queue_overflow_are_worth_retrying(fake_twilio, reply, code):
    fake_twilio.reply_with(reply)

    with pytest.raises(TransientDeliveryError) as raised:
        send()

    assert raised.value.code == code
    assert raised.value.payload["provider"] == "twilio"


@pytest.mark.parametrize(
    "code, words",
    [
        (21211, "not a valid 'To' number"),
        (21614, "not a mobile number"),
        (21408, "geo permissions"),
        (21606, "see the error's page"),  # any other 4xx
    ],
)
def test_a_refused_number_or_region_is_permanent_and_says_what_to_do(fake_twilio, code, words):
    fake_twilio.reply_with(FakeTwilio.error(code, f"Twilio's words for {code}"))

    with pytest.raises(PermanentDeliveryError) as raised:
        send()

    assert not isinstance(raised.value, RecipientOptedOut)
    assert raised.value.code == str(code)
    assert f"Twilio's words for {code}" in str(raised.value) and words in str(raised.value)


def test_wrong_credentials_are_permanent(fake_twilio, settings):
    settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = "not-the-token"

    with pytest.raises(PermanentDeliveryError) as raised:
        send()

    assert raised.value.code == "20003"


def test_twilio_taking_the_sms_and_dropping_the_connection_is_unknown_not_retried(fake_twilio):
    # Twilio has the request; the connection closes before its answer. A retry would text twice.
    fake_twilio.reply_with(Reply(201, drop=True))
    message = transactional_sms()

    assert deliver(message.pk) == Status.UNKNOWN

    message.refresh_from_db()
    assert (message.reason, message.attempts) == (Reason.NO_ANSWER, 1)
    assert "Twilio's answer was lost" in message.detail
    assert deliver(message.pk) is None  # not picked up again
    assert len(fake_twilio.accepted) == 1


def test_a_dropped_answer_raises_outcome_unknown_from_the_backend(fake_twilio):
    fake_twilio.reply_with(Reply(201, drop=True))

    with pytest.raises(OutcomeUnknown, match="may have been sent"):
        send()


def test_a_host_name_that_does_not_resolve_is_safe_to_retry(fake_twilio, settings):
    settings.TRIGGERHUB_TWILIO_API_BASE = "http://no-such-host.invalid"

    with pytest.raises(TransientDeliveryError, match="Could not reach Twilio"):
        send()


@pytest.mark.parametrize("reply", [Reply(504), Reply(201, "not an object")])
def test_a_gateway_timeout_or_an_unreadable_success_is_unknown(fake_twilio, reply):
    fake_twilio.reply_with(reply)

    with pytest.raises(OutcomeUnknown):
        send()
