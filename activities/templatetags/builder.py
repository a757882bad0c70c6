"""Template tags of the activity builder's page."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def action(*parts):
    """A palette action from its parts: ``{% action "add" "send" parent arm as act %}`` → add:send:3:then."""
    return ":".join(str(part) for part in parts)


@register.simple_tag(takes_context=True)
def refresh(context, action="noop", trigger=None):
    """htmx attributes that post the page's form with ``_builder=<action>`` and swap in the builder
    as the server shows it again. A palette button also carries ``name="_builder"`` so that,
    without JavaScript, its plain submit does the same as a whole page."""
    return format_html(
        'hx-post="{}" hx-vals=\'{{"_builder": "{}"}}\' hx-include="closest form" '
        'hx-target="#builder" hx-select="#builder" hx-swap="outerHTML"{}',
        context["request"].path,
        action,
        format_html(' hx-trigger="{}"', trigger) if trigger else "",
    )


@register.filter
def problems_of(block_problems, key):
    return block_problems.get(key, [])


@register.filter
def findings_of(findings, key):
    return [finding for finding, block in findings if block == key]


@register.filter
def problems_of_step(block_problems, index):
    return block_problems.get(f"step-{index}", [])


@register.filter
def findings_of_step(findings, index):
    return [finding for finding, block in findings if block == f"step-{index}"]


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
