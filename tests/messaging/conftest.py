import pytest

from tests.fake_twilio import FakeTwilio

TWILIO_BACKEND = "messaging.backends.sms.twilio.SmsBackend"


def twilio_environment(fake: FakeTwilio) -> dict:
    """The settings (as environment variables) that send SMS through Twilio to ``fake``."""
    return {
        "TRIGGERHUB_SMS_BACKEND": TWILIO_BACKEND,
        "TRIGGERHUB_TWILIO_ACCOUNT_SID": fake.account_sid,
        "TRIGGERHUB_TWILIO_AUTH_TOKEN": fake.auth_token,
        "TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID": fake.messaging_service_sid,
        "TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL": "https://triggerhub.example.com/webhooks/twilio/status/",
        "TRIGGERHUB_TWILIO_API_BASE": fake.url,
    }


@pytest.fixture
def fake_twilio(settings):
    """A local fake of Twilio's API, and this process's settings pointing the Twilio backend at it."""
    fake = FakeTwilio().start()
    for name, value in twilio_environment(fake).items():
        setattr(settings, name, value)
    settings.TRIGGERHUB_TWILIO_FROM_NUMBER = ""
    settings.TRIGGERHUB_TWILIO_TIMEOUT_SECONDS = 5
    yield fake
    fake.stop()
