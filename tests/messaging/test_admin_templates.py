import html
import json

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.urls import reverse

from messaging.models import (
    Category,
    Channel,
    EmailTemplate,
    EmailTemplateVariant,
    Message,
    Reason,
    SmsContent,
    Status,
)
from tests import factories

pytestmark = pytest.mark.django_db

SEGMENTS_URL = "/admin/messaging/smscontent/segments/"


def email_form(**fields):
    """The add/change form of an e-mail template as the browser posts it, with no variant rows."""
    return {
        "slug": "welcome",
        "name": "Welcome",
        "from_email": "",
        "subject": "Hi",
        "html_body": "<p>Hi</p>",
        "text_body": "",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        **fields,
    }


def flashed(response):
    return [(m.level_tag, str(m.message)) for m in get_messages(response.wsgi_request)]


def test_the_change_form_shows_an_unknown_variable_on_its_field(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_add"),
        email_form(html_body="<p>Hello</p>\n<p>{{ custmer.first_name }}</p>"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["html_body"]
    assert errors["html_body"][0].startswith(
        "line 2: unknown variable 'custmer.first_name' — did you mean customer.first_name?"
    )
    assert "line 2: unknown variable" in html.unescape(response.content.decode())
    assert not EmailTemplate.objects.exists()


def test_an_unknown_variable_in_a_variant_shows_on_the_variant_row(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_add"),
        email_form(
            **{
                "variants-TOTAL_FORMS": "1",
                "variants-0-language": "it",
                "variants-0-subject": "Ciao {{ customer.nome }}",
                "variants-0-html_body": "<p>Ciao</p>",
                "variants-0-text_body": "",
            }
        ),
    )
    [formset] = response.context["inline_admin_formsets"]
    assert formset.formset.errors[0]["subject"][0].startswith("line 1: unknown variable 'customer.nome'")


def test_a_template_and_its_variant_are_saved_from_one_form(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_add"),
        email_form(
            **{
                "variants-TOTAL_FORMS": "1",
                "variants-0-language": "pt-BR",
                "variants-0-subject": "Oi {{ customer.first_name }}",
                "variants-0-html_body": "<p>Oi</p>",
                "variants-0-text_body": "",
            }
        ),
    )
    assert response.status_code == 302
    [variant] = EmailTemplateVariant.objects.all()
    assert (variant.template.slug, variant.language) == ("welcome", "pt-br")


def test_the_change_forms_link_to_preview_and_send_test_and_the_sms_form_counts_parts(admin_client):
    template, content = factories.email_template(), factories.sms_content()
    page = admin_client.get(reverse("admin:messaging_emailtemplate_change", args=[template.pk])).content.decode()
    assert reverse("admin:messaging_emailtemplate_preview", args=[template.pk]) in page
    assert reverse("admin:messaging_emailtemplate_send_test", args=[template.pk]) in page
    page = admin_client.get(reverse("admin:messaging_smscontent_change", args=[content.pk])).content.decode()
    assert "messaging/sms_segments.js" in page and f'data-segments-url="{SEGMENTS_URL}"' in page
    assert 'name="variants-TOTAL_FORMS"' in page


def test_the_preview_renders_the_template_for_the_chosen_customer(admin_client):
    template = factories.email_template(
        subject="Order {{ event.order_id }} for {{ customer.first_name }}",
        html_body='<p>Hi {{ customer.first_name }}</p><a href="{{ links.shop }}">shop</a>',
    )
    customer = factories.customer(first_name="Zoe")
    response = admin_client.get(
        reverse("admin:messaging_emailtemplate_preview", args=[template.pk]),
        {
            "customer": customer.pk,
            "values": json.dumps({"event": {"order_id": "1042"}, "links": {"shop": "https://s.example/"}}),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert '<pre id="preview-subject">Order 1042 for Zoe</pre>' in page
    # The HTML is shown in a sandboxed frame, escaped once into its srcdoc attribute.
    assert (
        'sandbox="" title="The HTML body" srcdoc="&lt;p&gt;Hi Zoe&lt;/p&gt;&lt;a href=&quot;https://s.example/&quot;&gt;'
        in page
    )
    assert "Hi Zoe\nshop (https://s.example/)" in html.unescape(page)


def test_rendered_text_cannot_inject_markup_into_the_admin_page(admin_client):
    content = factories.sms_content(text="Hi {{ customer.first_name }}")
    customer = factories.customer(first_name="<script>alert(1)</script>")
    response = admin_client.get(
        reverse("admin:messaging_smscontent_preview", args=[content.pk]), {"customer": customer.pk}
    )
    page = response.content.decode()
    assert "<script>alert(1)" not in page
    assert '<pre id="preview-text">Hi &lt;script&gt;alert(1)&lt;/script&gt;</pre>' in page


def test_the_preview_can_show_another_language(admin_client):
    template = factories.email_template(subject="Hello")
    EmailTemplateVariant.objects.create(template=template, language="it", subject="Ciao", html_body="<p>Ciao</p>")
    response = admin_client.get(
        reverse("admin:messaging_emailtemplate_preview", args=[template.pk]),
        {"customer": factories.customer(language="en").pk, "language": "it"},
    )
    page = response.content.decode()
    assert '<pre id="preview-subject">Ciao</pre>' in page
    assert "the <strong>it</strong> variant" in page


def test_a_template_that_cannot_render_shows_why_on_the_preview_page(admin_client):
    template = factories.email_template(html_body="<p>{% if %}</p>")  # stored before validation existed
    response = admin_client.get(
        reverse("admin:messaging_emailtemplate_preview", args=[template.pk]), {"customer": factories.customer().pk}
    )
    assert response.status_code == 200
    assert 'id="preview-error">This cannot be rendered: line 1: ' in response.content.decode()


def test_the_sms_preview_shows_its_segments_and_what_forced_ucs2(admin_client):
    content = factories.sms_content(text="It’s {{ customer.first_name }}’s day")
    response = admin_client.get(
        reverse("admin:messaging_smscontent_preview", args=[content.pk]),
        {"customer": factories.customer(first_name="Zoe").pk},
    )
    page = html.unescape(response.content.decode())
    assert '<pre id="preview-text">It’s Zoe’s day</pre>' in page
    assert "UCS-2" in page and "’ (U+2019 right single quotation mark)" in page


def test_the_segments_endpoint_reports_encoding_and_parts(admin_client):
    report = admin_client.get(SEGMENTS_URL, {"text": "a" * 42}).json()
    assert (report["encoding"], report["parts"], report["units"]) == ("GSM-7", 1, 42)
    assert report["summary"] == "GSM-7 · 1 part · 42/160"


def test_the_segments_endpoint_names_the_curly_apostrophe(admin_client):
    report = admin_client.get(SEGMENTS_URL, {"text": "It’s " + "a" * 70}).json()
    assert (report["encoding"], report["parts"], report["units"]) == ("UCS-2", 2, 75)
    assert report["forced_by"] == [{"character": "’", "codepoint": "U+2019", "name": "RIGHT SINGLE QUOTATION MARK"}]
    assert report["summary"] == "UCS-2 · 2 parts · 75/134 · forced by ’ (U+2019)"


def test_the_segments_endpoint_requires_a_staff_login(client):
    login = reverse("admin:login")
    response = client.get(SEGMENTS_URL, {"text": "hi"})
    assert response.status_code == 302 and response["Location"].startswith(login)
    User.objects.create_user("shopper", password="pw-12345-long")
    client.force_login(User.objects.get(username="shopper"))
    response = client.get(SEGMENTS_URL, {"text": "hi"})
    assert response.status_code == 302 and response["Location"].startswith(login)


def test_send_test_writes_a_transactional_message_for_the_customer_through_the_outbox(
    admin_client, django_capture_on_commit_callbacks
):
    template = factories.email_template()
    customer = factories.customer(first_name="Zoe")
    with django_capture_on_commit_callbacks() as published:
        response = admin_client.post(
            reverse("admin:messaging_emailtemplate_send_test", args=[template.pk]),
            {"customer": customer.pk, "values": '{"event": {"order_id": "7"}}'},
        )
    assert response.status_code == 302
    [message] = Message.objects.all()
    assert (message.customer, message.channel, message.category, message.email_template) == (
        customer,
        Channel.EMAIL,
        Category.TRANSACTIONAL,
        template,
    )
    assert (message.source, message.status, message.context) == (
        "admin-test:admin",
        Status.QUEUED,
        {"event": {"order_id": "7"}},
    )
    assert message.dedupe_key.startswith("admin-test:")
    assert len(published) == 1  # delivery is published like any message's
    [(level, text)] = flashed(response)
    assert level == "success" and f"E-mail #{message.pk} to {customer}" in text and "queued" in text


def test_each_send_test_click_is_a_new_message(admin_client):
    content = factories.sms_content()
    customer = factories.customer(phone="+12125550100")
    url = reverse("admin:messaging_smscontent_send_test", args=[content.pk])
    admin_client.post(url, {"customer": customer.pk})
    admin_client.post(url, {"customer": customer.pk})
    assert Message.objects.filter(customer=customer, channel=Channel.SMS).count() == 2


def test_a_send_test_the_policy_refuses_says_why(admin_client):
    content = factories.sms_content()
    customer = factories.customer(phone="")
    response = admin_client.post(
        reverse("admin:messaging_smscontent_send_test", args=[content.pk]), {"customer": customer.pk}
    )
    [message] = Message.objects.all()
    assert (message.status, message.reason) == (Status.BLOCKED, Reason.NO_ADDRESS)
    [(level, text)] = flashed(response)
    assert level == "warning" and "blocked (No address)" in text


def test_send_test_refuses_values_that_would_replace_the_customer(admin_client):
    template = factories.email_template()
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_send_test", args=[template.pk]),
        {"customer": factories.customer().pk, "values": '{"customer": {"first_name": "Eve"}}'},
    )
    assert response.status_code == 200
    assert "Leave out" in response.context["form"].errors["values"][0]
    assert not Message.objects.exists()


def test_the_send_test_action_leads_to_the_send_test_page_of_the_one_selected(admin_client):
    template = factories.email_template()
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_changelist"),
        {"action": "send_test", "_selected_action": [template.pk]},
    )
    assert response["Location"] == reverse("admin:messaging_emailtemplate_send_test", args=[template.pk])


def test_the_message_list_finds_messages_by_customer_name_and_links_to_the_customer(admin_client):
    customer = factories.customer(first_name="Zoe", last_name="Quist", phone="+12125550100")
    other = factories.customer(first_name="Max")
    sms = Message.objects.create(
        customer=customer,
        channel=Channel.SMS,
        sms_content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        dedupe_key="a",
        send_after="2026-01-01T00:00Z",
        parts=3,
    )
    Message.objects.create(
        customer=other,
        channel=Channel.EMAIL,
        email_template=factories.email_template(),
        category=Category.TRANSACTIONAL,
        dedupe_key="b",
        send_after="2026-01-01T00:00Z",
    )
    response = admin_client.get(reverse("admin:messaging_message_changelist"), {"q": "Quist"})
    assert list(response.context["cl"].result_list) == [sms]
    page = response.content.decode()
    assert f'<a href="{reverse("admin:customers_customer_change", args=[customer.pk])}">' in page
    assert '<td class="field-sms_parts">3</td>' in page


def test_the_customer_picker_finds_customers_by_name(admin_client):
    zoe = factories.customer(first_name="Zoe")
    factories.customer(first_name="Max")
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "messaging", "model_name": "message", "field_name": "customer", "term": "zoe"},
    )
    assert [result["id"] for result in response.json()["results"]] == [str(zoe.pk)]


def test_the_preview_page_without_a_customer_shows_the_picker(admin_client):
    template = factories.email_template()
    response = admin_client.get(reverse("admin:messaging_emailtemplate_preview", args=[template.pk]))
    assert response.status_code == 200
    assert 'data-field-name="customer"' in response.content.decode() and response.context["preview"] is None


#: The worst a marketer can paste into a template, and the start of the form error each gets.
REFUSED_SOURCES = [
    ('Hi\n{% include "../x" %}', "line 2: {% include %} is not allowed in a message template; paste the text in"),
    ('Hi\n{% include "x.html" %}', "line 2: {% include %} is not allowed in a message template; paste the text in"),
    ('{% extends "base.html" %}', "line 1: {% extends %} is not allowed in a message template; "),
    ("Hi\n\n{% debug %}", "line 3: {% debug %} is not allowed in a message template; "),
    ("{% lorem 200000 w %}", "line 1: {% lorem %} is not allowed in a message template; write the text itself."),
    ("{% load humanize %}\n{{ event.total|intcomma }}", "line 1: {% load %} is not allowed in a message template; "),
    ("Hi\n{{ customer.first_name|shout }}", "line 2: the filter 'shout' is not one message templates can use"),
]


@pytest.mark.parametrize("source, error", REFUSED_SOURCES)
def test_saving_an_email_template_with_a_refused_tag_or_filter_shows_the_line_on_its_field(admin_client, source, error):
    response = admin_client.post(reverse("admin:messaging_emailtemplate_add"), email_form(html_body=source))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["html_body"][0].startswith(error)
    assert not EmailTemplate.objects.exists()


@pytest.mark.parametrize("source, error", REFUSED_SOURCES)
def test_saving_sms_content_with_a_refused_tag_or_filter_shows_the_line_on_its_field(admin_client, source, error):
    response = admin_client.post(
        reverse("admin:messaging_smscontent_add"),
        {
            "slug": "hello",
            "name": "Hello",
            "text": source,
            "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["text"][0].startswith(error)
    assert not SmsContent.objects.exists()


def test_a_refused_tag_in_a_variant_shows_on_the_variant_row(admin_client):
    response = admin_client.post(
        reverse("admin:messaging_emailtemplate_add"),
        email_form(
            **{
                "variants-TOTAL_FORMS": "1",
                "variants-0-language": "it",
                "variants-0-subject": "Ciao",
                "variants-0-html_body": '<p>Ciao</p>\n{% include "../footer.html" %}',
                "variants-0-text_body": "",
            }
        ),
    )
    assert response.status_code == 200
    [formset] = response.context["inline_admin_formsets"]
    assert formset.formset.errors[0]["html_body"][0].startswith("line 2: {% include %} is not allowed")


def test_a_preview_of_a_stored_template_with_a_refused_tag_says_why(admin_client):
    template = factories.email_template(html_body='<p>Hi</p>\n{% include "x.html" %}')  # stored before the allow-list
    response = admin_client.get(
        reverse("admin:messaging_emailtemplate_preview", args=[template.pk]), {"customer": factories.customer().pk}
    )
    assert 'id="preview-error">This cannot be rendered: line 2: {% include %} is not allowed' in html.unescape(
        response.content.decode()
    )
