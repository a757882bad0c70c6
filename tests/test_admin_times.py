"""Every time the admin shows carries its zone, and every time it reads says which zone it reads.

Django localizes the dates it shows, so the zone comes from the English formats of
triggerhub/formats/en/formats.py; a date-and-time input labels its time with the current zone
(triggerhub/console.py) and still reads what the admin's date and time pickers write.
"""

import html
from datetime import UTC, datetime

import pytest
import time_machine
from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, get_format

from customers import api_keys
from customers.models import ApiKey
from messaging import outbox
from messaging.models import Category, Channel
from tests import factories

pytestmark = pytest.mark.django_db

TEN_UTC = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def api_key():
    with time_machine.travel(TEN_UTC, tick=False):
        api_key, _ = api_keys.create("my-shop")
    return api_key


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_time_is_formatted_with_its_zone():
    assert date_format(timezone.localtime(TEN_UTC), "DATETIME_FORMAT") == "2 Dec 2026, 10:00 UTC"
    assert date_format(timezone.localtime(TEN_UTC), "SHORT_DATETIME_FORMAT") == "2026-12-02 10:00 UTC"


def test_a_time_shown_in_another_zone_names_that_zone():
    with timezone.override("Australia/Sydney"):
        assert date_format(timezone.localtime(TEN_UTC), "DATETIME_FORMAT") == "2 Dec 2026, 21:00 AEDT"


def test_a_list_page_shows_times_with_their_zone(admin_client, api_key):
    listing = page(admin_client, reverse("admin:customers_apikey_changelist"))

    assert "2 Dec 2026, 10:00 UTC" in listing


def test_a_change_page_shows_read_only_times_with_their_zone(admin_client, api_key):
    change_page = page(admin_client, reverse("admin:customers_apikey_change", args=[api_key.pk]))

    assert '<div class="readonly">2 Dec 2026, 10:00 UTC</div>' in change_page


def test_a_marketers_report_shows_times_with_their_zone(admin_client):
    with time_machine.travel(TEN_UTC, tick=False):
        message = outbox.enqueue(
            customer=factories.customer(),
            channel=Channel.EMAIL,
            content=factories.email_template(),
            category=Category.TRANSACTIONAL,
            source="test",
            dedupe_key="times:1",
        )

    assert "2 Dec 2026, 10:00 UTC" in page(admin_client, reverse("admin:messaging_message_change", args=[message.pk]))


def test_a_date_and_time_input_says_which_zone_it_reads_the_time_in(admin_client, api_key):
    change_page = page(admin_client, reverse("admin:customers_apikey_change", args=[api_key.pk]))

    assert "Time (UTC):" in change_page


def test_a_time_typed_in_the_admins_inputs_is_read_in_the_zone_the_label_names(admin_client, api_key):
    response = admin_client.post(
        reverse("admin:customers_apikey_change", args=[api_key.pk]),
        {
            "name": "my-shop",
            "rate_limit_per_minute": "600",
            "revoked_at_0": "2026-12-02",
            "revoked_at_1": "10:00:00",
        },
    )

    assert response.status_code == 302
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == TEN_UTC


@pytest.mark.parametrize("day, time", [("2026-12-02", "25:99"), ("2 Dec 2026, 10:00 UTC", ""), ("tomorrow", "10:00")])
def test_a_time_the_admin_cannot_read_is_a_form_error_not_a_crash(admin_client, api_key, day, time):
    response = admin_client.post(
        reverse("admin:customers_apikey_change", args=[api_key.pk]),
        {
            "name": "my-shop",
            "rate_limit_per_minute": "600",
            "revoked_at_0": day,
            "revoked_at_1": time,
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["revoked_at"]
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is None


def test_the_input_formats_are_djangos_own():
    assert "%Y-%m-%d %H:%M:%S" in get_format("DATETIME_INPUT_FORMATS")
    assert forms.DateTimeField().clean("2026-12-02 10:00") == TEN_UTC
