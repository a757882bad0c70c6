"""The admin's login locks out, in Chromium: after the limit of wrong passwords, the right one
shows the lockout page, not the admin (django-axes, settings AXES_*)."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.admin_login import PASSWORD, log_in, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_after_the_limit_of_wrong_passwords_the_right_one_shows_the_lockout_page_not_the_admin(page, screenshot):
    staff_user("ops", "view_message")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(page, "ops", "not-the-password")
        expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")
    screenshot("wrong-password")
    log_in(page, "ops", "not-the-password")  # the limit: from here on, locked
    screenshot("limit-reached")

    log_in(page, "ops", PASSWORD)

    expect(page.locator("h1")).to_have_text("Too many failed logins")
    expect(page.locator("body")).to_contain_text(
        f"There were {settings.AXES_FAILURE_LIMIT} wrong passwords in a row for ops"
    )
    expect(page.locator("body")).to_contain_text("locked for now, even with the right password")
    expect(page.locator("body")).to_contain_text("ask an administrator to unlock the account")
    screenshot("locked-out")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.get_by_text("Dialog marketing console")).to_have_count(0)
