import pytest
from django.core import checks

from messaging.checks import check_sms_backend

TWILIO = "messaging.backends.sms.twilio.SmsBackend"


@pytest.fixture
def twilio_settings(settings):
    settings.TRIGGERHUB_SMS_BACKEND = TWILIO
    settings.TRIGGERHUB_TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = "token"
    settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = "MG" + "2" * 32
    settings.TRIGGERHUB_TWILIO_FROM_NUMBER = ""
    settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL = "https://triggerhub.example.com/webhooks/twilio/status/"
    settings.TRIGGERHUB_MODE = "production"
    return settings


def ids(problems):
    return [problem.id for problem in problems]


def test_the_console_backend_needs_no_twilio_settings(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.console.SmsBackend"
    assert check_sms_backend() == []


def test_a_complete_twilio_configuration_passes(twilio_settings):
    assert check_sms_backend() == []


def test_an_sms_backend_that_cannot_be_imported_is_an_error(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.twillio.SmsBackend"

    [problem] = check_sms_backend()

    assert (problem.id, problem.level) == ("triggerhub.E001", checks.ERROR)
    assert "twillio" in problem.msg and "TRIGGERHUB_SMS_BACKEND" in problem.hint


def test_twilio_without_account_sid_or_auth_token_is_an_error_naming_the_variables(twilio_settings):
    twilio_settings.TRIGGERHUB_TWILIO_ACCOUNT_SID = ""
    twilio_settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = ""

    sid, token = check_sms_backend()

    assert (sid.id, token.id) == ("triggerhub.E002", "triggerhub.E003")
    assert "TRIGGERHUB_TWILIO_ACCOUNT_SID" in sid.hint and "TRIGGERHUB_TWILIO_AUTH_TOKEN" in token.hint


def test_twilio_without_messaging_service_or_from_number_is_an_error(twilio_settings):
    twilio_settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = ""

    [problem] = check_sms_backend()

    assert problem.id == "triggerhub.E004"
    assert "TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID" in problem.hint
    assert "TRIGGERHUB_TWILIO_FROM_NUMBER" in problem.hint


def test_a_from_number_in_e164_is_a_sender(twilio_settings):
    twilio_settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = ""
    twilio_settings.TRIGGERHUB_TWILIO_FROM_NUMBER = "+12125550100"
    assert check_sms_backend() == []


@pytest.mark.parametrize("number", ["212 555 0100", "12125550100", "+1 212 555 0100", "+1555"])
def test_a_from_number_not_in_valid_e164_is_an_error(twilio_settings, number):
    twilio_settings.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = ""
    twilio_settings.TRIGGERHUB_TWILIO_FROM_NUMBER = number

    [problem] = check_sms_backend()

    assert problem.id == "triggerhub.E005"
    assert repr(number) in problem.msg and "E.164" in problem.hint


def test_a_plain_http_status_callback_in_production_is_a_warning(twilio_settings):
    twilio_settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL = "http://triggerhub.example.com/webhooks/twilio/status/"

    [problem] = check_sms_backend()

    assert (problem.id, problem.level) == ("triggerhub.W001", checks.WARNING)
    assert "https://" in problem.hint


def test_a_plain_http_status_callback_is_fine_in_development(twilio_settings):
    twilio_settings.TRIGGERHUB_MODE = "development"
    twilio_settings.TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL = "http://localhost:8000/webhooks/twilio/status/"
    assert check_sms_backend() == []


def test_the_check_runs_with_djangos_system_checks(twilio_settings):
    twilio_settings.TRIGGERHUB_TWILIO_AUTH_TOKEN = ""
    assert "triggerhub.E003" in ids(checks.run_checks(tags=["triggerhub"]))
    assert "triggerhub.E003" in ids(checks.run_checks(include_deployment_checks=True))


def test_check_deploy_is_clean_with_a_complete_twilio_production_configuration():
    from tests.test_settings import PRODUCTION_ENV, manage

    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV,
        TRIGGERHUB_SMS_BACKEND=TWILIO, TRIGGERHUB_TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TRIGGERHUB_TWILIO_AUTH_TOKEN="token", TRIGGERHUB_TWILIO_FROM_NUMBER="+12125550100",
        TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL="https://triggerhub.example.com/webhooks/twilio/status/",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name, value", [
    ("TRIGGERHUB_SEND_WINDOW", "21:00-08:00"),
    ("TRIGGERHUB_SEND_WINDOW", "8am to 9pm"),
    ("TRIGGERHUB_FREQUENCY_CAPS", "sms:marketing:3 per week"),
])
def test_a_send_window_or_cap_that_does_not_parse_is_an_error(settings, name, value):
    from messaging.checks import check_send_rules

    setattr(settings, name, value)
    [problem] = check_send_rules()
    assert problem.id == "triggerhub.E006"
    assert name in problem.msg


def test_production_without_a_public_address_for_links_is_an_error(settings):
    from messaging.checks import check_public_base_url

    settings.TRIGGERHUB_MODE = "production"
    settings.TRIGGERHUB_PUBLIC_BASE_URL = ""
    settings.ALLOWED_HOSTS = [".example.com"]
    [problem] = check_public_base_url()
    assert problem.id == "triggerhub.E007"
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    assert check_public_base_url() == []
