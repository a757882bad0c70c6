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
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION_ENV,
        DJANGO_EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        TRIGGERHUB_SMS_BACKEND=TWILIO,
        TRIGGERHUB_TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TRIGGERHUB_TWILIO_AUTH_TOKEN="token",
        TRIGGERHUB_TWILIO_FROM_NUMBER="+12125550100",
        TRIGGERHUB_TWILIO_STATUS_CALLBACK_URL="https://triggerhub.example.com/webhooks/twilio/status/",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "name, value",
    [
        ("TRIGGERHUB_SEND_WINDOW", "21:00-08:00"),
        ("TRIGGERHUB_SEND_WINDOW", "8am to 9pm"),
        ("TRIGGERHUB_FREQUENCY_CAPS", "sms:marketing:3 per week"),
    ],
)
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


# --- Production must deliver -----------------------------------------------------------


@pytest.fixture
def production(settings):
    settings.TRIGGERHUB_MODE = "production"
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.TRIGGERHUB_SMS_BACKEND = TWILIO
    settings.TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS = []
    return settings


def delivery_problems():
    from messaging.checks import check_backends_deliver

    return check_backends_deliver()


def test_an_esp_and_twilio_in_production_pass(production):
    assert delivery_problems() == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "anymail.backends.test.EmailBackend",
    ],
)
def test_an_email_backend_that_delivers_nothing_is_an_error_in_production(production, backend):
    production.EMAIL_BACKEND = backend

    [problem] = delivery_problems()

    assert (problem.id, problem.level) == ("triggerhub.E008", checks.ERROR)
    assert "DJANGO_EMAIL_BACKEND" in problem.msg and backend in problem.msg
    assert "anymail.backends.postmark.EmailBackend" in problem.hint
    assert "TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS=email" in problem.hint


def test_no_email_backend_at_all_is_an_error_in_production(production):
    production.EMAIL_BACKEND = ""
    [problem] = delivery_problems()
    assert problem.id == "triggerhub.E008"
    assert "DJANGO_EMAIL_BACKEND is not set" in problem.msg


def test_an_email_backend_that_cannot_be_imported_is_an_error_in_production(production):
    production.EMAIL_BACKEND = "anymail.backends.postmarc.EmailBackend"
    [problem] = delivery_problems()
    assert problem.id == "triggerhub.E008"
    assert "postmarc" in problem.msg


@pytest.mark.parametrize(
    "backend",
    [
        "messaging.backends.sms.console.SmsBackend",
        "messaging.backends.sms.locmem.SmsBackend",
    ],
)
def test_an_sms_backend_that_sends_nothing_is_an_error_in_production(production, backend):
    production.TRIGGERHUB_SMS_BACKEND = backend

    [problem] = delivery_problems()

    assert (problem.id, problem.level) == ("triggerhub.E009", checks.ERROR)
    assert "TRIGGERHUB_SMS_BACKEND" in problem.msg and backend in problem.msg
    assert "messaging.backends.sms.twilio.SmsBackend" in problem.hint
    assert "TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS=sms" in problem.hint


def test_backends_explicitly_allowed_not_to_deliver_are_only_a_warning(production):
    production.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    production.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.console.SmsBackend"
    production.TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS = ["email", "sms"]

    problems = delivery_problems()

    assert [(p.id, p.level) for p in problems] == [("triggerhub.W002", checks.WARNING)] * 2
    assert "DJANGO_EMAIL_BACKEND" in problems[0].msg and "TRIGGERHUB_SMS_BACKEND" in problems[1].msg


def test_allowing_one_channel_does_not_allow_the_other(production):
    production.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    production.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.console.SmsBackend"
    production.TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS = ["sms"]
    assert [p.id for p in delivery_problems()] == ["triggerhub.E008", "triggerhub.W002"]


def test_the_console_backends_are_fine_in_development(production):
    production.TRIGGERHUB_MODE = "development"
    production.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    production.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.console.SmsBackend"
    assert delivery_problems() == []


def test_the_delivery_check_runs_with_djangos_system_checks(production):
    production.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    production.TRIGGERHUB_TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    production.TRIGGERHUB_TWILIO_AUTH_TOKEN = "token"
    production.TRIGGERHUB_TWILIO_MESSAGING_SERVICE_SID = "MG" + "2" * 32
    assert "triggerhub.E008" in ids(checks.run_checks(tags=["triggerhub"]))
