"""Placeholders of other tools that TriggerHub would send as typed are found, with the variable to write
instead; the admin warns about them on the form and after save, and never refuses the save for them."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from messaging.models import EmailTemplate, SmsContent
from messaging.placeholders import unfilled_placeholders, variable_for
from messaging.rendering import known_variables
from tests import factories


def found(source):
    return [(p.text, p.line, p.instead) for p in unfilled_placeholders(source)]


@pytest.mark.parametrize(
    "source, text, instead",
    [
        ("Hi {first_name}!", "{first_name}", "{{ customer.first_name }}"),
        ("Hi [FIRSTNAME]!", "[FIRSTNAME]", "{{ customer.first_name }}"),
        ("Hi %FIRSTNAME%!", "%FIRSTNAME%", "{{ customer.first_name }}"),
        ("Hi *|FNAME|*!", "*|FNAME|*", "{{ customer.first_name }}"),
        ("Hi {{{ first_name }}}!", "{{{ first_name }}}", "{{ customer.first_name }}"),
        ("Hi ${firstName}!", "${firstName}", "{{ customer.first_name }}"),
        ("Hi [[LAST_NAME]]", "[[LAST_NAME]]", "{{ customer.last_name }}"),
        ("Your code: {coupon_code}", "{coupon_code}", "{{ coupon.code }}"),
        ("Code %PROMO_CODE%", "%PROMO_CODE%", "{{ coupon.code }}"),
        ('<a href="*|UNSUB|*">Unsubscribe</a>', "*|UNSUB|*", "{{ unsubscribe_url }}"),
        ("From *|LIST:COMPANY|*", "*|LIST:COMPANY|*", "{{ site.name }}"),
        ("Hi {customer.first_name}", "{customer.first_name}", "{{ customer.first_name }}"),
    ],
)
def test_a_placeholder_of_another_tool_is_found_with_the_variable_to_write(source, text, instead):
    assert found(source) == [(text, 1, instead)]


def test_a_placeholder_triggerhub_has_no_name_for_points_to_attributes_or_the_event():
    assert found("Your tier: {loyalty_tier}") == [
        (
            "{loyalty_tier}",
            1,
            "{{ customer.attributes.loyalty_tier }} (a customer attribute) or {{ event.loyalty_tier }} (the event's)",
        )
    ]


def test_each_placeholder_has_its_own_line_and_they_come_in_order():
    source = "Hello [FIRSTNAME],\n\nyour code is {code}\nand %EMAIL% is yours"

    assert [(p.text, p.line) for p in unfilled_placeholders(source)] == [
        ("[FIRSTNAME]", 1),
        ("{code}", 3),
        ("%EMAIL%", 4),
    ]


def test_the_sentence_names_the_placeholder_its_line_its_style_and_the_fix():
    [placeholder] = unfilled_placeholders("line one\nHi {first_name}")

    assert str(placeholder) == (
        "line 2: {first_name} (single braces) is not filled in by TriggerHub and would be sent as typed; "
        "write {{ customer.first_name }}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ customer.first_name }}, {{customer.last_name}}",
        "{% if coupon.code %}Code {{ coupon.code }}{% endif %}{%if x%}{%endif%}",
        "{# a note [FIRSTNAME] {first_name} #}",
        "{% for item in event.items %}{{ item.name }}{% endfor %}",
        "<style>p{margin:0} a { color: red; } .x{display:none}</style>",
        "<!--[if mso]><table><![endif]-->",
        'Save 50% today, 20%-30% more; width="100%"',
        "Reply [STOP] to opt out. See note [1]. [Click here](https://example.com)",
        "{{ '{first_name}' }}",
        "",
    ],
)
def test_legitimate_template_language_and_ordinary_text_are_not_warned_about(source):
    assert unfilled_placeholders(source) == []


def test_every_variable_triggerhub_fills_is_found_by_its_own_name_written_in_single_braces():
    for path, below in known_variables():
        if below is None:
            name = ".".join(path)
            assert variable_for(name) == name
            assert found(f"{{{name}}}") == [(f"{{{name}}}", 1, f"{{{{ {name} }}}}")]


def test_a_huge_text_with_many_placeholders_is_checked_quickly():
    import time

    source = "Hi {first_name} [FIRSTNAME] %X_Y% *|FNAME|* " * 20_000
    started = time.perf_counter()
    assert len(unfilled_placeholders(source)) == 80_000
    assert time.perf_counter() - started < 5


def test_lone_surrogates_and_nul_characters_do_not_break_the_check():
    assert found("\ud800 {first_name} \x00") == [("{first_name}", 1, "{{ customer.first_name }}")]


# --- In the admin --------------------------------------------------------------------

SMS_FORM = {
    "slug": "birthday",
    "name": "Birthday",
    "variants-TOTAL_FORMS": "0",
    "variants-INITIAL_FORMS": "0",
    "variants-MIN_NUM_FORMS": "0",
    "variants-MAX_NUM_FORMS": "1000",
}


def flashed(response):
    return [(m.level_tag, str(m.message)) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_saving_sms_content_with_a_placeholder_saves_it_and_warns_with_the_fix(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_smscontent_add"),
        {**SMS_FORM, "text": "Hi [FIRSTNAME], 10% off: {{ coupon.code }}", "_continue": "1"},
        follow=True,
    )

    assert SmsContent.objects.get().text == "Hi [FIRSTNAME], 10% off: {{ coupon.code }}"
    assert (
        "warning",
        "Text, line 1: [FIRSTNAME] (brackets) is not filled in by TriggerHub and would be sent as "
        "typed; write {{ customer.first_name }}",
    ) in flashed(response)
    # The change page it lands on shows the warning in the form too.
    page = response.content.decode()
    assert 'id="placeholder-warnings"' in page


@pytest.mark.django_db
def test_the_change_page_of_a_template_warns_about_its_placeholders_and_its_variants(admin_client):
    template = factories.email_template(subject="Hello *|FNAME|*", html_body="<p>Hi {first_name}</p>")
    template.variants.create(language="it", subject="Ciao %FIRSTNAME%", html_body="<p>Ciao</p>")

    response = admin_client.get(reverse("admin:messaging_emailtemplate_change", args=[template.pk]))

    assert [w.split(" is not")[0] for w in response.context["placeholder_warnings"]] == [
        "Subject, line 1: *|FNAME|* (a Mailchimp merge tag)",
        "HTML body, line 1: {first_name} (single braces)",
        "Subject (it variant), line 1: %FIRSTNAME% (percent signs)",
    ]


@pytest.mark.django_db
def test_a_form_sent_back_with_an_error_warns_about_the_text_typed(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_add"),
        {
            "slug": "",
            "name": "X",
            "from_email": "",
            "subject": "Hi {first_name}",
            "html_body": "<p>x</p>",
            "text_body": "",
            "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 200 and not EmailTemplate.objects.exists()
    assert response.context["placeholder_warnings"][0].startswith("Subject, line 1: {first_name} (single braces)")


@pytest.mark.django_db
def test_a_template_with_only_template_language_gets_no_warning(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_smscontent_add"),
        {**SMS_FORM, "text": "Hi {{ customer.first_name }}"},
    )

    assert response.status_code == 302
    assert [level for level, _ in flashed(response)] == ["success"]
