"""The contract every SMS backend keeps (messaging/backends/sms/base.py), held to each one.

Console, locmem, and Twilio against the local fake of its API (tests/fake_twilio.py):
each is built from the dotted path the settings name, sends, and answers the same way.
A backend that cannot send raises one of ``messaging.exceptions``, never its client
library's own error, and an error that proves nothing left leaves nothing at the provider.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core import checks
from django.utils import timezone

from messaging.backends import sms as sms_backends
from messaging.backends.sms import locmem
from messaging.backends.sms.base import BaseSmsBackend, FoundSms, OutgoingSms, SmsResult
from messaging.exceptions import (
    DeliveryError,
    OutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from messaging.models import Status
from tests.fake_twilio import FakeTwilio, Reply

PHONE = "+12125550100"
#: The worst text a marketer can send: every alphabet, emoji with joiners, line breaks, 1,600 characters.
WORST_BODY = ("Olá Zoë, 你好 👩‍👩‍👧 ½ price\r\n€5 off {curly} \\ back\n" * 40)[:1600]


@dataclass
class Harness:
    """One backend under the contract: its dotted path, and where to read what it sent."""

    path: str
    delivered: Callable[[], list[tuple[str, str]]]  # (to, body) of each SMS that left
    #: Ways to make the next send fail, each with the error the contract says it raises.
    failures: dict[str, tuple[Callable[[], None], type[DeliveryError]]] = field(default_factory=dict)
    #: Failures that prove nothing reached the provider.
    before_sending: tuple[str, ...] = ()


def console_harness(capsys, settings, fake) -> Harness:
    def delivered():
        out = capsys.readouterr().out
        blocks = out.split("--- SMS to ")[1:]
        return [(block.split(" ", 1)[0], block.split("---\n", 1)[1].rsplit("\n---\n", 1)[0]) for block in blocks]

    return Harness("messaging.backends.sms.console.SmsBackend", delivered)


def locmem_harness(capsys, settings, fake) -> Harness:
    locmem.outbox.clear()
    return Harness("messaging.backends.sms.locmem.SmsBackend", lambda: [(sms.to, sms.body) for sms in locmem.outbox])


def twilio_harness(capsys, settings, fake: FakeTwilio, path="messaging.backends.sms.twilio.SmsBackend") -> Harness:
    def unconfigured():
        settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = ""

    def unreachable():
        fake.stop()

    return Harness(
        path,
        lambda: [(sms["to"], sms["body"]) for sms in fake.accepted],
        failures={
            "not configured": (unconfigured, TransientDeliveryError),
            "unreachable": (unreachable, TransientDeliveryError),
            "rate limited": (lambda: fake.reply_with(429), TransientDeliveryError),
            "a server error": (lambda: fake.reply_with(500), TransientDeliveryError),
            "an invalid number": (
                lambda: fake.reply_with(FakeTwilio.error(21211, "Invalid 'To' Phone Number")),
                PermanentDeliveryError,
            ),
            "an opted-out recipient": (
                lambda: fake.reply_with(FakeTwilio.error(21610, "Attempt to send to unsubscribed recipient")),
                RecipientOptedOut,
            ),
            "wrong credentials": (
                lambda: setattr(settings, "TRIGGERHUB_TWILIO_AUTH_TOKEN", "wrong"),
                PermanentDeliveryError,
            ),
            "the answer lost": (lambda: fake.reply_with(Reply(201, drop=True)), OutcomeUnknown),
            "a gateway timeout": (lambda: fake.reply_with(504), OutcomeUnknown),
        },
        before_sending=("not configured", "unreachable"),
    )


def twilio_at_its_home(capsys, settings, fake) -> Harness:
    return twilio_harness(capsys, settings, fake, path="messaging.providers.twilio.backend.SmsBackend")


HARNESSES = {
    "console": console_harness,
    "locmem": locmem_harness,
    "twilio": twilio_harness,
    "twilio at its home": twilio_at_its_home,
}
FAILURES = [
    (name, failure)
    for name in HARNESSES
    if name.startswith("twilio")
    for failure in twilio_harness(None, None, None).failures
]


@pytest.fixture(params=HARNESSES)
def harness(request, capsys, settings, fake_twilio) -> Harness:
    built = HARNESSES[request.param](capsys, settings, fake_twilio)
    settings.TRIGGERHUB_SMS_BACKEND = built.path
    return built


def send(body="Your order shipped", to=PHONE, message_id=7) -> SmsResult:
    return sms_backends.get_backend().send(OutgoingSms(to=to, body=body, message_id=message_id))


def test_the_settings_dotted_path_builds_a_backend_of_the_base_class(harness):
    assert isinstance(sms_backends.get_backend(), BaseSmsBackend)


def test_a_send_returns_the_providers_id_a_non_empty_string_new_for_every_sms(harness):
    first, second = send(message_id=1), send(message_id=2)

    assert isinstance(first, SmsResult)
    assert all(isinstance(result.provider_message_id, str) for result in (first, second))
    assert first.provider_message_id and second.provider_message_id
    assert first.provider_message_id != second.provider_message_id


def test_the_text_leaves_whole_to_the_number_given_every_alphabet_emoji_and_line_break(harness):
    send(body=WORST_BODY)

    assert harness.delivered() == [(PHONE, WORST_BODY)]


def test_its_settings_check_answers_check_messages_and_none_when_it_is_configured(harness):
    backend = type(sms_backends.get_backend())

    problems = backend.check_settings()

    assert problems == [] and all(isinstance(problem, checks.CheckMessage) for problem in problems)


@pytest.mark.parametrize("backend, failure", FAILURES, ids=[f"{b}: {f}" for b, f in FAILURES])
def test_a_failure_raises_the_error_messaging_exceptions_names_never_the_clients_own(
    backend, failure, capsys, settings, fake_twilio
):
    built = HARNESSES[backend](capsys, settings, fake_twilio)
    settings.TRIGGERHUB_SMS_BACKEND = built.path
    settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS = 2
    make_it_fail, expected = built.failures[failure]
    make_it_fail()

    with pytest.raises(DeliveryError) as raised:
        send()

    assert type(raised.value) is expected
    assert raised.value.retryable == issubclass(expected, TransientDeliveryError)
    assert str(raised.value)  # says what happened, in words
    if failure in built.before_sending:
        assert built.delivered() == [] and fake_twilio.requests == []


def test_a_backend_that_can_find_finds_what_it_sent_by_its_id_in_our_words(settings, fake_twilio):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.twilio.SmsBackend"
    backend = sms_backends.get_backend()
    sent = backend.send(OutgoingSms(to=PHONE, body=WORST_BODY, message_id=7))

    by_id = backend.find(to=PHONE, body="", since=timezone.now(), provider_message_id=sent.provider_message_id)
    by_text = backend.find(to=PHONE, body=WORST_BODY, since=timezone.now() - timedelta(minutes=5))

    assert [found.provider_message_id for found in by_id] == [sent.provider_message_id]
    assert [found.provider_message_id for found in by_text] == [sent.provider_message_id]
    assert all(isinstance(found, FoundSms) and found.status == Status.SENT for found in by_id + by_text)
    assert backend.provider_name == "Twilio"


def test_a_backend_that_can_find_answers_nothing_for_an_id_it_does_not_know(settings, fake_twilio):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.twilio.SmsBackend"

    found = sms_backends.get_backend().find(
        to=PHONE,
        body="",
        since=timezone.now(),
        provider_message_id="SM" + "0" * 32,
    )

    assert found == []


@pytest.mark.parametrize(
    "path", ["messaging.backends.sms.console.SmsBackend", "messaging.backends.sms.locmem.SmsBackend"]
)
def test_a_backend_that_cannot_ask_its_provider_has_no_find(settings, path):
    settings.TRIGGERHUB_SMS_BACKEND = path

    assert getattr(sms_backends.get_backend(), "find", None) is None
