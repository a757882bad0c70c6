"""One home per provider: Twilio's code lives in messaging/providers/twilio/, reports reach
status.py in our words, and every old path still works."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.urls import resolve

from messaging import status, webhooks
from messaging.models import Channel, Status
from messaging.providers import email, postmark
from messaging.providers.twilio import backend, statuses
from messaging.providers.twilio import webhooks as twilio_webhooks

MESSAGING = Path(__file__).resolve().parents[2] / "messaging"
TWILIO_HOME = MESSAGING / "providers" / "twilio"
#: Files outside Twilio's home that may name it, and why.
MAY_NAME_TWILIO = {
    "providers/__init__.py": "the index of the provider homes lists Twilio's",
    "backends/sms/twilio.py": "the backend's old dotted path, which the settings name: a re-export",
    "webhooks.py": "re-exports the status callback view that triggerhub/urls.py routes",
    "checks.py": "hints naming the backend's dotted path and the TRIGGERHUB_TWILIO_* settings",
    "admin.py": "help text of 'Check with the provider' names the product",
    "templates/admin/messaging/message/change_form.html": "the same help on the message's page",
    "sms.py": "segment counting is tested against Twilio's calculator; the docstring says so",
}


def test_outside_its_home_only_settings_level_references_and_shims_name_twilio():
    naming = {
        path.relative_to(MESSAGING).as_posix()
        for path in MESSAGING.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".html", ".txt", ".js"}
        and TWILIO_HOME not in path.parents
        and "twilio" in path.read_text(encoding="utf-8").lower()
    }

    assert naming <= set(MAY_NAME_TWILIO), f"Twilio code outside its home: {sorted(naming - set(MAY_NAME_TWILIO))}"


def test_status_py_names_no_provider():
    text = (MESSAGING / "status.py").read_text(encoding="utf-8")

    assert not re.search(r"twilio|postmark|sendgrid|mailgun|anymail|amazon|brevo", text, re.IGNORECASE)


def test_the_backends_old_dotted_path_is_the_same_class():
    from messaging.backends.sms.twilio import SmsBackend

    assert SmsBackend is backend.SmsBackend


def test_the_status_callback_url_routes_to_twilios_view_through_its_old_name():
    assert webhooks.twilio_status is twilio_webhooks.status_callback
    assert resolve("/webhooks/twilio/status/").func is twilio_webhooks.status_callback


def test_a_failed_callback_for_a_stop_reply_reads_as_a_refusal_by_an_opted_out_recipient():
    report = twilio_webhooks.report_from(
        {
            "MessageSid": "SM1",
            "MessageStatus": "Failed",
            "ErrorCode": "21610",
            "To": "+12125550100",
        }
    )

    assert (report.channel, report.provider_message_id, report.status) == (Channel.SMS, "SM1", Status.FAILED)
    assert (report.error_code, report.recipient_action) == (21610, status.RecipientAction.UNSUBSCRIBED)
    assert report.description.startswith("Twilio Failed, error 21610: the recipient replied STOP")
    assert report.payload["To"] == "+12125550100"


@pytest.mark.parametrize("error_code", ["", "abc", "NaN", "1e3", "\udcff"])
def test_an_error_code_that_is_not_a_number_is_no_error_code(error_code):
    report = twilio_webhooks.report_from({"MessageSid": "SM1", "MessageStatus": "delivered", "ErrorCode": error_code})

    assert (report.status, report.error_code, report.description) == (Status.DELIVERED, None, "Twilio delivered")


def test_an_unknown_error_code_points_to_twilios_page_for_it():
    assert statuses.describe("undelivered", 30_008) == (
        "Twilio undelivered, error 30008: see https://www.twilio.com/docs/errors/30008"
    )


def test_a_status_twilio_has_not_invented_yet_moves_nothing():
    assert twilio_webhooks.report_from({"MessageSid": "SM1", "MessageStatus": "teleported"}).status is None


def tracking_event(event_type="bounced", esp_event=None, **fields):
    defaults = {
        "event_type": event_type,
        "message_id": "pm-1",
        "metadata": {},
        "recipient": "sam@example.com",
        "description": "",
        "mta_response": "",
        "click_url": None,
        "timestamp": None,
        "esp_event": esp_event or {},
    }
    return SimpleNamespace(**{**defaults, **fields})


def test_a_postmark_soft_bounce_is_undelivered_not_bounced():
    event = tracking_event(esp_event={"Type": "SoftBounce"})

    assert email.report_from(event, postmark.ESP_NAME).status == Status.UNDELIVERED
    assert email.report_from(event, "SendGrid").status == Status.BOUNCED  # the quirk is Postmark's alone


def test_a_complaint_reads_as_delivered_with_the_recipients_complaint():
    report = email.report_from(tracking_event("complained"), "Postmark")

    assert (report.status, report.recipient_action) == (Status.DELIVERED, status.RecipientAction.COMPLAINED)


@pytest.mark.parametrize(
    "ours, expected",
    [
        ("42", 42),
        (42, 42),
        ("", None),
        ("forty-two", None),
        (None, None),
        ("9" * 40, int("9" * 40)),
    ],
)
def test_our_message_id_comes_back_in_the_metadata_or_is_none(ours, expected):
    assert email.our_message_id({"triggerhub_message": ours}) == expected


@pytest.mark.django_db
def test_a_report_whose_own_id_is_beyond_any_row_is_for_no_message_of_ours():
    report = email.report_from(
        tracking_event("delivered", message_id="", metadata={"triggerhub_message": "9" * 40}), "Postmark"
    )

    assert status.apply_report(report) is None
