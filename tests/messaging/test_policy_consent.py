import pytest
from django.utils import timezone

from customers import consent
from customers.models import ConsentSource
from messaging import outbox
from messaging.delivery import deliver
from messaging.models import Category, Channel, Reason, Status
from messaging.policy import Action, Decision, decide
from tests import factories

pytestmark = pytest.mark.django_db


def decide_email(customer, category=Category.MARKETING):
    return decide(customer, Channel.EMAIL, category, timezone.now())


def test_marketing_email_with_a_grant_is_sent():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    assert decide_email(customer) == Decision.send()


def test_marketing_email_without_any_consent_record_is_blocked_as_no_consent():
    decision = decide_email(factories.customer())
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.NO_CONSENT)


def test_marketing_email_after_revocation_is_blocked_as_opted_out():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM)

    decision = decide_email(customer)
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.OPTED_OUT)


def test_marketing_email_after_a_new_grant_following_revocation_is_sent():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM)
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    assert decide_email(customer).action == Action.SEND


def test_marketing_sms_needs_sms_consent_not_email_consent():
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)

    decision = decide(customer, Channel.SMS, Category.MARKETING, timezone.now())
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.NO_CONSENT)


def test_transactional_email_is_sent_without_consent():
    assert decide_email(factories.customer(), Category.TRANSACTIONAL).action == Action.SEND


def test_transactional_email_is_sent_even_after_revocation():
    customer = factories.customer()
    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM)
    assert decide_email(customer, Category.TRANSACTIONAL).action == Action.SEND


def test_transactional_email_without_an_address_is_blocked_as_no_address():
    decision = decide_email(factories.customer(email=""), Category.TRANSACTIONAL)
    assert (decision.action, decision.reason) == (Action.BLOCK, Reason.NO_ADDRESS)


def marketing_email(customer):
    return outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=factories.email_template(slug="promo"),
        category=Category.MARKETING,
        source="test",
        dedupe_key="promo:1",
    )


def test_marketing_email_enqueued_without_consent_is_kept_blocked_as_no_consent(mailoutbox):
    message = marketing_email(factories.customer())

    assert (message.status, message.reason) == (Status.BLOCKED, Reason.NO_CONSENT)
    assert deliver(message.pk) is None
    assert mailoutbox == []


def test_marketing_email_with_consent_is_delivered(mailoutbox):
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = marketing_email(customer)

    assert deliver(message.pk) == Status.SENT
    assert len(mailoutbox) == 1


def test_marketing_email_revoked_between_enqueue_and_delivery_is_blocked_as_opted_out(mailoutbox):
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = marketing_email(customer)
    assert message.status == Status.QUEUED

    consent.revoke(customer, Channel.EMAIL, ConsentSource.FORM, "Unsubscribe link")

    assert deliver(message.pk) == Status.BLOCKED
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.OPTED_OUT)
    assert mailoutbox == []
