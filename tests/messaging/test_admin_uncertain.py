"""Ops act on unknown messages in the admin: check them with Twilio, resend them, or close them.

Staff who may change messages get the actions (on the list and as buttons on the
message's page), each behind a confirmation page; a viewer gets neither. The SMS
go through the real Twilio client to the fake Twilio server.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from messaging import credits, outbox, uncertain
from messaging.delivery import deliver
from messaging.models import Category, Channel, CreditEntry, Message, MessageEvent, Reason, SmsRate, Status
from tests import factories
from tests.fake_twilio import Reply

pytestmark = pytest.mark.django_db

PHONE = "+12125550100"
MESSAGES = reverse("admin:messaging_message_changelist")
ACTIONS = ("check_with_provider", "resend", "close_as_sent", "close_as_not_sent")


@pytest.fixture
def operator(client):
    user = factories.staff_with("view_message", "change_message", username="operator")
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    user = factories.staff_with("view_message", username="viewer")
    client.force_login(user)
    return user


def sms(dedupe_key="uncertain:1") -> Message:
    return outbox.enqueue(
        customer=factories.customer(phone=PHONE, first_name="Ann"),
        channel=Channel.SMS,
        content=factories.sms_content(slug=dedupe_key.replace(":", "-")),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=dedupe_key,
    )


def sms_whose_answer_was_lost(fake_twilio) -> Message:
    """Twilio took it, and the connection closed before its answer."""
    fake_twilio.reply_with(Reply(201, drop=True))
    message = sms()
    assert deliver(message.pk) == Status.UNKNOWN
    message.refresh_from_db()
    return message


def sms_whose_worker_died_before_sending(dedupe_key="uncertain:1") -> Message:
    """Claimed and approved, then the worker was killed before its request left: the lease expired."""
    message = sms(dedupe_key)
    now = timezone.now()
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENDING,
        attempts=1,
        to_address=PHONE,
        body_text="Hi Ann",
        parts=1,
        sent_at=now,
        lease_expires_at=now,
    )
    outbox.expire_leases(now=now + timedelta(seconds=1))
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.UNKNOWN, Reason.LEASE_EXPIRED)
    return message


def offered_actions(client) -> set[str]:
    action_form = client.get(MESSAGES).context["action_form"]
    return {name for name, _ in action_form.fields["action"].choices if name} if action_form else set()


def confirm(client, action, *messages):
    """Post the confirmation page's form for ``action`` on ``messages``."""
    return client.post(
        MESSAGES, {"action": action, "_selected_action": [m.pk for m in messages], "post": "yes"}, follow=True
    )


def said(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def last_event(message) -> MessageEvent:
    return message.events.order_by("pk").last()


# Who may act


def test_a_viewer_is_not_offered_the_actions_and_nothing_changes_when_they_post_them(client, viewer, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)
    events = message.events.count()

    assert not offered_actions(client) & set(ACTIONS)
    for action in ACTIONS:
        confirm(client, action, message)
        page = reverse("admin:messaging_message_uncertain", args=[message.pk, action])
        assert client.post(page, {"post": "yes"}).status_code == 403

    message.refresh_from_db()
    assert (message.status, message.events.count()) == (Status.UNKNOWN, events)
    assert len(fake_twilio.requests) == 1  # the send; nobody asked Twilio anything since


def test_a_viewer_sees_what_unknown_means_but_no_buttons(client, viewer, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)

    page = client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()

    assert "no answer came back" in page
    assert reverse("admin:messaging_message_uncertain", args=[message.pk, "resend"]) not in page


def test_an_operator_sees_the_buttons_on_an_unknown_messages_page_and_no_editable_field(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)

    response = client.get(reverse("admin:messaging_message_change", args=[message.pk]))

    page = response.content.decode()
    for action in ACTIONS:
        assert reverse("admin:messaging_message_uncertain", args=[message.pk, action]) in page
    assert "not retried by itself" in page
    assert 'name="_save"' not in page


# The confirmation comes first


def test_choosing_an_action_shows_a_confirmation_page_and_changes_nothing(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)

    response = client.post(MESSAGES, {"action": "resend", "_selected_action": [message.pk], "index": 0})

    assert response.status_code == 200
    assert "admin/messaging/message/confirm_uncertain_action.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert f"#{message.pk}" in page and "receives it twice" in page and "Cancel" in page
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN


def test_a_button_on_the_messages_page_asks_for_confirmation_before_acting(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)
    button = reverse("admin:messaging_message_uncertain", args=[message.pk, "close_as_not_sent"])

    asked = client.get(button)
    assert "will never be sent" in asked.content.decode()
    assert Message.objects.get(pk=message.pk).status == Status.UNKNOWN

    done = client.post(button, {"post": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("admin:messaging_message_change", args=[message.pk])
    assert Message.objects.get(pk=message.pk).status == Status.FAILED


def test_messages_that_are_not_unknown_are_skipped_and_counted(client, operator, fake_twilio):
    unknown = sms_whose_answer_was_lost(fake_twilio)
    sent = sms("uncertain:2")
    assert deliver(sent.pk) == Status.SENT

    asked = client.post(MESSAGES, {"action": "close_as_sent", "_selected_action": [unknown.pk, sent.pk], "index": 0})
    assert "1 selected message(s) skipped: only an unknown message" in asked.content.decode()

    response = confirm(client, "close_as_sent", unknown, sent)
    assert "1 selected message(s) skipped" in said(response)
    assert Message.objects.get(pk=unknown.pk).status == Status.SENT
    assert last_event(sent).status == Status.SENT and "Closed" not in last_event(sent).detail


# Check


def test_check_finds_the_sms_twilio_took_and_takes_its_sid_and_status(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)
    [taken] = fake_twilio.accepted

    response = confirm(client, "check_with_provider", message)

    message.refresh_from_db()
    assert (message.status, message.reason, message.provider_message_id) == (Status.SENT, "", taken["sid"])
    assert message.sent_at is not None  # frequency caps count it again
    event = last_event(message)
    assert f"Found at Twilio ({taken['sid']}, Twilio accepted): confirmed by the check of operator" in event.detail
    assert "It is now sent" in said(response)
    assert LogEntry.objects.get(object_id=str(message.pk)).user == operator


def test_check_of_an_sms_twilio_never_got_leaves_it_unknown_and_records_the_check(client, operator, fake_twilio):
    message = sms_whose_worker_died_before_sending()

    response = confirm(client, "check_with_provider", message)

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.UNKNOWN, Reason.LEASE_EXPIRED)
    event = last_event(message)
    assert event.detail.startswith("Not found at Twilio as of ") and event.detail.endswith("checked by operator.")
    assert event.payload["by"] == "operator"
    assert "It stays unknown: resend it" in said(response)


def test_check_does_not_take_the_sms_of_another_message_with_the_same_text(operator, fake_twilio):
    twin = sms("uncertain:twin")
    assert deliver(twin.pk) == Status.SENT  # "Hi Ann" to the same number, Twilio's SID recorded
    message = sms_whose_worker_died_before_sending()

    outcome = uncertain.check(message, by=operator)

    assert outcome.found is False
    assert Message.objects.get(pk=message.pk).status == Status.UNKNOWN


def test_check_fetches_the_sms_by_its_sid_when_we_have_one(operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)
    [taken] = fake_twilio.accepted
    Message.objects.filter(pk=message.pk).update(provider_message_id=taken["sid"], body_text="changed since")
    message.refresh_from_db()

    outcome = uncertain.check(message, by=operator)  # its text no longer matches: found by SID

    assert (outcome.found, outcome.provider_message_id) == (True, taken["sid"])


def test_check_when_twilio_cannot_be_reached_says_so_and_changes_nothing(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)
    events = message.events.count()
    fake_twilio.stop()

    response = confirm(client, "check_with_provider", message)

    assert "could not be checked: Could not reach Twilio" in said(response)
    assert "Nothing was changed" in said(response)
    message.refresh_from_db()
    assert (message.status, message.events.count()) == (Status.UNKNOWN, events)


def test_an_email_cannot_be_checked_automatically_and_stays_as_it_is(client, operator):
    message = outbox.enqueue(
        customer=factories.customer(),
        channel=Channel.EMAIL,
        content=factories.email_template(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="uncertain:email",
    )
    Message.objects.filter(pk=message.pk).update(status=Status.UNKNOWN, reason=Reason.NO_ANSWER)

    response = confirm(client, "check_with_provider", message)

    assert "cannot be checked automatically: look for it in your ESP's activity log" in said(response)
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN and message.events.count() == 1


# Resend


def test_resend_queues_the_same_message_and_it_is_delivered_once_more(
    client,
    operator,
    fake_twilio,
    django_capture_on_commit_callbacks,
):
    message = sms_whose_answer_was_lost(fake_twilio)

    with django_capture_on_commit_callbacks() as published:
        confirm(client, "resend", message)

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.QUEUED, "")
    event = last_event(message)
    assert event.detail == "Resent by operator, who accepted the risk that the customer receives it twice."
    assert len(published) == 1  # its delivery, once the resend committed
    assert deliver(message.pk) == Status.SENT
    message.refresh_from_db()
    assert message.attempts == 2
    assert [sent["body"] for sent in fake_twilio.accepted] == ["Hi Ann", "Hi Ann"]


def test_a_resent_sms_is_charged_once_for_the_resend(operator, fake_twilio, settings):
    settings.TRIGGERHUB_SMS_CREDITS_ENFORCED = True
    SmsRate.objects.create(country="", credits_per_part=Decimal("1"))
    credits.add(Decimal("10"))
    message = sms_whose_worker_died_before_sending()
    credits.debit(message, 1)  # what the approval of the lost attempt charged

    uncertain.resend(message, by=operator)
    assert deliver(message.pk) == Status.SENT

    assert credits.balance() == Decimal("9")
    assert CreditEntry.objects.filter(message=message).count() == 3  # charged, refunded, charged


def test_two_resends_from_stale_confirmation_pages_resend_once(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)

    confirm(client, "resend", message)
    deliver(message.pk)
    second = confirm(client, "resend", message)  # the other tab's confirmation

    assert "1 selected message(s) skipped" in said(second)
    assert message.events.filter(detail__startswith="Resent by").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_resends_at_once_one_wins_and_the_other_is_told_it_changed():
    operators = [User.objects.create_user(name, is_staff=True) for name in ("ann", "bob")]
    message = sms_whose_worker_died_before_sending()
    start, outcomes = threading.Barrier(2), []

    def resend_as(user):
        start.wait()
        try:
            uncertain.resend(Message.objects.get(pk=message.pk), by=user)
            outcomes.append("resent")
        except uncertain.NoLongerUnknown as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=resend_as, args=(user,)) for user in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[1] == "resent"
    assert "is no longer unknown (it is queued now)" in sorted(outcomes)[0]
    assert message.events.filter(detail__startswith="Resent by").count() == 1


# Close


def test_close_as_sent_marks_it_sent_with_who_did_it(client, operator, fake_twilio):
    message = sms_whose_answer_was_lost(fake_twilio)

    confirm(client, "close_as_sent", message)

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.SENT, "")
    assert message.sent_at is not None
    assert last_event(message).detail == "Closed as sent by operator."
    assert LogEntry.objects.get(object_id=str(message.pk)).change_message == f"Message {message.pk} closed as sent."


def test_close_as_not_sent_fails_it_for_good(client, operator, fake_twilio):
    message = sms_whose_worker_died_before_sending()

    confirm(client, "close_as_not_sent", message)

    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.FAILED, Reason.CLOSED_BY_STAFF)
    assert message.sent_at is None  # frequency caps no longer count it
    assert last_event(message).detail == "Closed as not sent by operator: it will not be sent."
    assert deliver(message.pk) is None
    assert fake_twilio.requests == []


def test_an_operator_sees_on_the_messages_page_who_resent_it(client, operator):
    message = sms_whose_worker_died_before_sending()
    uncertain.resend(message, by=operator)

    page = client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()

    assert "Resent by operator" in page  # the events come with the message, no permission of their own
