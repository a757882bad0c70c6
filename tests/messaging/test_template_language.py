"""The template language of messages: what a marketer may write is refused at save with its
line and what to write instead, and a template that cannot render fails with RenderFailed."""

import contextlib
import datetime
import pickle
import time
import tracemalloc

import pytest
from django.core.exceptions import ValidationError

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
    assert problem.startswith("line 2: the filter 'uppr' is not one message templates can use — did you mean upper?")


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
        "event": {
            "items": [{"name": "cup", "price": 3}, {"name": "pot", "price": 12.5}],
            "note": "Hello world",
            "paid": True,
            "tags": ["new", "gift"],
        },
    }
    content = SmsContent(text=source)
    assert render_sms(content, values, language="") == (
        "odd Cup 3.00even Pot 12.50\n2 items\nfriend ZOE\nHello w… new, gift paid\nhello<p><b>x</b></p> 11"
    )


def test_the_list_filters_render_as_before_within_the_budget():
    source = (
        "{{ event.items|dictsort:'name'|first }} {{ event.items|dictsortreversed:'name'|last }} "
        "{{ event.tags|add:event.more|join:',' }} {{ event.items|slice:':2'|length }} {{ event.tags|last|upper }} "
        "{{ event.when|date:'Y-m-d' }} {{ event.note|wordwrap:5|linebreaksbr }}"
    )
    assert template_problems(source) == []
    values = {
        **VALUES,
        "event": {
            "items": [{"name": "pot"}, {"name": "cup"}, {"name": "mug"}],
            "tags": ["new", "gift"],
            "more": ["sale"],
            "when": datetime.date(2026, 5, 1),
            "note": "a b c d e f",
        },
    }
    assert render_email(EmailTemplate(slug="l", subject="s", html_body=source), values, language="")[2] == (
        "{&#x27;name&#x27;: &#x27;cup&#x27;} {&#x27;name&#x27;: &#x27;cup&#x27;} new,gift,sale 2 GIFT 2026-05-01 "
        "a b c<br>d e f"
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
    EmailTemplateVariant.objects.create(
        template=template, language="it", subject="Ciao {% lorem %}", html_body="<p>Ciao</p>"
    )
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
        slug="loops",
        text="{% for a in event.items %}{% for b in event.items %}{% for c in event.items %}"
        "{% endfor %}{% endfor %}{% endfor %}",
    )
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, {**VALUES, "event": {"items": list(range(30))}}, language="")
    assert "loops ran more than 10,000 times" in str(failure.value)


# --- Values built inside a render: every filter's result counts against the budget ---------


def _sms(text):
    return SmsContent(slug="big", text=text)


@contextlib.contextmanager
def _memory_peak():
    """The most memory allocated inside the block, in MiB: ``peak["MiB"]`` once it ends."""
    peak = {}
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak["MiB"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()


def test_chained_joins_fail_at_the_join_that_would_make_a_value_over_the_budget():
    # "Shop" grows five times with each join: the eighth makes 1,171,876 characters, and
    # |length would print only a number, so the size of the rendered text never shows it.
    content = _sms("Hi\n{{ site.name" + "|join:site.name" * 8 + "|length }}")
    started = time.perf_counter()
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, VALUES, language="")
    assert str(failure.value) == (
        "SMS content 'big': line 2: the filter 'join' would make a value of more than 1 MiB "
        "(TRIGGERHUB_RENDER_MAX_BYTES)."
    )
    assert time.perf_counter() - started < 1


def test_a_join_whose_value_would_be_over_the_budget_fails_before_making_it(settings):
    settings.TRIGGERHUB_RENDER_MAX_BYTES = 1000
    # 900 characters joined with themselves would be 810,000 characters.
    content = _sms("{{ event.text|join:event.text|length }}")
    with _memory_peak() as peak, pytest.raises(RenderFailed) as failure:
        render_sms(content, {**VALUES, "event": {"text": "x" * 900}}, language="")
    assert str(failure.value) == (
        "SMS content 'big': line 1: the filter 'join' would make a value of more than 1,000 bytes "
        "(TRIGGERHUB_RENDER_MAX_BYTES)."
    )
    assert peak["MiB"] < 0.5


def test_adds_in_nested_withs_fail_at_the_add_that_makes_a_value_over_the_budget():
    levels = 20
    source = (
        "{% with v0=site.name %}\n"
        + "".join(f"{{% with v{n + 1}=v{n}|add:v{n} %}}\n" for n in range(levels))
        + f"{{{{ v{levels}|length }}}}"
        + "{% endwith %}" * (levels + 1)
    )
    assert template_problems(source) == []
    with pytest.raises(RenderFailed) as failure:
        render_sms(_sms(source), VALUES, language="")
    # v18 is "Shop" 2^18 times, 1 MiB; v19 (line 20) would be twice that.
    assert str(failure.value) == (
        "SMS content 'big': line 20: the filter 'add' made a value of more than 1 MiB (TRIGGERHUB_RENDER_MAX_BYTES)."
    )


def test_a_literal_floatformat_precision_over_the_cap_is_refused_at_save_with_its_line():
    problems = template_problems('Total:\n{{ event.total|floatformat:"1000000" }} {{ event.total|floatformat:"-25g" }}')
    assert problems == [
        "line 2: floatformat can show at most 20 decimal places; here it is asked for 1000000.",
        "line 2: floatformat can show at most 20 decimal places; here it is asked for -25.",
    ]
    assert template_problems('{{ event.total|floatformat:"-20g" }} {{ event.total|floatformat:20 }}') == []


@pytest.mark.django_db
def test_a_template_with_a_huge_floatformat_is_not_saved():
    template = EmailTemplate(
        slug="ff", name="FF", subject="Hi", html_body="<p>\n{% filter floatformat:1000000 %}1{% endfilter %}</p>"
    )
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    assert error.value.message_dict["html_body"] == [
        "line 2: floatformat can show at most 20 decimal places; here it is asked for 1000000."
    ]


def test_a_floatformat_precision_from_a_value_over_the_cap_fails_at_render_in_a_loop_quickly():
    content = _sms("{% for item in event.items %}{{ 1|floatformat:event.places|length }}{% endfor %}")
    started = time.perf_counter()
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, {**VALUES, "event": {"items": list(range(20)), "places": 1_000_000}}, language="")
    assert str(failure.value) == (
        "SMS content 'big': line 1: floatformat can show at most 20 decimal places; here it is asked for 1000000."
    )
    assert time.perf_counter() - started < 1


def test_floatformat_within_the_cap_renders_as_before():
    content = _sms("{{ event.total|floatformat:20 }} {{ event.total|floatformat:'-3g' }} {{ event.total|floatformat }}")
    assert render_sms(content, {**VALUES, "event": {"total": 1234.5}}, language="") == (
        "1234.50000000000000000000 1,234.500 1234.5"
    )


def test_filters_making_big_values_over_and_over_in_a_loop_fail_quickly():
    # Each value is under the budget, but a loop asks for it 10,000 times: 2.3 GB made and thrown away.
    content = _sms(
        "{% with big=site.name" + "|join:site.name" * 7 + " %}{% for item in event.items %}"
        "{{ big|upper|length }}{% endfor %}{% endwith %}"
    )
    started = time.perf_counter()
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, {**VALUES, "event": {"items": list(range(10_000))}}, language="")
    assert "the filters of this text made more than 10 MiB of values in all" in str(failure.value)
    assert time.perf_counter() - started < 1


def test_a_filter_over_the_budget_inside_a_condition_still_fails_the_render():
    # {% if %} turns an error in a comparison into "false": the render must fail all the same.
    content = _sms("{% if site.name" + "|join:site.name" * 8 + "|length > 1 %}long{% else %}short{% endif %}")
    with pytest.raises(RenderFailed) as failure:
        render_sms(content, VALUES, language="")
    assert "the filter 'join' would make a value of more than 1 MiB" in str(failure.value)


def test_a_loop_writing_a_big_value_over_and_over_fails_before_the_text_is_built():
    # 234,376 characters, written 2,000 times: 470 MB of text before the final size check.
    content = EmailTemplate(
        slug="loop",
        subject="Hi",
        html_body=(
            "{% with big=site.name" + "|join:site.name" * 7 + " %}{% for item in event.items %}"
            "<p>{{ big }}</p>{% endfor %}{% endwith %}"
        ),
    )
    with _memory_peak() as peak, pytest.raises(RenderFailed) as failure:
        render_email(content, {**VALUES, "event": {"items": list(range(2_000))}}, language="")
    assert str(failure.value).startswith("e-mail template 'loop', HTML body: line 1: the rendered text is more than")
    assert peak["MiB"] < 20


def test_a_text_repeating_a_big_value_fails_before_the_text_is_built():
    content = _sms("{% with big=site.name" + "|join:site.name" * 7 + " %}" + "{{ big }}" * 300 + "{% endwith %}")
    with _memory_peak() as peak, pytest.raises(RenderFailed) as failure:
        render_sms(content, VALUES, language="")
    assert "the rendered text is more than the 1,048,576 bytes TRIGGERHUB_RENDER_MAX_BYTES allows" in str(failure.value)
    assert peak["MiB"] < 20


def test_lists_made_by_filters_count_their_items():
    # add of two lists doubles a list: 2^11 copies of 600 characters is over 1 MiB.
    levels = 11
    source = (
        "{% with v0=event.items %}"
        + "".join(f"{{% with v{n + 1}=v{n}|add:v{n} %}}" for n in range(levels))
        + f"{{{{ v{levels}|length }}}}"
        + "{% endwith %}" * (levels + 1)
    )
    with pytest.raises(RenderFailed) as failure:
        render_sms(_sms(source), {**VALUES, "event": {"items": ["x" * 600]}}, language="")
    assert "the filter 'add' made a value of more than 1 MiB" in str(failure.value)
