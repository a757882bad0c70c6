import pytest
from django.core.exceptions import ValidationError

from messaging.models import EmailTemplate
from messaging.rendering import text_from_html


@pytest.mark.django_db
def test_a_template_with_a_syntax_error_is_refused_with_the_line():
    template = EmailTemplate(
        slug="broken", name="Broken", subject="Hi",
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
