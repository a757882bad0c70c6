"""Ops act on an unknown SMS through the real admin, in Chromium.

A staff user who may change messages finds the unknown SMS by the status filter, opens
it, resends it after a confirmation page, and sees it queued with an event naming them.
A staff user who may only view messages sees what "unknown" means and no way to act.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from customers import consent
from customers.models import ConsentSource
from messaging.models import Category, Channel, Message, Reason, Status
from tests import factories
from tests.browser.admin_login import log_in, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = "+12125550100"
ACTION_LABELS = ("Check with the provider", "Resend", "Close as sent", "Close as not sent")


def unknown_sms() -> Message:
    """An SMS to a customer who agreed to SMS, whose request may have reached Twilio unanswered.

    An SMS sent to her earlier is there too, for the status filter to leave out.
    """
    customer = factories.customer(phone=PHONE, first_name="Ann")
    consent.grant(customer, Channel.SMS, ConsentSource.ADMIN, evidence="agreed on the phone")
    content = factories.sms_content(slug="order-shipped", text="Hi {{ customer.first_name }}, your order shipped.")
    sms_to_ann = {
        "customer": customer,
        "channel": Channel.SMS,
        "category": Category.MARKETING,
        "sms_content": content,
        "source": "test",
        "send_after": timezone.now(),
        "attempts": 1,
        "to_address": PHONE,
        "body_text": "Hi Ann, your order shipped.",
        "parts": 1,
    }
    Message.objects.create(**sms_to_ann, dedupe_key="browser:earlier", status=Status.SENT, sent_at=timezone.now())
    return Message.objects.create(
        **sms_to_ann, dedupe_key="browser:order-shipped", status=Status.UNKNOWN, reason=Reason.NO_ANSWER
    )


def test_an_operator_finds_an_unknown_sms_by_its_status_and_resends_it_after_confirming(page, screenshot):
    # The events inline is shown only with the view permission on message events.
    staff_user("operator", "view_message", "change_message")  # the events come with the message
    message = unknown_sms()
    log_in(page, "operator")

    page.goto("/admin/messaging/message/")
    page.locator("#changelist-filter").get_by_role("link", name="Unknown", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    screenshot("list-filtered-by-unknown")
    page.locator("#result_list").get_by_role("link", name=str(message.pk), exact=True).click()

    expect(page.locator("#unknown-explained")).to_contain_text(
        "does not know whether this message reached the customer"
    )
    screenshot("unknown-sms")
    page.locator(".uncertain-actions").get_by_role("link", name="Resend", exact=True).click()

    expect(page.locator("h1")).to_have_text("Resend: are you sure?")
    expect(page.locator("#content-main")).to_contain_text("the customer receives it twice: you accept that risk")
    expect(page.locator("#messages-to-act-on")).to_contain_text(f"#{message.pk} SMS to")
    expect(page.locator("#messages-to-act-on")).to_contain_text(PHONE)
    screenshot("confirmation")
    page.get_by_role("button", name="Confirm: resend").click()

    expect(page.locator(".messagelist")).to_contain_text(
        f"Message {message.pk} resent: it is queued and goes when a worker takes it."
    )
    expect(page.locator(".field-status .readonly")).to_have_text("Queued")
    latest_event = page.locator("#events-group tbody tr.has_original").last
    expect(latest_event).to_contain_text("Queued")
    expect(latest_event).to_contain_text(
        "Resent by operator, who accepted the risk that the customer receives it twice."
    )
    screenshot("resent")
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_a_viewer_sees_what_unknown_means_and_no_button_or_action_to_act_on_it(page, screenshot):
    staff_user("viewer", "view_message")
    message = unknown_sms()
    log_in(page, "viewer")

    page.goto("/admin/messaging/message/?status__exact=unknown")
    screenshot("list")
    expect(page.locator("select[name=action] option", has_text="unknown messages")).to_have_count(0)
    page.locator("#result_list").get_by_role("link", name=str(message.pk), exact=True).click()

    expect(page.locator("#unknown-explained")).to_contain_text("It is not retried by itself")
    expect(page.locator("#unknown-explained")).to_contain_text("Acting on it needs the permission to change messages.")
    for label in ACTION_LABELS:
        expect(page.get_by_role("link", name=label, exact=True)).to_have_count(0)
    screenshot("unknown-sms")
