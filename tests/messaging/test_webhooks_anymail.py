"""ESP tracking webhooks through anymail: real HTTP POSTs to Postmark's tracking URL, and the signal."""

import json
import logging
from base64 import b64encode

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.utils import timezone

from customers import consent
from customers.models import Channel, ConsentAction, ConsentSource
from messaging import outbox
from messaging.models import Category, Message, MessageEvent, Reason, Status, Suppression, SuppressionReason
from tests import factories

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "postmark:webhook-secret-for-tests"
TRACKING_URL = "/anymail/postmark/tracking/"
POSTMARK_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}


def sent_email(customer=None, provider_id=POSTMARK_ID, category=Category.TRANSACTIONAL) -> Message:
    customer = customer or factories.customer(email="John@Example.com")
    return Message.objects.create(
        customer=customer,
        channel=Channel.EMAIL,
        category=category,
        email_template=factories.email_template(slug=f"t-{provider_id[:8]}"),
        dedupe_key=f"email:{provider_id}",
        status=Status.SENT,
        send_after=timezone.now(),
        sent_at=timezone.now(),
        to_address=customer.email,
        provider_message_id=provider_id,
    )


def postmark_bounce(bounce_type="HardBounce", email="John@Example.com", **fields):
    """A bounce webhook body as Postmark sends it (postmarkapp.com/developer/webhooks/bounce-webhook)."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "welcome",
        "MessageID": POSTMARK_ID,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "hello@triggerhub.example.com",
        "BouncedAt": timezone.now().isoformat(),
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Welcome",
        **fields,
    }


def postmark_complaint(email="John@Example.com"):
    return postmark_bounce(
        "SpamComplaint",
        email,
        RecordType="SpamComplaint",
        TypeCode=512,
        Name="Spam complaint",
        Description="",
        Details="Test spam complaint details",
    )


def postmark_delivery():
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": POSTMARK_ID,
        "Recipient": "john@example.com",
        "Tag": "welcome",
        "DeliveredAt": timezone.now().isoformat(),
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }


def post_tracking(client, payload, auth=WEBHOOK_SECRET):
    credentials = b64encode(auth.encode()).decode()
    return client.post(
        TRACKING_URL,
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )


def latest_email_consent(customer):
    return customer.consent_records.filter(channel=Channel.EMAIL).first()


def test_a_hard_bounce_marks_the_message_bounced_suppresses_the_address_and_revokes_consent(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM, evidence="newsletter box")
    message = sent_email(customer)

    assert post_tracking(client, postmark_bounce()).status_code == 200

    message.refresh_from_db()
    assert message.status == Status.BOUNCED
    assert "550 5.1.1" in message.detail
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason, suppression.message) == (
        Channel.EMAIL,
        "john@example.com",
        SuppressionReason.BOUNCE,
        message,
    )
    record = latest_email_consent(customer)
    assert (record.action, record.source) == (ConsentAction.REVOKED, ConsentSource.BOUNCE)
    assert message.events.get().payload["Type"] == "HardBounce"


@pytest.mark.parametrize("category", [Category.TRANSACTIONAL, Category.MARKETING])
def test_after_a_hard_bounce_new_email_to_the_address_is_blocked_as_suppressed(client, category):
    customer = factories.customer(email="john@example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    sent_email(customer)
    post_tracking(client, postmark_bounce())

    later = outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=factories.email_template(slug="next"),
        category=category,
        source="test",
        dedupe_key="after-bounce",
    )

    assert (later.status, later.reason) == (Status.BLOCKED, Reason.SUPPRESSED)


def test_a_complaint_suppresses_the_address_and_revokes_consent_with_source_complaint(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = sent_email(customer)

    assert post_tracking(client, postmark_complaint()).status_code == 200

    message.refresh_from_db()
    assert message.status == Status.DELIVERED  # a complaint proves it reached the inbox
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINT
    record = latest_email_consent(customer)
    assert (record.action, record.source) == (ConsentAction.REVOKED, ConsentSource.COMPLAINT)


def test_a_soft_bounce_is_recorded_without_suppressing_or_changing_the_status(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = sent_email(customer)

    assert post_tracking(client, postmark_bounce("Transient", Inactive=False)).status_code == 200

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.events.get().status == Status.DEFERRED
    assert not Suppression.objects.exists()
    assert customer.has_consent(Channel.EMAIL)


def test_a_postmark_soft_bounce_after_its_retries_is_undelivered_but_not_suppressed(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = sent_email(customer)

    post_tracking(client, postmark_bounce("SoftBounce", Inactive=False))

    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert not Suppression.objects.exists()
    assert customer.has_consent(Channel.EMAIL)


def test_a_delivery_report_marks_the_message_delivered(client):
    message = sent_email()
    assert post_tracking(client, postmark_delivery()).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_wrong_basic_auth_is_refused_and_changes_nothing(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = sent_email(customer)

    response = post_tracking(client, postmark_bounce(), auth="postmark:guessed")

    assert response.status_code in (400, 403)
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert not MessageEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert customer.has_consent(Channel.EMAIL)


def test_the_same_bounce_reported_twice_suppresses_and_revokes_once(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = sent_email(customer)

    post_tracking(client, postmark_bounce())
    post_tracking(client, postmark_bounce())

    assert Suppression.objects.count() == 1
    assert customer.consent_records.filter(action=ConsentAction.REVOKED).count() == 1
    assert message.events.count() == 2  # every report is kept


def test_a_bounce_of_an_address_the_customer_has_left_keeps_the_new_addresss_consent(client):
    customer = factories.customer(email="John@Example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    sent_email(customer)
    customer.email = "john@new-employer.example"
    customer.save()

    post_tracking(client, postmark_bounce())

    assert Suppression.objects.get().address == "john@example.com"
    assert customer.has_consent(Channel.EMAIL)


def test_an_event_for_a_message_that_is_not_ours_is_accepted_and_logged(client, caplog):
    caplog.set_level(logging.WARNING, logger="messaging.status")
    assert post_tracking(client, postmark_bounce()).status_code == 200
    assert POSTMARK_ID in caplog.text
    assert not Suppression.objects.exists()


def send_tracking(esp_name="SendGrid", **fields):
    """What any ESP's anymail webhook view does after parsing: send the tracking signal."""
    defaults = {"timestamp": timezone.now(), "recipient": "john@example.com", "esp_event": {"raw": True}}
    tracking.send(sender=object, event=AnymailTrackingEvent(**{**defaults, **fields}), esp_name=esp_name)


def test_the_receiver_finds_the_message_by_the_esp_message_id():
    message = sent_email()
    send_tracking(event_type="delivered", message_id=POSTMARK_ID)
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_the_receiver_finds_the_message_by_our_own_id_in_the_metadata():
    message = sent_email(provider_id="")
    send_tracking(
        event_type="delivered", message_id="esp-id-we-never-saw", metadata={"triggerhub_message": str(message.pk)}
    )
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_an_open_counts_as_delivered_and_is_recorded_as_an_open():
    message = sent_email()
    send_tracking(event_type="opened", message_id=POSTMARK_ID, user_agent="Mozilla/5.0")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.events.get().detail == "SendGrid opened"


def test_a_click_keeps_the_link_in_the_detail():
    message = sent_email()
    send_tracking(event_type="clicked", message_id=POSTMARK_ID, click_url="https://shop.example/cart")
    assert message.events.get().detail == "SendGrid clicked https://shop.example/cart"


def test_an_unsubscribe_at_the_esp_revokes_email_consent_without_changing_the_status():
    message = sent_email()
    send_tracking(event_type="unsubscribed", message_id=POSTMARK_ID)
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.events.get().status == Status.SENT
    latest = message.customer.consent_records.filter(channel=Channel.EMAIL).latest("recorded_at")
    assert (latest.action, latest.source) == (ConsentAction.REVOKED, ConsentSource.UNSUBSCRIBE)


def test_a_rejection_by_the_esp_fails_the_message_as_rejected_by_the_provider():
    message = sent_email()
    send_tracking(
        event_type="rejected",
        message_id=POSTMARK_ID,
        reject_reason="blocked",
        description="Recipient is on the ESP's block list",
    )
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.FAILED, Reason.PROVIDER_REJECTED)
    assert "block list" in message.detail
