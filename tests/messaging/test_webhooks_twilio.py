import logging
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from customers import consent
from customers.models import Channel, ConsentAction, ConsentSource
from messaging.models import Category, Message, MessageEvent, Reason, Status
from tests import factories

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "twilio-auth-token-for-tests"
PATH = "/webhooks/twilio/status/"
URL = f"http://testserver{PATH}"
SID = "SM0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def twilio_auth_token(settings):
    settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TRIGGERHUB_PUBLIC_BASE_URL = ""


def sent_sms(customer=None, sid=SID) -> Message:
    customer = customer or factories.customer(phone="+12125550100")
    return Message.objects.create(
        customer=customer,
        channel=Channel.SMS,
        category=Category.MARKETING,
        sms_content=factories.sms_content(),
        dedupe_key=f"sms:{sid}",
        status=Status.SENT,
        send_after=timezone.now(),
        sent_at=timezone.now(),
        to_address=customer.phone,
        provider_message_id=sid,
    )


def callback(client, *, url=URL, token=AUTH_TOKEN, signature=None, **fields):
    """POST a status callback as Twilio does: form-encoded, signed over the URL and fields."""
    params = {
        "MessageSid": SID,
        "SmsSid": SID,
        "AccountSid": "AC123",
        "From": "+15005550006",
        "To": "+12125550100",
        "ApiVersion": "2010-04-01",
        **fields,
    }
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(PATH, urlencode(params), content_type="application/x-www-form-urlencoded", **headers)


def test_a_callback_with_a_wrong_signature_is_refused_and_changes_nothing(client):
    message = sent_sms()
    response = callback(client, MessageStatus="delivered", token="not-the-auth-token")
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert not MessageEvent.objects.filter(message=message).exists()


def test_a_callback_without_a_signature_is_refused(client):
    message = sent_sms()
    assert callback(client, MessageStatus="delivered", signature="").status_code == 403
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_without_an_auth_token_configured_every_callback_is_refused(client, settings):
    settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = ""
    message = sent_sms()
    assert callback(client, MessageStatus="delivered", token="").status_code == 403
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_a_signed_delivered_callback_marks_the_sms_delivered_and_keeps_the_payload(client):
    message = sent_sms()
    response = callback(client, MessageStatus="delivered")
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    event = message.events.get()
    assert event.status == Status.DELIVERED
    assert event.payload["MessageSid"] == SID and event.payload["MessageStatus"] == "delivered"


def test_a_late_sent_after_delivered_is_recorded_but_ignored(client):
    message = sent_sms()
    callback(client, MessageStatus="delivered")
    assert callback(client, MessageStatus="sent").status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("status", flat=True)) == [Status.DELIVERED, Status.SENT]


def test_the_error_code_of_an_undelivered_sms_is_kept_in_the_detail(client):
    message = sent_sms()
    callback(client, MessageStatus="undelivered", ErrorCode="30003")
    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert "error 30003" in message.detail and "twilio.com/docs/errors/30003" in message.detail


def test_a_failed_sms_is_marked_failed_as_rejected_by_the_provider(client):
    message = sent_sms()
    callback(client, MessageStatus="failed", ErrorCode="21614")
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.FAILED, Reason.PROVIDER_REJECTED)
    assert "not a mobile number" in message.detail


def test_error_21610_revokes_sms_consent_with_the_carrier_as_source(client):
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.SMS, ConsentSource.FORM, evidence="signed up")
    message = sent_sms(customer)

    callback(client, MessageStatus="undelivered", ErrorCode="21610")

    latest = customer.consent_records.filter(channel=Channel.SMS).first()
    assert (latest.action, latest.source) == (ConsentAction.REVOKED, ConsentSource.CARRIER)
    assert "21610" in latest.evidence and str(message.pk) in latest.evidence


def test_error_21610_reported_twice_revokes_once(client):
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    sent_sms(customer)
    callback(client, MessageStatus="failed", ErrorCode="21610")
    callback(client, MessageStatus="failed", ErrorCode="21610")
    assert customer.consent_records.filter(action=ConsentAction.REVOKED).count() == 1


def test_a_delivered_sms_with_an_error_code_does_not_touch_consent(client):
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    sent_sms(customer)
    callback(client, MessageStatus="delivered", ErrorCode="21610")
    assert customer.has_consent(Channel.SMS)


def test_an_unknown_message_sid_is_answered_200_and_logged(client, caplog):
    caplog.set_level(logging.WARNING, logger="messaging.status")
    response = callback(client, MessageStatus="delivered")
    assert response.status_code == 200
    assert SID in caplog.text
    assert not MessageEvent.objects.exists()


def test_a_signed_callback_without_a_status_is_a_bad_request(client):
    message = sent_sms()
    assert callback(client).status_code == 400
    assert not message.events.exists()


def test_behind_a_proxy_the_signature_is_checked_over_the_public_base_url(client, settings):
    settings.TRIGGERHUB_PUBLIC_BASE_URL = "https://triggerhub.example.com/"
    message = sent_sms()

    signed_over_internal_url = callback(client, MessageStatus="sent")
    assert signed_over_internal_url.status_code == 403

    response = callback(client, url=f"https://triggerhub.example.com{PATH}", MessageStatus="delivered")
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_only_post_is_accepted(client):
    assert client.get(PATH).status_code == 405
