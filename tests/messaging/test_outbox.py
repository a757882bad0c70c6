from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import outbox
from messaging.models import Category, Channel, Message, Reason, Status
from tests import factories

pytestmark = pytest.mark.django_db


def enqueue(customer, content=None, **overrides):
    arguments = {
        "customer": customer,
        "channel": Channel.EMAIL,
        "content": content or factories.email_template(),
        "category": Category.TRANSACTIONAL,
        "source": "test",
        "dedupe_key": "test:1",
    }
    return outbox.enqueue(**{**arguments, **overrides})


def test_enqueue_writes_a_queued_message_and_publishes_its_delivery_on_commit(
    django_capture_on_commit_callbacks,
):
    customer = factories.customer()
    with django_capture_on_commit_callbacks() as callbacks:
        message = enqueue(customer)
    assert message.status == Status.QUEUED
    assert message.events.get().status == Status.QUEUED
    assert len(callbacks) == 1


def test_a_repeated_dedupe_key_returns_the_first_message(django_capture_on_commit_callbacks):
    customer = factories.customer()
    template = factories.email_template()
    with django_capture_on_commit_callbacks() as callbacks:
        first = enqueue(customer, template)
        again = enqueue(customer, template)
    assert again.pk == first.pk
    assert Message.objects.count() == 1
    assert len(callbacks) == 1


def test_a_customer_without_an_email_address_is_blocked_with_the_reason(
    django_capture_on_commit_callbacks,
):
    customer = factories.customer(email="")
    with django_capture_on_commit_callbacks() as callbacks:
        message = enqueue(customer)
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.NO_ADDRESS)
    assert callbacks == []


def test_marketing_is_blocked_without_consent():
    message = enqueue(factories.customer(), category=Category.MARKETING)
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.NO_CONSENT)


def test_a_message_for_later_is_scheduled_and_not_published(django_capture_on_commit_callbacks):
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        message = enqueue(factories.customer(), send_after=later)
    assert (message.status, message.send_after) == (Status.SCHEDULED, later)
    assert callbacks == []


def test_sms_takes_sms_content():
    customer = factories.customer(phone="+12125550100")
    message = enqueue(customer, factories.sms_content(), channel=Channel.SMS)
    assert message.sms_content is not None and message.email_template is None
    assert message.status == Status.QUEUED
