"""A marketer saving an e-mail template in the admin, in Chromium, is told which line is refused."""

import pytest
from playwright.sync_api import expect

from messaging.models import EmailTemplate
from tests.browser.admin_login import log_in, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_saving_an_email_template_with_an_include_sees_its_line_refused_and_keeps_the_text(page, screenshot):
    staff_user("marketer", "view_emailtemplate", "add_emailtemplate", "change_emailtemplate")
    body = '<p>Hi {{ customer.first_name }},</p>\n{% include "x.html" %}\n<p>See you soon.</p>'
    log_in(page, "marketer")

    page.goto("/admin/messaging/emailtemplate/")
    page.locator(".object-tools a.addlink").click()
    page.locator("#id_name").press_sequentially("Order shipped")  # typed, so the slug follows it
    expect(page.locator("#id_slug")).to_have_value("order-shipped")
    page.locator("#id_subject").fill("Your order is on its way")
    page.locator("#id_html_body").fill(body)
    screenshot("filled-in")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".errornote")).to_contain_text("Please correct the error below.")
    expect(page.locator(".field-html_body .errorlist")).to_contain_text(
        "line 2: {% include %} is not allowed in a message template; paste the text in"
    )
    expect(page.locator("#id_html_body")).to_have_value(body)
    screenshot("refused")
    assert not EmailTemplate.objects.exists()
