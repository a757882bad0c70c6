"""Rendering e-mail templates and SMS content with a restricted context.

Templates are written in the Django template language, compiled by an engine of
their own: no file loaders (a template cannot include files from the server),
autoescaping on for HTML, and a context built here from the customer's safe fields
and the message's own values, never from model instances.
"""

import html
import re

from django.template import Context, Engine

_engine = Engine(autoescape=True, debug=True, loaders=[])


def compile_template(source: str):
    """Compile ``source``; raises ``TemplateSyntaxError`` with the line in ``template_debug``."""
    return _engine.from_string(source)


def customer_context(customer) -> dict:
    """The customer fields a template may use: nothing that could leak another's data."""
    return {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "full_name": customer.full_name,
        "email": customer.email,
        "phone": customer.phone,
        "country": customer.country,
        "language": customer.language,
        "attributes": dict(customer.attributes or {}),
    }


def render(source: str, values: dict, *, autoescape: bool) -> str:
    return compile_template(source).render(Context(values, autoescape=autoescape))


def text_from_html(markup: str) -> str:
    """A readable plain-text alternative of an HTML body."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", markup)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", text)
    text = re.sub(r"(?i)<a\s[^>]*href=\"([^\"]+)\"[^>]*>(.*?)</a>", r"\2 (\1)", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def render_email(template, values: dict) -> tuple[str, str, str]:
    """Return (subject, text body, HTML body) of ``template`` for ``values``."""
    subject = " ".join(render(template.subject, values, autoescape=False).split())
    body_html = render(template.html_body, values, autoescape=True)
    if template.text_body.strip():
        body_text = render(template.text_body, values, autoescape=False)
    else:
        body_text = text_from_html(body_html)
    return subject, body_text, body_html


def render_sms(content, values: dict) -> str:
    return render(content.text, values, autoescape=False).strip()
