"""The template language of messages: what a marketer may write is refused at save with its
line and what to write instead, and a template that cannot render fails with RenderFailed."""

import pickle

import pytest

from messaging.models import EmailTemplate, EmailTemplateVariant, SmsContent
from messaging.rendering import RenderFailed, render_email, render_sms, template_problems
from tests import factories

VALUES = {"customer": {"first_name": "Zoe", "language": ""}, "event": {}, "site": {"name": "Shop", "url": ""}}


def test_an_include_of_a_relative_path_is_refused_with_its_line():
    assert template_problems('<p>Hi</p>\n{% include "../x" %}') == [
        "line 2: {% include %} is not allowed in a message template; paste the text in instead."
    ]


def test_an_include_of_a_file_is_refused_with_its_line():
    assert template_problems('{% include "x.html" %}') == [
        "line 1: {% include %} is not allowed in a message template; paste the text in instead."
    ]


def test_extends_is_refused_with_its_line():
    [problem] = template_problems('\n\n{% extends "base.html" %}')
    assert problem.startswith("line 3: {% extends %} is not allowed in a message template; write the whole message")


def test_debug_is_refused_with_its_line():
    [problem] = template_problems("Hi\n{% debug %}")
    assert problem.startswith("line 2: {% debug %} is not allowed in a message template; ")
    assert "Preview" in problem


def test_lorem_is_refused_with_its_line():
    [problem] = template_problems("{% lorem 200000 w %}")
    assert problem == "line 1: {% lorem %} is not allowed in a message template; write the text itself."


@pytest.mark.parametrize("library", ["static", "humanize", "i18n", "no_such_library"])
def test_loading_any_library_is_refused(library):
    [problem] = template_problems(f"{{% load {library} %}}\nHi")
    assert problem.startswith("line 1: {% load %} is not allowed in a message template; ")
    assert "if, for, with" in problem


def test_a_refused_tag_inside_an_allowed_block_is_refused_with_its_own_line():
    [problem] = template_problems("{% if customer.first_name %}\nHi\n{% url 'home' %}\n{% endif %}")
    assert problem.startswith("line 3: {% url %} is not allowed in a message template; ")
    assert "{{ site.url }}" in problem


def test_an_unknown_tag_is_refused_with_the_closest_allowed_one():
    [problem] = template_problems("{% fro item in event.items %}{{ item }}{% endfor %}")
    assert problem.startswith("line 1: {% fro %} is not a tag message templates can use — did you mean {% for %}?")


def test_an_unknown_filter_is_refused_with_the_closest_allowed_one():
    [problem] = template_problems("Hi\n{{ customer.first_name|uppr }}")
    assert problem.startswith(
        "line 2: the filter 'uppr' is not one message templates can use — did you mean upper?"
    )


def test_safe_is_refused_because_values_are_always_escaped_in_html():
    [problem] = template_problems("<p>{{ customer.first_name|safe }}</p>")
    assert problem.startswith("line 1: the filter 'safe' is not allowed in a message template; ")
    assert "escaped" in problem


def test_autoescape_off_is_refused():
    [problem] = template_problems("{% autoescape off %}{{ customer.first_name }}{% endautoescape %}")
    assert problem.startswith("line 1: {% autoescape %} is not allowed in a message template; ")


def test_a_refused_tag_inside_a_comment_is_not_refused():
    assert template_problems('{% comment %}{% include "old.html" %}{% endcomment %}Hi') == []


def test_the_allowed_tags_and_filters_render_as_before():
    source = (
        "{% if event.items %}{% for item in event.items %}{% cycle 'odd' 'even' %} "
        "{{ item.name|title }} {{ item.price|floatformat:2 }}{% empty %}none{% endfor %}{% endif %}\n"
        "{% with count=event.items|length %}{{ count }} item{{ count|pluralize }}{% endwith %}\n"
        "{% firstof customer.last_name 'friend' %} {{ customer.first_name|default:'there'|upper }}\n"
        "{{ event.note|truncatechars:8 }} {{ event.tags|join:', '|default:'-' }} {{ event.paid|yesno:'paid,unpaid' }}\n"
        "{% filter lower %}HELLO{% endfilter %}{# a note #}{% comment %}x{% endcomment %}"
        "{% spaceless %}<p> <b>x</b> </p>{% endspaceless %} {{ event.note|escape|length }}"
    )
    assert template_problems(source) == []
    values = {
        "customer": {"first_name": "zoe", "last_name": ""},
        "event": {"items": [{"name": "cup", "price": 3}, {"name": "pot", "price": 12.5}], "note": "Hello world", "paid": True,
                  "tags": ["new", "gift"]},
    }
    content = SmsContent(text=source)
    assert render_sms(content, values, language="") == (
        "odd Cup 3.00even Pot 12.50\n"
        "2 items\n"
        "friend ZOE\n"
        "Hello w… new, gift paid\n"
        "hello<p><b>x</b></p> 11"
    )


@pytest.mark.django_db
def test_a_stored_template_with_a_now_refused_tag_fails_to_render_naming_the_template_and_the_line():
    template = factories.email_template(slug="old", html_body='<p>Hi</p>\n{% include "footer.html" %}')  # saved before
    with pytest.raises(RenderFailed) as failure:
        render_email(template, VALUES)
    assert str(failure.value) == (
        "e-mail template 'old', HTML body: line 2: {% include %} is not allowed in a message template; "
        "paste the text in instead."
    )


@pytest.mark.django_db
def test_a_render_failure_in_a_variant_names_its_language():
    template = factories.email_template(slug="old")
    EmailTemplateVariant.objects.create(template=template, language="it", subject="Ciao {% lorem %}", html_body="<p>Ciao</p>")
    with pytest.raises(RenderFailed) as failure:
        render_email(template, VALUES, language="it")
    assert str(failure.value).startswith("e-mail template 'old' in 'it', subject: line 1: {% lorem %} is not allowed")


def test_render_failed_survives_pickling_as_a_celery_result_would():
    failure = pickle.loads(pickle.dumps(RenderFailed("SMS content 'x'", "line 1: boom")))
    assert (str(failure), failure.problem) == ("SMS content 'x': line 1: boom", "line 1: boom")


@pytest.mark.django_db
def test_a_stored_debug_tag_fails_to_render_instead_of_showing_the_context():
    content = factories.sms_content(slug="old-sms", text="{% debug %}")
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, VALUES)
    assert str(failure.value).startswith("SMS content 'old-sms': line 1: {% debug %} is not allowed")


def test_a_filter_that_raises_while_rendering_fails_with_render_failed():
    template = EmailTemplate(slug="maths", subject="{{ event.count|divisibleby:0 }}", html_body="<p>Hi</p>")
    with pytest.raises(RenderFailed) as failure:
        render_email(template, VALUES, language="")
    assert str(failure.value).startswith("e-mail template 'maths', subject: line 1: ")


def test_a_render_over_the_size_limit_fails_with_render_failed(settings):
    settings.TRIGGERHUB_RENDER_MAX_BYTES = 1000
    template = EmailTemplate(slug="big", subject="Hi", html_body="<p>{{ event.text }}</p>")
    with pytest.raises(RenderFailed) as failure:
        render_email(template, {**VALUES, "event": {"text": "é" * 1000}}, language="")
    assert str(failure.value) == (
        "e-mail template 'big', HTML body: the rendered text is 2,007 bytes, more than the 1,000 bytes "
        "TRIGGERHUB_RENDER_MAX_BYTES allows."
    )


def test_a_render_within_the_size_limit_is_sent_whole(settings):
    settings.TRIGGERHUB_RENDER_MAX_BYTES = 1000
    template = EmailTemplate(slug="fits", subject="Hi", html_body="<p>{{ event.text }}</p>")
    assert render_email(template, {**VALUES, "event": {"text": "x" * 993}}, language="")[2] == f"<p>{'x' * 993}</p>"


def test_the_size_limit_is_one_megabyte_by_default(settings):
    assert settings.TRIGGERHUB_RENDER_MAX_BYTES == 1024 * 1024


def test_loops_that_run_too_often_fail_with_render_failed():
    content = SmsContent(
        slug="loops", text="{% for a in event.items %}{% for b in event.items %}{% for c in event.items %}"
        "{% endfor %}{% endfor %}{% endfor %}",
    )
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, {**VALUES, "event": {"items": list(range(30))}}, language="")
    assert "loops ran more than 10,000 times" in str(failure.value)
