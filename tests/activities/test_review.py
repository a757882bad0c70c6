"""The builder's checks: each finding fires when it should, and not when it should not."""

import time
from datetime import UTC, datetime

import pytest

from activities import review as checks
from activities.models import Activity, ActivityStatus, Reentry
from activities.review import Level, review, variables_used
from customers import consent
from customers.events import emit
from customers.models import Channel, ConsentSource
from messaging.models import SmsContentVariant
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def definition(**changes) -> dict:
    """An activity on order_placed sending the SMS "thanks", with ``changes``."""
    data = {
        "category": "marketing",
        "trigger": {"type": "event", "event": "order_placed"},
        "target": [],
        "goal": {},
        "steps": [{"type": "send", "channel": "sms", "content": "thanks"}],
        "send_rules": {},
        "reentry": Reentry.ALWAYS,
        "reentry_days": None,
    }
    return {**data, **changes}


def birthday(**trigger) -> dict:
    return {
        "type": "date",
        "field": "date_of_birth",
        "offset_days": -7,
        "recurrence": "yearly",
        "at": "10:00",
        **trigger,
    }


def send(content="thanks", channel="sms") -> dict:
    return {"type": "send", "channel": channel, ("content" if channel == "sms" else "template"): content}


COUPON = {"type": "issue_coupon", "percent_off": 10, "prefix": "BDAY", "valid_days": 14}


@pytest.fixture
def customer():
    return factories.customer(first_name="Ann", date_of_birth=datetime(1990, 5, 31).date())


@pytest.fixture
def coupon_sms(customer):
    return factories.sms_content("thanks", text="Thanks! Your code: {{ coupon.code }}")


def found(findings, where=None, level=None, containing=""):
    return [
        finding
        for finding in findings
        if (where is None or finding.where == where)
        and (level is None or finding.level == level)
        and containing in finding.text
    ]


# --- Variables: what the path to a send provides ----------------------------------------------


def test_coupon_code_after_an_issue_coupon_step_is_no_error(coupon_sms):
    assert not found(review(definition(steps=[COUPON, send()]), now=NOW), level=Level.ERROR)


def test_coupon_code_without_a_coupon_step_is_an_error_on_the_send(coupon_sms):
    findings = review(definition(steps=[{"type": "wait", "days": 1}, send()]), now=NOW)
    [error] = found(findings, level=Level.ERROR)
    assert error.where == "steps.1"
    assert "{{ coupon.code }}" in error.text and "Issue coupon" in error.text


def test_a_coupon_issued_in_the_other_branch_lane_does_not_reach_the_send(coupon_sms):
    steps = [
        {"type": "branch", "if": [{"field": "country", "op": "eq", "value": "US"}], "then": [COUPON], "else": [send()]}
    ]
    [error] = found(review(definition(steps=steps), now=NOW), level=Level.ERROR)
    assert error.where == "steps.0.else.0" and "coupon" in error.text


def test_a_coupon_issued_before_the_branch_reaches_both_lanes(coupon_sms):
    steps = [
        COUPON,
        {"type": "branch", "if": [{"field": "country", "op": "eq", "value": "US"}], "then": [send()], "else": [send()]},
    ]
    assert not found(review(definition(steps=steps), now=NOW), level=Level.ERROR)


def test_a_coupon_from_one_lane_does_not_reach_a_send_after_the_branch(coupon_sms):
    steps = [{"type": "branch", "if": [{"field": "country", "op": "eq", "value": "US"}], "then": [COUPON]}, send()]
    [error] = found(review(definition(steps=steps), now=NOW), level=Level.ERROR)
    assert error.where == "steps.1"


def test_a_coupon_from_one_lane_reaches_after_the_branch_when_the_other_lane_exits(coupon_sms):
    steps = [
        {
            "type": "branch",
            "if": [{"field": "country", "op": "eq", "value": "US"}],
            "then": [COUPON],
            "else": [{"type": "exit"}],
        },
        send(),
    ]
    assert not found(review(definition(steps=steps), now=NOW), level=Level.ERROR)


def test_an_event_trigger_gives_messages_the_event(customer):
    factories.sms_content("thanks", text="Order {{ event.order_id }} is on its way")
    assert not found(review(definition(), now=NOW), level=Level.ERROR)


def test_a_date_trigger_gives_messages_no_event(customer):
    factories.sms_content("thanks", text="Order {{ event.order_id }} is on its way")
    [error] = found(review(definition(trigger=birthday()), now=NOW), level=Level.ERROR)
    assert "{{ event.order_id }}" in error.text and "customer's date" in error.text


def test_a_property_the_triggers_events_never_carry_warns_with_the_closest(customer):
    emit(customer, "order_placed", {"order_id": "1042", "total": "59.90"})
    factories.sms_content("thanks", text="Order {{ event.orderid }} is on its way")
    [warning] = found(review(definition(), now=NOW), where="steps.0", level=Level.WARNING)
    assert "event.order_id" in warning.text


def test_an_unknown_variable_is_an_error_with_a_suggestion(customer):
    factories.sms_content("thanks", text="Code: {{ cupon.code }}")
    [error] = found(review(definition(steps=[COUPON, send()]), now=NOW), level=Level.ERROR)
    assert "{{ cupon.code }}" in error.text and "did you mean coupon?" in error.text


def test_a_misspelt_customer_field_is_an_error(customer):
    factories.sms_content("thanks", text="Hi {{ customer.frist_name }}")
    [error] = found(review(definition(), now=NOW), level=Level.ERROR)
    assert "customer.first_name" in error.text


def test_links_are_provided_by_no_step(customer):
    factories.sms_content("thanks", text="Your cart: {{ links.cart }}")
    [error] = found(review(definition(), now=NOW), level=Level.ERROR)
    assert "site.url" in error.text


def test_a_variant_in_another_language_is_checked_too(coupon_sms):
    coupon_sms.text = "Thanks!"
    coupon_sms.save()
    SmsContentVariant.objects.create(content=coupon_sms, language="it", text="Grazie! Codice {{ coupon.code }}")
    assert found(review(definition(), now=NOW), level=Level.ERROR, containing="coupon.code")


def test_a_template_with_a_syntax_error_is_a_finding_not_an_exception(customer):
    factories.sms_content("thanks", text="Hi {% if customer.first_name %}{{ customer.first_name }}")
    [error] = found(review(definition(), now=NOW), level=Level.ERROR)
    assert "cannot be read" in error.text and "endif" in error.text


# --- variables_used, for the template admin too ----------------------------------------------


def test_variables_used_reads_tags_filters_and_loops_not_the_names_they_define():
    source = (
        "{% if coupon.code %}{{ coupon.code|upper }}{% endif %}"
        "{% for item in event.items %}{{ item.name }} {{ forloop.counter }}{% endfor %}"
        "{% with total=event.total %}{{ total }}{% endwith %}"
        "{{ customer.first_name|default:customer.email }}{% now 'Y' as year %}{{ year }}"
    )
    assert variables_used(source) == {
        "coupon.code",
        "event.items",
        "event.total",
        "customer.first_name",
        "customer.email",
    }


def test_variables_used_covers_every_part_and_variant_of_an_email_template():
    template = factories.email_template(
        "order",
        subject="{{ event.order_id }}",
        html_body="<p>{{ customer.first_name }}</p>",
        text_body="{{ site.url }}",
    )
    template.variants.create(language="it", subject="Ordine", html_body="{{ coupon.code }}")
    assert variables_used(template) == {"event.order_id", "customer.first_name", "site.url", "coupon.code"}


def test_variables_used_of_a_template_that_does_not_compile_is_empty():
    assert variables_used("{% for %}") == set()


# --- Re-entry on a date that comes round ------------------------------------------------------


def test_once_on_a_yearly_date_trigger_warns(customer, coupon_sms):
    [warning] = found(
        review(definition(trigger=birthday(), reentry=Reentry.ONCE, steps=[COUPON, send()]), now=NOW), where="reentry"
    )
    assert warning.level == Level.WARNING and "only the first time" in warning.text and "every year" in warning.text


def test_once_every_six_months_warns(customer, coupon_sms):
    trigger = birthday(recurrence={"every_months": 6})
    assert found(
        review(definition(trigger=trigger, reentry=Reentry.ONCE, steps=[COUPON, send()]), now=NOW),
        where="reentry",
        containing="every 6 months",
    )


def test_once_on_a_date_that_comes_once_does_not_warn(customer, coupon_sms):
    trigger = birthday(recurrence="once")
    assert not found(
        review(definition(trigger=trigger, reentry=Reentry.ONCE, steps=[COUPON, send()]), now=NOW), where="reentry"
    )


def test_always_on_a_yearly_date_trigger_does_not_warn(customer, coupon_sms):
    assert not found(review(definition(trigger=birthday(), steps=[COUPON, send()]), now=NOW), where="reentry")


# --- SMS length for a typical customer --------------------------------------------------------


def test_an_sms_of_160_gsm_characters_does_not_warn(customer):
    factories.sms_content("thanks", text="x" * 160)
    assert not found(review(definition(), now=NOW), where="steps.0")


def test_an_sms_of_161_gsm_characters_warns_with_its_parts(customer):
    factories.sms_content("thanks", text="x" * 161)
    [warning] = found(review(definition(), now=NOW), where="steps.0")
    assert warning.level == Level.WARNING
    assert "161 GSM-7 characters" in warning.text and "2 parts" in warning.text
    assert "x" * 161 in warning.detail and "Part 2: x" in warning.detail


def test_one_emoji_forces_ucs2_and_the_warning_names_it(customer):
    factories.sms_content("thanks", text="Thanks for your order, see you soon at the shop! 😀 " + "x" * 30)
    [warning] = found(review(definition(), now=NOW), where="steps.0")
    assert "UCS-2" in warning.text and '"😀" (U+1F600)' in warning.text
    assert "Forced UCS-2" in warning.detail


def test_the_rendered_text_counts_with_the_sample_name_and_coupon_code(customer):
    text = "Hi {{ customer.first_name }}, code {{ coupon.code }}! "
    factories.sms_content("thanks", text=text + "x" * 130)  # renders as 35 + 130 characters
    [warning] = found(review(definition(steps=[COUPON, send("thanks")]), now=NOW), where="steps.1")
    assert "165 GSM-7 characters" in warning.text
    assert f"Hi {checks.SAMPLE_FIRST_NAME}, code BDAY-{checks.SAMPLE_COUPON_CODE}!" in warning.detail


def test_a_long_source_that_renders_within_one_sms_does_not_warn(customer):
    text = "Hi {{ customer.first_name }}, code {{ coupon.code }}! "
    factories.sms_content("thanks", text=text + "x" * 120)  # 174 in the source, 155 rendered
    assert not found(review(definition(steps=[COUPON, send("thanks")]), now=NOW), where="steps.1")


def test_under_the_refuse_policy_the_warning_says_it_would_not_be_sent(customer, settings):
    settings.TRIGGERHUB_SMS_LONG_POLICY = "refuse"
    factories.sms_content("thanks", text="Hello {{ customer.first_name }} " + "x" * 150)
    [warning] = found(review(definition(), now=NOW), where="steps.0")
    assert "would not be sent" in warning.text


def test_the_typical_customer_speaks_the_sites_most_common_language(customer):
    factories.customer(language="it", country="IT")
    factories.customer(language="it", country="IT")
    content = factories.sms_content("thanks", text="Short")
    SmsContentVariant.objects.create(content=content, language="it", text="Lungo " + "x" * 200)
    [warning] = found(review(definition(), now=NOW), where="steps.0")
    assert "Lungo" in warning.detail and "language it" in warning.detail


# --- Another active activity on the same trigger and channel ----------------------------------


def other_activity(name="Order thanks", status=ActivityStatus.ACTIVE, channel="sms", target=(), event="order_placed"):
    factories.email_template("thanks-mail")
    content = "thanks" if channel == "sms" else "thanks-mail"
    return Activity.objects.create(
        name=name,
        status=status,
        trigger={"type": "event", "event": event},
        target=list(target),
        reentry=Reentry.ALWAYS,
        steps=[send(content, channel)],
    )


@pytest.fixture
def plain_sms(customer):
    return factories.sms_content("thanks", text="Thanks!")


def test_an_active_activity_on_the_same_event_and_channel_with_shared_customers_warns(plain_sms):
    other_activity()
    [warning] = found(review(definition(), now=NOW), where="trigger", containing="Order thanks")
    assert warning.level == Level.WARNING and "SMS" in warning.text


def test_a_paused_activity_does_not_warn(plain_sms):
    other_activity(status=ActivityStatus.PAUSED)
    assert not found(review(definition(), now=NOW), containing="Order thanks")


def test_an_activity_on_another_channel_does_not_warn(plain_sms):
    other_activity(channel="email")
    assert not found(review(definition(), now=NOW), containing="Order thanks")


def test_an_activity_on_another_event_does_not_warn(plain_sms):
    other_activity(event="cart_updated")
    assert not found(review(definition(), now=NOW), containing="Order thanks")


def test_an_activity_whose_audience_is_apart_does_not_warn(plain_sms):
    other_activity(target=[{"field": "country", "op": "eq", "value": "IT"}])
    assert not found(
        review(definition(target=[{"field": "country", "op": "eq", "value": "US"}]), now=NOW), containing="Order thanks"
    )


def test_the_activity_itself_is_not_its_own_overlap(plain_sms):
    itself = other_activity()
    assert not found(review(itself.definition(), activity=itself, now=NOW), containing="Order thanks")


def test_date_triggers_on_the_same_field_overlap(plain_sms):
    Activity.objects.create(
        name="Birthday SMS",
        status=ActivityStatus.ACTIVE,
        trigger=birthday(offset_days=0),
        reentry=Reentry.ALWAYS,
        steps=[send()],
    )
    assert found(review(definition(trigger=birthday()), now=NOW), where="trigger", containing="Birthday SMS")


# --- An audience of no one --------------------------------------------------------------------


def test_a_target_that_matches_no_customer_warns(plain_sms):
    [warning] = found(
        review(definition(target=[{"field": "country", "op": "eq", "value": "JP"}]), now=NOW), where="target"
    )
    assert warning.level == Level.WARNING and "No customer matches" in warning.text


def test_a_target_that_matches_one_customer_does_not_warn(plain_sms):
    assert not found(
        review(definition(target=[{"field": "country", "op": "eq", "value": "US"}]), now=NOW), where="target"
    )


def test_a_consent_target_with_one_granted_customer_does_not_warn(plain_sms, customer):
    consent.grant(customer, Channel.SMS, ConsentSource.FORM)
    target = [{"field": "consent.sms", "op": "is", "value": True}]
    assert not found(review(definition(target=target), now=NOW), where="target")


def test_a_date_trigger_on_a_date_no_matching_customer_has_warns_naming_the_field(plain_sms):
    findings = review(definition(trigger=birthday(field="attributes.delivery_date")), now=NOW)
    [warning] = found(findings, where="target")
    assert "attributes.delivery_date" in warning.text


def test_a_date_trigger_on_a_date_a_customer_has_does_not_warn(plain_sms):
    factories.customer(attributes={"delivery_date": "2025-06-01T10:00:00Z"})
    assert not found(review(definition(trigger=birthday(field="attributes.delivery_date")), now=NOW), where="target")


# --- An event nobody sends --------------------------------------------------------------------


def test_an_event_never_seen_warns_with_the_closest_names_and_the_date_trigger(plain_sms, customer):
    emit(customer, "birthday_soon", {})
    [warning] = found(review(definition(trigger={"type": "event", "event": "birthday"}), now=NOW), where="trigger")
    assert warning.level == Level.WARNING
    assert 'the event "birthday"' in warning.text and 'Did you mean "birthday_soon"?' in warning.text
    assert "A date of the customer's" in warning.text
    assert "order_placed" in warning.detail


def test_an_event_stored_before_does_not_warn(plain_sms, customer):
    emit(customer, "webinar_booked", {})
    assert not found(review(definition(trigger={"type": "event", "event": "webinar_booked"}), now=NOW), where="trigger")


def test_a_storefront_signal_never_sent_yet_does_not_warn(plain_sms):
    assert not found(review(definition(trigger={"type": "event", "event": "cart_updated"}), now=NOW), where="trigger")


def test_an_event_with_no_close_name_lists_the_most_frequent_ones(plain_sms, customer):
    emit(customer, "webinar_booked", {})
    [warning] = found(review(definition(trigger={"type": "event", "event": "purchase"}), now=NOW), where="trigger")
    assert "Did you mean" not in warning.text and '"webinar_booked"' in warning.text


def test_a_goal_nobody_sends_warns(plain_sms):
    assert found(review(definition(goal={"event": "order_placd"}), now=NOW), where="goal", containing='"order_placed"')


def test_a_wait_for_an_event_nobody_sends_warns_on_its_step(plain_sms):
    steps = [{"type": "wait_for_event", "event": "review_writen", "timeout_days": 3}, send()]
    [warning] = found(review(definition(steps=steps), now=NOW), where="steps.0")
    assert "timeout" in warning.text


def test_an_event_name_with_a_lone_surrogate_is_a_warning_it_can_show(plain_sms):
    [warning] = found(review(definition(trigger={"type": "event", "event": "cart\udc80"}), now=NOW), where="trigger")
    warning.text.encode("utf-8")  # a page can show it
    assert "cart\\udc80" in warning.text


# --- Worst inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "odd",
    [
        None,
        [],
        "steps",
        {"trigger": "event", "steps": "send"},
        {"trigger": {"type": "date", "field": 5}},
        {"steps": [None, 3, {"type": "branch", "then": "x", "else": [None]}, {"type": "send", "channel": ["sms"]}]},
        {"target": "everyone", "goal": ["x"], "trigger": {"type": "event", "event": ["a"]}},
    ],
)
def test_odd_definitions_never_raise(odd, customer):
    assert isinstance(review(odd, now=NOW), list)


def test_ten_thousand_steps_are_reviewed_quickly(coupon_sms):
    steps = [COUPON] + [send() if index % 2 else {"type": "wait", "hours": 1} for index in range(10_000)]
    started = time.monotonic()
    findings = review(definition(steps=steps), now=NOW)
    assert time.monotonic() - started < 5
    assert not found(findings, level=Level.ERROR)


def test_a_check_that_fails_is_a_warning_and_the_others_still_run(coupon_sms, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(checks.audience, "overlaps", broken)
    findings = review(definition(steps=[send()]), now=NOW)
    assert found(findings, where="target", level=Level.WARNING, containing="could not finish checking the target")
    assert found(findings, where="steps.0", level=Level.ERROR, containing="coupon")
