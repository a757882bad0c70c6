import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from customers.models import Customer
from messaging import outbox, rendering
from messaging.delivery import deliver
from messaging.models import (
    Category,
    Channel,
    EmailTemplate,
    EmailTemplateVariant,
    SmsContent,
    SmsContentVariant,
    Status,
)
from messaging.rendering import template_problems
from tests import factories
from tests.email_backends import FlakyEmailBackend

README = Path(__file__).resolve().parents[2] / "docs" / "templates.md"  # where the reference lives


def test_a_misspelt_root_is_refused_with_its_line_and_the_closest_name():
    [problem] = template_problems("<p>Hello</p>\n\n<p>{{ custmer.first_name }}</p>")
    assert problem.startswith("line 3: unknown variable 'custmer.first_name' — did you mean customer.first_name?")
    assert "event.…" in problem and "coupon.…" in problem  # what may be used instead


def test_an_unknown_customer_field_is_refused_naming_the_customer_fields():
    [problem] = template_problems("Hi {{ customer.frist_name }}")
    assert problem.startswith("line 1: unknown variable 'customer.frist_name' — did you mean customer.first_name?")
    assert "customer has first_name, last_name, full_name, email, phone, country, language and attributes" in problem


def test_a_bare_field_name_is_pointed_to_the_customer():
    [problem] = template_problems("Hi {{ first_name }}")
    assert "did you mean customer.first_name?" in problem


def test_a_misspelt_coupon_field_suggests_the_right_one():
    [problem] = template_problems("Use {{ coupon.cod }}")
    assert "did you mean coupon.code?" in problem
    assert "coupon has code, percent_off, amount_off and expires_at" in problem


def test_a_misspelt_event_keeps_its_property_in_the_suggestion():
    [problem] = template_problems("Order {{ evnt.order_id }}")
    assert "did you mean event.order_id?" in problem


def test_a_name_with_nothing_close_lists_what_templates_can_use():
    [problem] = template_problems("{{ zzz }}")
    assert problem.startswith("line 1: unknown variable 'zzz'. Templates can use customer.…, event.…")
    assert "Template variables" in problem


def test_anything_under_attributes_event_and_links_is_allowed():
    assert (
        template_problems(
            "{{ customer.attributes.tier }} {{ event.order_id }} {{ event.items.0.name }} {{ links.shop }}"
            " {{ coupon.code }} {{ coupon.percent_off }} {{ unsubscribe_url }} {{ site.name }} {{ site.url }}"
        )
        == []
    )


def test_loop_and_with_variables_are_allowed_inside_their_block():
    source = (
        "{% for item in event.items %}{{ forloop.counter }}. {{ item.name }}"
        "{% with price=item.price %}{{ price }}{% endwith %}{% empty %}none{% endfor %}"
        "{% for key, value in customer.attributes.items %}{{ key }}={{ value }}{% endfor %}"
    )
    assert template_problems(source) == []


def test_a_loop_variable_used_after_its_loop_is_refused():
    [problem] = template_problems("{% for item in event.items %}{{ item.name }}{% endfor %}\n{{ item.name }}")
    assert problem == (
        "line 2: 'item.name' is used outside the {% for %} or {% with %} block that defines item; "
        "move it inside the block."
    )


def test_names_set_with_as_are_allowed():
    assert template_problems('{% now "Y" as year %}© {{ year }} {% cycle "a" "b" as row %}{{ row }}') == []


def test_variables_in_conditions_and_filter_arguments_are_checked_with_their_lines():
    source = (
        "{% if customer.first_name %}Hi{% endif %}\n"
        "{% if custmer.email and coupon.code %}x{% endif %}\n"
        "{{ customer.first_name|default:customer.nickname }}\n"
        "{% firstof customer.last_name sitee.name %}"
    )
    problems = template_problems(source)
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4"]
    assert "'custmer.email'" in problems[0]
    assert "'customer.nickname'" in problems[1]
    assert "'sitee.name' — did you mean site.name?" in problems[2]


def test_the_same_mistake_twice_on_a_line_is_reported_once():
    assert len(template_problems("{{ custmer.email }} {{ custmer.email }}")) == 1


def test_a_block_filter_is_not_mistaken_for_a_variable():
    assert template_problems("{% filter upper %}{{ customer.email }}{% endfilter %}") == []


@pytest.mark.django_db
def test_each_error_is_on_the_field_that_has_it():
    template = EmailTemplate(
        slug="w",
        name="W",
        subject="Hi {{ customer.frist_name }}",
        html_body="<p>{{ coupon.code }}</p>",
        text_body="Line one\n{{ unsubscribe }}",
    )
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    errors = error.value.message_dict
    assert set(errors) == {"subject", "text_body"}
    assert errors["subject"][0].startswith("line 1: unknown variable 'customer.frist_name'")
    assert errors["text_body"][0].startswith("line 2: unknown variable 'unsubscribe' — did you mean unsubscribe_url?")


@pytest.mark.django_db
def test_sms_content_and_every_variant_are_checked_too():
    content = factories.sms_content()
    template = factories.email_template()
    checked = [
        (SmsContent(slug="s", name="S", text="{{ cupon.code }}"), "text"),
        (SmsContentVariant(content=content, language="it", text="Ciao {{ customer.nome }}"), "text"),
        (
            EmailTemplateVariant(template=template, language="it", subject="Ciao", html_body="{{ evento.x }}"),
            "html_body",
        ),
    ]
    for instance, field in checked:
        with pytest.raises(ValidationError) as error:
            instance.full_clean()
        assert list(error.value.message_dict) == [field]
        assert error.value.message_dict[field][0].startswith("line 1: unknown variable")


def test_the_customer_variables_are_exactly_what_customer_context_fills_in():
    keys = set(rendering.customer_context(Customer(first_name="Ann")))
    assert keys == set(rendering.TEMPLATE_VARIABLES["customer"])


def test_the_readme_lists_every_template_variable():
    section = README.read_text().split("## Template variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)", section))
    for path, _ in rendering.known_variables():
        assert ".".join(path) in documented, f"docs/templates.md's 'Template variables' does not list {'.'.join(path)}"


# --- A template cannot change the data it renders --------------------------------------

#: Django's template engine calls a method it finds: each of these would change its dict or list.
MUTATING = (
    "{{ event.popitem }}{{ event.items.pop }}{{ event.items.reverse }}{{ event.items.0.popitem }}"
    "{{ links.clear }}{{ coupon.popitem }}{{ customer.attributes.popitem }}{{ customer.attributes.tags.pop }}"
)


def _message_values():
    return {
        "event": {
            "order_id": "1042",
            "items": [{"sku": "cup", "qty": 2}, {"sku": "pot", "qty": 1}, {"sku": "mug", "qty": 3}],
        },
        "links": {"cart": "https://shop.example/cart", "shop": "https://shop.example/"},
        "coupon": {"code": "TEN", "percent_off": 10},
    }


@pytest.mark.django_db
def test_rendering_cannot_change_the_message_values_or_the_customer_attributes():
    context = _message_values()
    customer = factories.customer(first_name="Zoe", attributes={"tier": "gold", "tags": ["a", "b"]})
    values = rendering.values_for(customer, context)
    rendering.render_sms(SmsContent(slug="s", text=MUTATING * 2), values, language="")
    assert context == _message_values()
    assert customer.attributes == {"tier": "gold", "tags": ["a", "b"]}


@pytest.mark.django_db
def test_a_template_calling_methods_leaves_the_delivered_message_context_as_it_was(settings, mailoutbox):
    """A send that fails for now saves the whole message (delivery.record) and is tried again with its context."""
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyEmailBackend"
    settings.TRIGGERHUB_RETRY_BACKOFF_SECONDS = 60
    FlakyEmailBackend.failures_left = 1
    customer = factories.customer(first_name="Zoe", email="zoe@example.com", attributes={"tags": ["a", "b"]})
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="m:1",
        content=factories.email_template(subject="Order {{ event.order_id }}", html_body=f"<p>{MUTATING}</p>"),
        context=_message_values(),
    )
    assert deliver(message.pk) == Status.QUEUED
    message.refresh_from_db()
    customer.refresh_from_db()
    assert message.context == _message_values()
    assert customer.attributes == {"tags": ["a", "b"]}

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert deliver(message.pk) == Status.SENT  # the retry renders the message as it was written
    message.refresh_from_db()
    assert message.context == _message_values()
    assert message.subject == "Order 1042" and mailoutbox[0].subject == "Order 1042"
