"""The console's navigation in Chromium: a marketer sees their sections in order and no operations;
an administrator finds the operations last, under their own heading."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection
from playwright.sync_api import expect

from tests.browser.admin_login import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARKETER_SECTIONS = ["Activities", "Content", "Customers", "Reports"]


@pytest.fixture(autouse=True)
def roles():
    """The groups as the roles migration makes them (an earlier test's flush deleted them)."""
    roles_migration = importlib.import_module("activities.migrations.0008_roles")
    roles_migration.create_roles(apps, SimpleNamespace(connection=connection))


def member_of(group_name: str, username: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_a_marketer_sees_activities_content_customers_and_reports_and_no_operations(page, screenshot):
    member_of("Marketer", "marketer")
    log_in(page, "marketer")

    captions = page.locator("#content-main .module caption")
    expect(captions).to_have_text(MARKETER_SECTIONS)
    for section in MARKETER_SECTIONS:
        expect(page.locator("#content-main caption", has_text=section)).to_be_visible()
    expect(page.get_by_role("link", name="Coupon pools", exact=True)).to_be_visible()
    expect(page.get_by_text("Periodic tasks")).to_have_count(0)
    expect(page.get_by_text("API keys")).to_have_count(0)
    expect(page.get_by_text("Operations", exact=True)).to_have_count(0)
    screenshot("marketer-index")

    page.get_by_role("link", name="Messages", exact=True).click()
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar.locator("caption")).to_have_text(MARKETER_SECTIONS)
    expect(sidebar.get_by_role("link", name="Messages", exact=True)).to_have_attribute("aria-current", "page")
    screenshot("marketer-sidebar")


def test_an_administrator_finds_operations_last_under_their_own_heading(page, screenshot):
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(page, "admin")

    heading = page.locator("#content-main .console-operations-heading")
    expect(heading).to_have_text("Operations")
    expect(heading).to_be_visible()
    captions = page.locator("#content-main .module caption").all_text_contents()
    assert [caption.strip() for caption in captions[:4]] == MARKETER_SECTIONS
    assert [caption.strip() for caption in captions[-3:]] == ["Sending", "Schedules", "People and access"]
    # Below the heading, and so below every marketer section.
    assert page.get_by_role("link", name="Periodic tasks").bounding_box()["y"] > heading.bounding_box()["y"]
    assert page.get_by_role("link", name="Messages", exact=True).bounding_box()["y"] < heading.bounding_box()["y"]
    screenshot("administrator-index")

    page.get_by_role("link", name="Periodic tasks").click()
    expect(page.locator("#nav-sidebar .console-operations-heading")).to_be_visible()
    expect(page.locator("#nav-sidebar .current-model th")).to_have_text("Periodic tasks")
    screenshot("administrator-sidebar")
