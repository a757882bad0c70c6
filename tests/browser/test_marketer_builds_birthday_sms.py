"""A marketer, not a superuser, builds the birthday SMS of issue 14 from nothing in the console,
with clicks and typing only: the SMS content, the activity (each of the story's mistakes gets
its error or warning on the way), the audience estimate, activation, and a dry run for a
customer in Sydney whose timeline is read off the page. The dry run leaves no row behind.

With TRIGGERHUB_DOC_SCREENSHOTS=1 the steps are also saved into docs/images/, where
docs/marketers.md shows them.
"""

import importlib
import os
import re
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection

from activities.models import Activity, ActivityStatus, Coupon, Enrollment
from customers import consent
from customers.models import ConsentRecord, ConsentSource, Event
from messaging.models import Message, MessageEvent, SmsContent
from tests import factories

from .admin_login import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SMS_TEXT = "Happy birthday {{ customer.first_name }}! Your code {{ coupon.code }} gives 10% off for 14 days."


@pytest.fixture
def doc_shot(screenshot):
    def take(step):
        path = screenshot(step)
        if os.environ.get("TRIGGERHUB_DOC_SCREENSHOTS") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_IMAGES / f"birthday-sms-{step}.png")
        return path

    return take


@pytest.fixture
def marketer():
    """Mara, in the Marketer group. The groups are the roles migration's; an earlier test of the
    session that emptied the tables (transaction=True) took them away, so they are made again."""
    roles = importlib.import_module("activities.migrations.0008_roles")
    roles.create_roles(apps, SimpleNamespace(connection=connection))
    user = User.objects.create_user("mara", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    return user


@pytest.fixture
def sydney():
    """Sam in Sydney, born 20 March, who agreed to marketing SMS; and one customer who did not."""
    sam = factories.customer(
        email="sam@example.com",
        first_name="Sam",
        country="AU",
        timezone="Australia/Sydney",
        phone="+61412345678",
        date_of_birth=date(1990, 3, 20),
    )
    consent.grant(sam, "sms", ConsentSource.FORM, evidence="signed up at the till")
    factories.customer(
        email="ola@example.com", first_name="Ola", country="NO", phone="+4791234567", date_of_birth=date(1985, 6, 1)
    )
    return sam


def rows():
    return {
        model.__name__: model.objects.count()
        for model in (Enrollment, Message, MessageEvent, Coupon, Event, ConsentRecord)
    }


def swapped(page, act):
    """Do ``act``, which makes the builder post the page and swap itself in again (htmx), and wait
    until the new builder is in place."""
    with page.expect_response(lambda response: response.request.method == "POST" and "/estimate/" not in response.url):
        act()
    page.wait_for_function("document.querySelectorAll('.htmx-request, .htmx-swapping, .htmx-settling').length === 0")


def choose(page, select, value):
    """Pick an option of a select whose change shows the builder again."""
    swapped(page, lambda: page.locator(select).select_option(value))


def press(page, button_name, within="#builder"):
    swapped(page, lambda: page.locator(within).get_by_role("button", name=button_name, exact=True).last.click())


def save(page, button_name):
    with page.expect_navigation():
        page.get_by_role("button", name=button_name, exact=True).click()


def test_a_marketer_builds_tries_and_activates_the_birthday_sms(page, live_server, marketer, sydney, doc_shot):
    log_in(page, "mara")

    # The SMS content, in the console's content section.
    page.goto("/admin/messaging/smscontent/add/")
    page.locator("input[name=name]").fill("Birthday 10%")
    page.locator("textarea[name=text]").fill(SMS_TEXT)
    page.wait_for_function("/\\b1 part\\b/.test(document.querySelector('.sms-segments').textContent)")
    doc_shot("01-sms-content")
    save(page, "Save")
    assert SmsContent.objects.filter(name="Birthday 10%", text=SMS_TEXT).exists()
    slug = SmsContent.objects.get(name="Birthday 10%").slug

    # The activity, first as a new marketer would guess it: an event called "birthday".
    page.goto("/admin/activities/activity/add/")
    page.locator("input[name=name]").fill("Birthday SMS")
    page.locator("input[name=trigger-event]").fill("birthday")
    press(page, "+ Add a condition")
    choose(page, "select[name=target-0-field]", "consent.sms")
    choose(page, "select[name=target-0-op]", "is")
    # The estimate follows the rows as they change (htmx asks the server; nothing is saved).
    sms = "#estimate [data-channel=sms]"
    page.locator("select[name=target-0-value]").select_option("false")
    page.wait_for_function(f"document.querySelector('{sms} .estimate-reachable').textContent === '0'")
    assert page.locator(f"{sms} .estimate-matching").inner_text() == "1"  # Ola, who never agreed
    page.locator("select[name=target-0-value]").select_option("true")
    page.wait_for_function(f"document.querySelector('{sms} .estimate-reachable').textContent === '1'")
    assert page.locator(f"{sms} .estimate-matching").inner_text() == "1"  # Sam
    # Mistake 2: the SMS uses {{ coupon.code }} and no step issues a coupon yet.
    press(page, "Send a message")
    choose(page, "select[name$=-channel]", "sms")
    choose(page, "select[name$=-content]", slug)
    assert "1 part" in page.locator("#builder .preview-sms").inner_text()
    save(page, "Save and continue editing")

    errors = page.locator(".errornote, .errorlist").all_inner_texts()
    assert any("coupon.code" in text and "coupon" in text.lower() for text in errors), errors
    assert Activity.objects.count() == 0  # an error stops the save
    doc_shot("02-error-coupon-without-a-coupon-step")

    # The coupon goes first: add it, move it above the send.
    press(page, "Issue a coupon")
    coupon_step = page.locator("li.step-issue_coupon")
    coupon_step.locator("input[name$=-value]").fill("10")
    coupon_step.locator("input[name$=-valid_days]").fill("14")
    swapped(page, lambda: coupon_step.get_by_role("button", name="↑").click())
    assert page.locator("li.step").first.get_attribute("data-step-type") == "issue_coupon"
    save(page, "Save and continue editing")

    # Saved as a draft; mistake 1 (an event the site never saw) is a warning with the way out.
    activity = Activity.objects.get(name="Birthday SMS")
    assert activity.status == ActivityStatus.DRAFT
    warnings = page.locator(".finding-warning").all_inner_texts()
    assert any('"birthday"' in text and "A date of the customer's" in text for text in warnings), warnings
    doc_shot("03-warning-unknown-event")

    # The trigger as it should be: seven days before the date of birth, yearly, at 10:00 local.
    choose(page, "select[name=trigger-type]", "date")
    page.locator("input[name=trigger-offset]").fill("7")
    page.locator("select[name=trigger-direction]").select_option("before")
    page.locator("select[name=trigger-field]").select_option("date_of_birth")
    page.locator("select[name=trigger-recurrence]").select_option("yearly")
    page.locator("input[name=trigger-at]").fill("10:00")
    save(page, "Save and continue editing")

    # Mistake 3: re-entry "once" on a yearly date.
    warnings = page.locator(".finding-warning").all_inner_texts()
    assert any("only the first time" in text for text in warnings), warnings
    assert (
        "7 days before the customer's date of birth, every year, at 10:00"
        in page.locator("#block-when summary").inner_text()
    )

    page.locator("select[name=reentry]").select_option("always")
    doc_shot("04-built")
    save(page, "Save and activate")

    activity.refresh_from_db()
    assert activity.status == ActivityStatus.ACTIVE, page.locator(".errornote, .errorlist").all_inner_texts()
    assert activity.definition()["trigger"] == {
        "type": "date",
        "field": "date_of_birth",
        "offset_days": -7,
        "recurrence": "yearly",
        "at": "10:00",
    }
    assert [step["type"] for step in activity.steps] == ["issue_coupon", "send"]
    assert activity.reentry == "always"
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    matching = page.locator("#estimate .estimate-matching").first.inner_text()
    reachable = page.locator("#estimate .estimate-reachable").first.inner_text()
    assert (matching, reachable) == ("1", "1")  # Sam; Ola never agreed to SMS
    doc_shot("05-active-with-estimate")

    # Try it on Sam, from New Year 2027: the SMS at 10:00 Sydney time on 13 March.
    before = rows()
    page.get_by_role("link", name="Try it on a customer").click()
    page.get_by_role("textbox", name="Customer").fill("sam@example.com")
    page.get_by_label("Start date").fill("2027-01-01")
    with page.expect_navigation():
        page.locator("#dry-run-submit").click()
    timeline = page.locator("#dry-run-timeline")
    timeline.wait_for()
    doc_shot("06-dry-run")

    coupon = timeline.locator("tr.timeline-entry[data-step-type=issue_coupon]")
    assert "coupon" in coupon.inner_text().lower()
    send = timeline.locator("tr.timeline-entry[data-step-type=send]")
    assert "Sat 13 Mar 2027, 10:00 AEDT" in send.locator(".local").inner_text()
    assert "12 Mar 2027, 23:00 UTC" in send.locator(".utc").inner_text()
    text = send.locator(".sms-text").inner_text()
    code = re.search(r"Your code (\S+) gives 10% off", text)
    assert text.startswith("Happy birthday Sam!") and code and len(code.group(1)) == 8, text
    assert send.locator(".timeline-policy").get_attribute("data-action") == "send"
    assert rows() == before  # nothing written stays
