"""A marketer (not a superuser) records SMS consent, gives a coupon pool codes and is warned about a
placeholder TriggerHub does not fill, in Chromium, with clicks and typing only."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from activities.models import Coupon, CouponPool
from customers.models import Channel, ConsentRecord, ConsentSource, Customer
from messaging.models import SmsContent
from tests.browser.admin_login import log_in, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: What a marketer's role allows for these pages (the Marketer group gives these and more).
MARKETER_PERMISSIONS = (
    "view_customer",
    "view_consentrecord",
    "add_consentrecord",
    "view_couponpool",
    "change_couponpool",
    "view_coupon",
    "view_smscontent",
    "add_smscontent",
    "change_smscontent",
    "view_smscontentvariant",
    "add_smscontentvariant",
    "change_smscontentvariant",
    "delete_smscontentvariant",
)


def test_a_marketer_records_sms_consent_adds_coupon_codes_and_sees_a_placeholder_warning(page, screenshot):
    staff_user("marketer", *MARKETER_PERMISSIONS)
    customer = Customer.objects.create(
        email="zoe@example.com",
        first_name="Zoë",
        phone="+61412345678",
        country="AU",
        timezone="Australia/Sydney",
    )
    pool = CouponPool.objects.create(slug="birthday-10", name="Birthday 10%", percent_off=10)
    log_in(page, "marketer")

    # 1. Consent, from the customer's page.
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")
    expect(page.locator(".field-local_time_now")).to_contain_text("Australia/Sydney (")
    consent_form = page.locator("#record-consent")
    consent_form.get_by_label("Channel").select_option("sms")
    consent_form.get_by_label("Granted").check()
    consent_form.get_by_role("button", name="Record consent").click()
    expect(page.locator(".field-evidence .errorlist")).to_contain_text("Evidence is required")
    screenshot("consent-without-evidence")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_label("Granted").check()
    page.get_by_label("Evidence").fill("Asked for SMS offers at the Sydney shop counter, 2 Dec; form #118")
    page.get_by_role("button", name="Record consent").click()
    expect(page.locator(".messagelist .success")).to_have_text("Recorded SMS consent granted (source admin).")
    ledger = page.locator("#consent_records-group")
    expect(ledger).to_contain_text("Asked for SMS offers at the Sydney shop counter")
    expect(ledger).to_contain_text("Australia/Sydney")
    screenshot("consent-recorded")
    [stored] = ConsentRecord.objects.all()
    assert (stored.channel, stored.source) == (Channel.SMS, ConsentSource.ADMIN)
    assert customer.has_consent(Channel.SMS)

    # 2. Three codes pasted into the pool.
    page.goto("/admin/activities/couponpool/")
    page.get_by_role("link", name="birthday-10").click()
    page.get_by_role("link", name="Add codes").click()
    page.get_by_label("Paste codes").fill("BDAY-7Q2K\nBDAY-M4XR, BDAY-ZP9D")
    screenshot("codes-pasted")
    page.get_by_role("button", name="Add codes").click()
    expect(page.locator(".messagelist .success")).to_have_text("3 code(s) added, 0 already there, 0 refused.")
    expect(page.locator(".field-free_codes")).to_contain_text("3")
    screenshot("codes-added")
    assert sorted(Coupon.objects.filter(pool=pool).values_list("code", flat=True)) == [
        "BDAY-7Q2K",
        "BDAY-M4XR",
        "BDAY-ZP9D",
    ]
    # A second list with one code already there and one that cannot be a code: the report says which.
    page.get_by_role("link", name="Add codes").click()
    page.get_by_label("Paste codes").fill("BDAY-ZP9D\nBDAY-QQ31\nBDAY\u00a0TYPO")
    page.get_by_role("button", name="Add codes").click()
    expect(page.locator(".messagelist .warning")).to_have_text("1 code(s) added, 1 already there, 1 refused.")
    expect(page.locator("#refused-codes")).to_contain_text("line 3: 'BDAY\\xa0TYPO' — a space inside (U+00A0")
    expect(page.locator("#already-stored")).to_contain_text("BDAY-ZP9D")
    expect(page.locator("#pool-counts")).to_contain_text("This pool has 4 free and 0 issued codes.")
    screenshot("codes-report")

    # 3. An SMS written with another tool's placeholder: saved, with a warning naming the fix.
    page.goto("/admin/messaging/smscontent/add/")
    page.locator("#id_name").press_sequentially("Birthday SMS")
    page.locator("#id_text").fill("Happy birthday [FIRSTNAME]! 10% off with {{ coupon.code }}")
    page.get_by_label("Count for a customer").fill("zoe@example.com")
    expect(page.locator(".sms-segments-rendered")).to_contain_text("Happy birthday [FIRSTNAME]! 10% off with")
    expect(page.locator(".sms-segments-customer")).to_contain_text("For zoe@example.com: GSM-7 · 1 part")
    screenshot("sms-counted-for-a-customer")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist .warning").first).to_contain_text(
        "Text, line 1: [FIRSTNAME] (brackets) is not filled in by TriggerHub and would be sent as typed; "
        "write {{ customer.first_name }}"
    )
    expect(page.locator("#placeholder-warnings")).to_contain_text("[FIRSTNAME]")
    screenshot("placeholder-warning")
    assert SmsContent.objects.get().text.startswith("Happy birthday [FIRSTNAME]!")

    # 4. Fixed as the warning says: the counter, still for Zoë, shows her name and what forced UCS-2.
    expect(page.get_by_label("Count for a customer")).to_have_value("zoe@example.com")
    page.locator("#id_text").fill("Happy birthday {{ customer.first_name }}! 10% off with {{ coupon.code }}")
    expect(page.locator(".sms-segments-customer")).to_contain_text("UCS-2 · 1 part")
    expect(page.locator(".sms-segments-customer")).to_contain_text("forced by ë (U+00EB)")
    expect(page.locator(".sms-segments-rendered")).to_contain_text("Happy birthday Zoë! 10% off with")
    screenshot("sms-fixed-and-counted")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator("#placeholder-warnings")).to_have_count(0)
    expect(page.locator(".messagelist .warning")).to_have_count(0)


def test_the_customer_page_shows_the_customers_local_time_beside_utc(page, screenshot):
    staff_user("marketer", *MARKETER_PERMISSIONS)
    customer = Customer.objects.create(email="ann@example.com", phone="+12125550100", country="US")
    log_in(page, "marketer")

    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    now = datetime.now(UTC)
    expect(page.locator(".field-local_time_now")).to_contain_text(f"America/New_York ({now:%H}:")
    screenshot("local-time")
