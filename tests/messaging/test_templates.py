import pytest
from django.core.exceptions import ValidationError

from messaging.models import EmailTemplate, SmsContentVariant
from messaging.rendering import preview_email, preview_sms, text_from_html
from tests import factories


@pytest.mark.django_db
def test_a_template_with_a_syntax_error_is_refused_with_the_line():
    template = EmailTemplate(
        slug="broken",
        name="Broken",
        subject="Hi",
        html_body="<p>Hello</p>\n<p>{% if customer.first_name %}unclosed</p>",
    )
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    [problem] = error.value.message_dict["html_body"]
    assert problem.startswith("line 2: ")
    assert "endif" in problem


def test_text_is_derived_from_html_with_links_kept():
    assert text_from_html('<h1>Hi &amp; welcome</h1><p>See <a href="https://x.example/">this</a></p>') == (
        "Hi & welcome\nSee this (https://x.example/)"
    )


@pytest.mark.django_db
def test_a_template_with_an_unknown_variable_and_a_syntax_error_reports_the_syntax_error_first():
    template = EmailTemplate(slug="b", name="B", subject="Hi", html_body="{{ custmer.x }}\n{% endif %}")
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    [problem] = error.value.message_dict["html_body"]
    assert problem.startswith("line 2: Invalid block tag on line 2: 'endif'")


@pytest.mark.django_db
def test_a_preview_renders_what_the_customer_would_get_with_the_values_given():
    template = factories.email_template(
        subject="Order {{ event.order_id }}", html_body="<p>Hi {{ customer.first_name }}, use {{ coupon.code }}</p>"
    )
    customer = factories.customer(first_name="Zoe")
    preview = preview_email(template, customer, context={"event": {"order_id": "1042"}, "coupon": {"code": "TEN"}})
    assert (preview.subject, preview.html, preview.text, preview.error) == (
        "Order 1042",
        "<p>Hi Zoe, use TEN</p>",
        "Hi Zoe, use TEN",
        "",
    )
    assert preview.version == template


@pytest.mark.django_db
def test_a_preview_in_a_chosen_language_uses_that_variant():
    content = factories.sms_content(text="Hi {{ customer.first_name }}")
    variant = SmsContentVariant.objects.create(content=content, language="it", text="Ciao {{ customer.first_name }}")
    preview = preview_sms(content, factories.customer(first_name="Zoe", language="en"), language="it")
    assert (preview.text, preview.version) == ("Ciao Zoe", variant)


@pytest.mark.django_db
def test_a_stored_template_that_cannot_render_gives_the_reason_instead_of_an_error():
    template = factories.email_template(html_body="<p>{% if %}</p>")  # saved without validation
    preview = preview_email(template, factories.customer())
    assert preview.error.startswith("line 1: ")
    assert "if" in preview.error and preview.html == ""
