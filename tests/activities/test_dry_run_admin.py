"""The "Try it on a customer" page: a form, the timeline it shows, its errors and its permission."""

import re
from datetime import date
from functools import partial

import pytest
from django.urls import reverse

from activities.models import Activity, ActivityStatus, Coupon, Enrollment, Reentry
from customers import consent
from customers.models import Channel, ConsentSource
from messaging.models import Category, Message, MessageEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def birthday():
    factories.sms_content(
        slug="birthday-sms", text="Happy birthday week, {{ customer.first_name }}! Code {{ coupon.code }}"
    )
    return Activity.objects.create(
        name="Birthday SMS",
        status=ActivityStatus.ACTIVE,
        category=Category.MARKETING,
        reentry=Reentry.ALWAYS,
        trigger={"type": "date", "field": "date_of_birth", "offset_days": -7, "recurrence": "yearly", "at": "10:00"},
        steps=[
            {"type": "issue_coupon", "percent_off": 10, "prefix": "BDAY"},
            {"type": "send", "channel": "sms", "content": "birthday-sms"},
        ],
    )


@pytest.fixture
def mia():
    customer = factories.customer(
        email="mia@example.com",
        external_id="shop-42",
        first_name="Mia",
        country="AU",
        phone="+61412345678",
        timezone="Australia/Sydney",
        date_of_birth=date(1990, 3, 15),
    )
    consent.grant(customer, Channel.SMS, ConsentSource.FORM, evidence="signup form")
    return customer


def try_url(activity):
    return reverse("admin:activities_activity_try", args=[activity.pk])


staff_with = partial(factories.staff_with, username="marketer")


def rows(response) -> list[str]:
    """Each timeline row's opening tag, in order."""
    return re.findall(r'<tr class="timeline-entry"[^>]*>', response.content.decode())


def test_the_page_shows_the_form_and_no_timeline_before_a_customer_is_picked(admin_client, birthday):
    response = admin_client.get(try_url(birthday))

    assert response.status_code == 200
    assert 'value="Try it"' in response.content.decode()
    assert response.context["timeline"] is None


def test_the_birthday_sms_timeline_shows_the_coupon_and_the_sms_at_10_sydney_time_with_its_code(
    admin_client, birthday, mia
):
    response = admin_client.get(
        try_url(birthday),
        {
            "customer": "mia@example.com",
            "start_date": "2027-01-10",
            "start_time": "09:00",
            "zone": "customer",
        },
    )

    page = response.content.decode()
    assert rows(response) == [
        '<tr class="timeline-entry" data-step-type="start" data-step-key="">',
        '<tr class="timeline-entry" data-step-type="issue_coupon" data-step-key="0">',
        '<tr class="timeline-entry" data-step-type="send" data-step-key="1">',
        '<tr class="timeline-entry" data-step-type="end" data-step-key="">',
    ]
    assert "Mon 8 Mar 2027, 10:00 AEDT" in page and "Sun 7 Mar 2027, 23:00 UTC" in page
    code = re.search(r"Issues coupon (BDAY-\w+)", page).group(1)
    assert f'<div class="message-text sms-text">Happy birthday week, Mia! Code {code}</div>' in page
    assert '<span class="policy-answer policy-send">Send</span>' in page
    assert "1 part, GSM-7" in page


def test_a_customer_is_found_by_external_id_or_phone(admin_client, birthday, mia):
    for text in ("shop-42", "+61412345678", "MIA@example.com"):
        response = admin_client.get(try_url(birthday), {"customer": text, "start_date": "2027-01-10"})
        assert response.context["timeline"].customer == mia


def test_the_start_may_be_given_in_utc(admin_client, birthday, mia):
    # 23:30 UTC on 7 March is 10:30 on 8 March in Sydney, past that day's 10:00: next year's birthday.
    response = admin_client.get(
        try_url(birthday),
        {
            "customer": "shop-42",
            "start_date": "2027-03-07",
            "start_time": "23:30",
            "zone": "utc",
        },
    )

    assert "Wed 8 Mar 2028, 10:00 AEDT" in response.content.decode()


def test_a_send_window_deferral_shows_until_when_and_why(admin_client, birthday, mia):
    birthday.send_rules = {"send_window": {"start": "12:00", "end": "20:00"}}
    birthday.save()

    page = admin_client.get(try_url(birthday), {"customer": "shop-42", "start_date": "2027-01-10"}).content.decode()

    assert '<span class="policy-answer policy-defer">Defer</span>' in page
    assert "until Mon 8 Mar 2027, 12:" in page and "Quiet hours: outside 12:00-20:00 in Australia/Sydney" in page


def test_a_customer_with_no_date_of_birth_is_told_it_would_never_start(admin_client, birthday):
    factories.customer(email="nobirthday@example.com", date_of_birth=None)

    page = admin_client.get(try_url(birthday), {"customer": "nobirthday@example.com"}).content.decode()

    assert (
        '<p class="dry-run-verdict errornote" id="dry-run-does-not-start">Would never start: no date_of_birth.</p>'
        in page
    )


def test_trying_leaves_no_row_behind(admin_client, birthday, mia):
    models = (Enrollment, Message, MessageEvent, Coupon)
    before = [model.objects.count() for model in models]

    admin_client.get(try_url(birthday), {"customer": "shop-42", "start_date": "2027-01-10"})

    assert [model.objects.count() for model in models] == before


# Bad input --------------------------------------------------------------------------------


def errors_for(client, activity, **params):
    response = client.get(try_url(activity), {"customer": "shop-42", **params})
    assert response.status_code == 200 and response.context["timeline"] is None
    return response.context["form"].errors


def test_an_unknown_customer_is_a_form_error(admin_client, birthday):
    errors = errors_for(admin_client, birthday, customer="nobody@example.com")

    assert errors["customer"] == [
        "No customer has the e-mail address, external id or phone number 'nobody@example.com'."
    ]


@pytest.mark.parametrize(
    "start_date, message",
    [
        ("99999-01-01", "Enter a date such as 2027-03-01."),
        ("2027-02-30", "Enter a date such as 2027-03-01."),
        ("tomorrow", "Enter a date such as 2027-03-01."),
        ("9999-12-31", "Pick a date between the years 1900 and 2500."),
        ("0001-01-01", "Pick a date between the years 1900 and 2500."),
    ],
)
def test_an_impossible_start_date_is_a_form_error(admin_client, birthday, mia, start_date, message):
    assert errors_for(admin_client, birthday, start_date=start_date)["start_date"] == [message]


def test_a_time_without_a_date_is_a_form_error(admin_client, birthday, mia):
    errors = errors_for(admin_client, birthday, start_time="10:00")

    assert errors["start_date"] == ["Give the date of the start too, or leave the time empty for now."]


def test_an_unparseable_time_is_a_form_error(admin_client, birthday, mia):
    assert errors_for(admin_client, birthday, start_date="2027-01-10", start_time="25:61")["start_time"] == [
        "Enter a time such as 09:30."
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "x" * 300,
        "nul%00byte",
        "%ED%A0%80",  # a lone surrogate, as UTF-8 bytes no browser should send
        "%3Cscript%3Ealert(1)%3C/script%3E",
    ],
)
def test_worst_customer_input_is_a_form_error_never_a_500(admin_client, birthday, query):
    response = admin_client.get(f"{try_url(birthday)}?customer={query}")

    assert response.status_code == 200
    assert response.context["form"].errors["customer"]
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_several_customers_with_one_address_are_offered_to_pick_from(admin_client, birthday):
    first = factories.customer(email="twin@example.com", date_of_birth=date(1980, 5, 1), first_name="One")
    second = factories.customer(email="twin@example.com", date_of_birth=date(1981, 6, 2), first_name="Two")

    errors = errors_for(admin_client, birthday, customer="twin@example.com")
    response = admin_client.get(try_url(birthday), {"customer": "twin@example.com", "which": second.pk})

    assert errors["which"] == ["2 customers match 'twin@example.com': pick one."]
    assert response.context["timeline"].customer == second != first


# Permission -------------------------------------------------------------------------------


def test_staff_without_the_view_permission_of_activities_get_403(client, birthday, mia):
    client.force_login(staff_with("view_customer"))

    assert client.get(try_url(birthday), {"customer": "shop-42"}).status_code == 403


def test_staff_who_may_not_view_customers_get_403(client, birthday, mia):
    client.force_login(staff_with("view_activity"))

    assert client.get(try_url(birthday), {"customer": "shop-42"}).status_code == 403


def test_a_viewer_of_activities_and_customers_may_try_one(client, birthday, mia):
    client.force_login(staff_with("view_activity", "view_customer"))

    response = client.get(try_url(birthday), {"customer": "shop-42", "start_date": "2027-01-10"})

    assert response.status_code == 200 and len(rows(response)) == 4


def test_an_unknown_activity_is_not_found(admin_client):
    assert admin_client.get(reverse("admin:activities_activity_try", args=[999999])).status_code == 404
