"""E-mail that may have reached the ESP is never sent again blindly.

anymail's real Postmark backend talks to a local fake ESP (tests/fake_esp.py); Django's
real SMTP backend talks to a local fake SMTP server. Only an error that proves nothing
left (connection refused) or an answer that refuses the message is retried or failed;
a dropped connection, a read timeout, an unreadable success leave the message unknown.
"""

import smtplib
import socket
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured

from messaging import outbox, unsubscribe
from messaging.delivery import deliver_email_batch, drain_emails
from messaging.email_errors import classify_email_error
from messaging.exceptions import OutcomeUnknown, PermanentDeliveryError, TransientDeliveryError, failed_before_sending
from messaging.models import Category, Channel, EmailTemplate, Message, Reason, Status
from tests import factories
from tests.fake_esp import EspReply, FakeEsp

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_esp(settings):
    fake = FakeEsp().start()
    for name, value in fake.settings().items():
        setattr(settings, name, value)
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.5}
    yield fake
    fake.stop()


def queued_email(n=1):
    template = EmailTemplate.objects.filter(slug="welcome").first() or factories.email_template()
    return outbox.enqueue(
        customer=factories.customer(email=f"zoe{n}@example.com"),
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=f"outcome:{n}",
    )


def test_an_accepted_email_records_the_esps_message_id(fake_esp):
    message = queued_email()

    assert deliver_email_batch(message.pk) == Status.SENT

    message.refresh_from_db()
    assert len(message.provider_message_id) == 36 and fake_esp.recipients() == ["zoe1@example.com"]


def test_an_esp_that_takes_the_email_and_drops_the_connection_leaves_it_unknown_not_retried(fake_esp):
    fake_esp.reply_with(EspReply(200, drop=True))
    message = queued_email()

    assert deliver_email_batch(message.pk) == Status.UNKNOWN

    message.refresh_from_db()
    assert message.reason == Reason.NO_ANSWER and "may have taken the message" in message.detail
    assert drain_emails() == 0  # nothing left to send
    assert fake_esp.recipients() == ["zoe1@example.com"]


def test_an_esp_that_does_not_answer_in_time_leaves_it_unknown(fake_esp):
    fake_esp.reply_with(EspReply(200, delay=1.5))
    message = queued_email()

    assert deliver_email_batch(message.pk) == Status.UNKNOWN
    assert message.__class__.objects.get(pk=message.pk).reason == Reason.NO_ANSWER


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_esp_that_answers_it_could_not_take_it_now_is_retried(fake_esp, status):
    fake_esp.reply_with(status)
    message = queued_email()

    assert deliver_email_batch(message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.reason == Reason.TRANSIENT_ERROR and f"The ESP answered {status}" in message.detail


def test_a_gateway_timeout_in_front_of_the_esp_is_unknown(fake_esp):
    fake_esp.reply_with(504)

    assert deliver_email_batch(queued_email().pk) == Status.UNKNOWN


def test_an_esp_that_cannot_be_reached_is_retried(fake_esp):
    message = queued_email()
    fake_esp.stop()  # the port is closed: connection refused, nothing was sent

    assert deliver_email_batch(message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.reason == Reason.TRANSIENT_ERROR and "could not be reached" in message.detail


def test_in_a_batch_only_the_email_whose_answer_was_lost_is_unknown(fake_esp):
    messages = [queued_email(n) for n in range(3)]
    fake_esp.reply_with(200, EspReply(200, drop=True), 200)

    outcomes = deliver_email_batch(messages[0].pk) and drain_emails()

    statuses = [m.__class__.objects.get(pk=m.pk).status for m in messages]
    assert statuses == [Status.SENT, Status.UNKNOWN, Status.SENT], outcomes
    assert sorted(fake_esp.recipients()) == [f"zoe{n}@example.com" for n in range(3)]


class FakeSmtp:
    """A mail server that greets, takes MAIL, RCPT and DATA, and then never answers the message."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.messages_received = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(client,), daemon=True).start()

    def _talk(self, client):
        reader = client.makefile("rb")
        client.sendall(b"220 fake ESMTP\r\n")
        for line in reader:
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                client.sendall(b"250 fake\r\n")
            elif command.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                client.sendall(b"250 OK\r\n")
            elif command == b"DATA":
                client.sendall(b"354 go on\r\n")
                for data in reader:
                    if data == b".\r\n":
                        self.messages_received += 1
                        break
                return  # took the message; the answer never comes
            elif command == b"QUIT":
                client.sendall(b"221 bye\r\n")
                return

    def close(self):
        self.socket.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; the port stops listening
        self.socket.close()


def test_an_smtp_server_that_takes_the_data_and_never_answers_leaves_it_unknown(settings):
    server = FakeSmtp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 0.5
    message = queued_email()
    try:
        assert deliver_email_batch(message.pk) == Status.UNKNOWN
    finally:
        server.close()
    assert server.messages_received == 1


def test_an_smtp_server_that_refuses_the_connection_is_retried(settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # a port of ours where nothing listens
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", unused.getsockname()[1], 0.5

        assert deliver_email_batch(queued_email().pk) == Status.QUEUED


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.com": (451, b"greylisted, try later")}), TransientDeliveryError),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such mailbox")}), PermanentDeliveryError),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), OutcomeUnknown),
        (ConnectionRefusedError(111, "Connection refused"), TransientDeliveryError),
    ],
)
def test_smtp_errors_are_sorted_by_whether_the_message_may_have_left(error, kind):
    assert type(classify_email_error(error)) is kind


def test_a_url_that_is_no_url_proves_nothing_left():
    import requests

    try:
        requests.post("api.example.com/no-scheme", timeout=1)
    except requests.RequestException as exc:
        assert failed_before_sending(exc)


def test_a_setting_the_headers_need_fails_before_the_send_and_is_retried_not_unknown(settings, monkeypatch):
    message = queued_email()

    def no_address(message):
        raise ImproperlyConfigured("TRIGGERHUB_PUBLIC_BASE_URL is needed for unsubscribe links")

    monkeypatch.setattr(unsubscribe, "list_unsubscribe_headers", no_address)

    assert deliver_email_batch(message.pk) == Status.QUEUED
    assert "TRIGGERHUB_PUBLIC_BASE_URL" in Message.objects.get(pk=message.pk).detail


def test_a_sender_address_no_smtp_server_takes_fails_the_message_before_the_send(settings):
    server = FakeSmtp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 0.5
    template = factories.email_template(slug="bad-sender", from_email="Shop, Inc <s@example.com>")
    message = outbox.enqueue(
        customer=factories.customer(email="zoe@example.com"),
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="bad-sender",
    )
    try:
        assert deliver_email_batch(message.pk) == Status.FAILED
    finally:
        server.close()
    assert server.messages_received == 0
    assert "correct the template's sender" in Message.objects.get(pk=message.pk).detail
