"""Rendering e-mail templates and SMS content with a restricted context.

Templates are written in the Django template language, compiled by an engine of
their own: only the tags and filters of ``template_language`` (a template cannot
include files, load libraries or print its context), no file loaders, autoescaping on
for HTML, and a context built here from the customer's safe fields and the message's
own values, never from model instances. Those values and the customer's attributes are
copies (``values_for``): the engine calls the methods a template names, and
{{ event.items.pop }} must not change the message that delivery saves.

The variables a template may use are listed once, in ``TEMPLATE_VARIABLES``; a
template naming any other, or a tag or filter outside the language, is refused when
it is saved (``template_problems``), with the line and what to write instead. A
template or SMS content may have language variants; the customer's language picks
one (``version_for``).

Delivery and validation compile with the same engine, so what is accepted at save
renders the same when sent. A template that cannot render (one saved before a rule
existed, a filter that raises on a value, a text over TRIGGERHUB_RENDER_MAX_BYTES, or
one of the limits ``template_language`` sets on what a render may make on the way)
raises ``RenderFailed`` from ``render_email`` and ``render_sms``. A missing setting (the
site's address for links) stays ``ImproperlyConfigured``: the operator's to fix, not the
template's.
"""

import copy
import difflib
import functools
import html
import re
from dataclasses import dataclass
from typing import TypeAlias, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable
from django.template.defaulttags import FilterNode, ForNode, WithNode
from django.template.smartif import TokenBase

from . import template_language


class _MessageEngine(Engine):
    default_builtins = []  # Django's built-in tags and filters: only those template_language lends


#: No loaders, so nothing can be read from a file; debug on, so that an error knows its line.
_engine = _MessageEngine(
    autoescape=True, debug=True, loaders=[], libraries={}, builtins=["messaging.template_language"]
)

#: Where links in messages point when TRIGGERHUB_PUBLIC_BASE_URL is empty in development.
DEVELOPMENT_BASE_URL = "http://localhost:8000"

#: The customer's fields a template sees as ``customer.<name>``, besides ``customer.attributes``.
CUSTOMER_FIELDS = ("first_name", "last_name", "full_name", "email", "phone", "country", "language")

#: Below a name marked so, any name is allowed (its content varies by event, link set, customer).
ANYTHING = "anything"

#: What is below a name in ``TEMPLATE_VARIABLES``: the names below it, ``None`` or ``ANYTHING``.
Known: TypeAlias = "dict[str, Known] | str | None"

#: Every variable a template may use: a dict lists the names below a variable, ``None`` is
#: a value with nothing below it. Who fills them in: ``customer`` comes from
#: ``customer_context()``; ``event``, ``coupon`` and ``links`` from the activity that wrote
#: the message (``Message.context``); ``unsubscribe_url`` and ``site`` from delivery.
#: docs/templates.md, "Template variables", documents this list for marketers.
TEMPLATE_VARIABLES: dict[str, Known] = {
    "customer": {**dict.fromkeys(CUSTOMER_FIELDS), "attributes": ANYTHING},
    "event": ANYTHING,
    "coupon": {"code": None, "percent_off": None, "amount_off": None, "expires_at": None},
    "links": ANYTHING,
    "unsubscribe_url": None,
    "site": {"name": None, "url": None},
}


@functools.lru_cache(maxsize=256)
def compile_template(source: str):
    """Compile ``source``; raises ``TemplateSyntaxError`` with the line in ``template_debug``.

    Kept by source text: a worker renders the same few templates for every message, and
    compiling was most of the cost. A compiled Template is never changed by rendering
    (state lives in each render's Context), so threads may share it.
    """
    return template_language.within_budget(_engine.from_string(source))


def customer_context(customer) -> dict:
    """The customer fields a template may use: nothing that could leak another's data.

    ``attributes`` is a copy (``_copy``), so that no template can change the customer's own.
    """
    return {
        **{name: getattr(customer, name) for name in CUSTOMER_FIELDS},
        "attributes": _copy(customer.attributes or {}),
    }


def values_for(customer, context: dict | None = None, *, unsubscribe_url: str = "") -> dict:
    """What a message to ``customer`` renders with: the message's values (``context``), the
    customer's fields, the site, and the link that unsubscribes from it.

    The values filled in here win over a message value of the same name, so an activity
    cannot replace the customer's data or the unsubscribe link. The message's values are
    copied all the way down (``_copy``): the engine calls the methods a template names
    ({{ event.items.pop }}, {{ links.clear }}), and delivery saves the message it renders.
    """
    return {
        **{name: _copy(value) for name, value in (context or {}).items()},
        "customer": customer_context(customer),
        "site": site_context(),
        "unsubscribe_url": unsubscribe_url,
    }


#: Values shared between the original and its copy: no method of theirs changes them.
_SHARED = frozenset((str, int, float, bool, type(None)))


def _copy(value):
    """``value`` with every dict and list in it copied, for a template to do what it likes with.

    Message values and attributes are JSON (dicts, lists, texts, numbers): copied here in
    a few microseconds for an event of a few items; anything else goes to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _SHARED else _copy(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SHARED else _copy(item) for item in value]
    return value if kind in _SHARED else copy.deepcopy(value)


def site_context() -> dict:
    """``site.name`` and ``site.url``: who sends, and where people reach them."""
    return {"name": settings.TRIGGERHUB_SITE_NAME, "url": public_base_url()}


def public_base_url() -> str:
    """The site's address as recipients reach it, without a trailing slash; links in messages start with it."""
    if settings.TRIGGERHUB_PUBLIC_BASE_URL:
        return settings.TRIGGERHUB_PUBLIC_BASE_URL.rstrip("/")
    if settings.TRIGGERHUB_MODE != "production":
        return DEVELOPMENT_BASE_URL
    hosts = [host for host in settings.ALLOWED_HOSTS if "*" not in host and not host.startswith(".")]
    if not hosts:
        raise ImproperlyConfigured(
            "Links in messages need the site's address: set TRIGGERHUB_PUBLIC_BASE_URL, "
            "e.g. https://triggerhub.example.com (DJANGO_ALLOWED_HOSTS names no single host to use)."
        )
    return f"https://{hosts[0]}"


# --- Checking a template before it is saved ---------------------------------------


def template_problems(source: str) -> list[str]:
    """What is wrong with ``source``, each problem starting with its line; empty if nothing is."""
    try:
        template = compile_template(source)
    except Exception as exc:  # a marketer's text: whatever Django makes of it, they read a sentence, never a 500
        return [_problem(exc)]
    nodes = list(_all_nodes(template.nodelist))
    used: list[tuple[int | None, tuple[str, ...], frozenset[str]]] = []
    _collect_variables(template.nodelist, frozenset(_assigned_names(nodes)), None, used, set())
    block_names = _block_names(nodes)
    problems = []
    for line, lookups, scope in used:
        problem = _unknown_variable(lookups, scope, block_names)
        if problem:
            problems.append(f"line {line}: {problem}" if line else problem)
    _collect_argument_problems(template.nodelist, None, problems, set())
    return list(dict.fromkeys(problems))


def _problem(exc: Exception) -> str:
    """``exc``, raised compiling or rendering a template, as a sentence for the marketer, with its line."""
    line = getattr(exc, "template_debug", {}).get("line")
    if isinstance(exc, TemplateSyntaxError):
        problem = template_language.problem_in(exc)
    else:
        problem = str(exc) or type(exc).__name__
    return f"line {line}: {problem}" if line else problem


def _collect_variables(node, scope, line, used, seen):
    """Append (line, lookups, names in scope) for each variable under ``node``.

    Walks every attribute of every node rather than a list of known tags, so that a
    variable inside any built-in tag ({% if %}, {% firstof %}, {% cycle %}, filter
    arguments...) is seen; only the tags that define names need a case of their own.
    """
    if isinstance(node, Node):
        if id(node) in seen:
            return
        seen.add(id(node))
        line = getattr(getattr(node, "token", None), "lineno", None) or line
        if isinstance(node, ForNode):
            _collect_variables(node.sequence, scope, line, used, seen)
            loop_scope = scope | {*node.loopvars, "forloop"}
            _collect_variables(node.nodelist_loop, loop_scope, line, used, seen)
            _collect_variables(node.nodelist_empty, scope, line, used, seen)
        elif isinstance(node, WithNode):
            _collect_variables(list(node.extra_context.values()), scope, line, used, seen)
            _collect_variables(node.nodelist, scope | set(node.extra_context), line, used, seen)
        elif isinstance(node, FilterNode):
            # {% filter upper %} compiles to "var|upper": "var" is the block's own output.
            _collect_variables(_filter_arguments(node.filter_expr), scope, line, used, seen)
            _collect_variables(node.nodelist, scope, line, used, seen)
        else:
            for name, value in vars(node).items():
                if name not in ("token", "origin"):
                    _collect_variables(value, scope, line, used, seen)
    elif isinstance(node, FilterExpression):
        _collect_variables(node.var, scope, line, used, seen)
        _collect_variables(_filter_arguments(node), scope, line, used, seen)
    elif isinstance(node, Variable):
        if node.lookups:
            used.append((line, node.lookups, scope))
    elif isinstance(node, TokenBase):  # the operators and operands of an {% if %} condition
        _collect_variables(list(vars(node).values()), scope, line, used, seen)
    elif isinstance(node, (list, tuple)):
        for item in node:
            _collect_variables(item, scope, line, used, seen)
    elif isinstance(node, dict):
        _collect_variables(list(node.values()), scope, line, used, seen)


def _collect_argument_problems(node, line, problems, seen):
    """Append, with its line, what is wrong with each filter argument written in the template
    (floatformat:"1000000"): one taken from a value is checked when it renders."""
    if isinstance(node, Node):
        if id(node) in seen:
            return
        seen.add(id(node))
        line = getattr(getattr(node, "token", None), "lineno", None) or line
        node = [value for name, value in vars(node).items() if name not in ("token", "origin")]
    elif isinstance(node, FilterExpression):
        for function, arguments in node.filters:
            for is_variable, argument in arguments:
                if is_variable and argument.lookups is not None:
                    continue  # a value's: checked as it renders
                literal = argument.literal if is_variable else argument  # a number is kept as a Variable
                problem = template_language.argument_problem(function, literal)
                if problem:
                    problems.append(f"line {line}: {problem}" if line else problem)
        return
    elif isinstance(node, TokenBase):  # the operators and operands of an {% if %} condition
        node = list(vars(node).values())
    elif isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, (list, tuple)):
        for item in node:
            _collect_argument_problems(item, line, problems, seen)


def _filter_arguments(expression: FilterExpression) -> list:
    return [argument for _, arguments in expression.filters for is_variable, argument in arguments if is_variable]


def _all_nodes(value, seen=None):
    """Every node under ``value``, however deep (nodelists of any tag, {% if %} branches...)."""
    seen = set() if seen is None else seen
    if isinstance(value, Node):
        if id(value) in seen:
            return
        seen.add(id(value))
        yield value
        for name, item in vars(value).items():
            if name not in ("token", "origin"):
                yield from _all_nodes(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _all_nodes(item, seen)
    elif isinstance(value, dict):
        yield from _all_nodes(list(value.values()), seen)


def _assigned_names(nodes) -> set[str]:
    """Names the template sets for itself with "as" ({% cycle ... as row %}, {% now "Y" as year %})."""
    return {
        getattr(node, attribute)
        for node in nodes
        for attribute in ("asvar", "variable_name", "var_name")
        if isinstance(getattr(node, attribute, None), str)
    }


def _block_names(nodes) -> set[str]:
    """Names defined only inside a block: {% for item in ... %}, {% with total=... %}."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ForNode):
            names.update(node.loopvars)
        elif isinstance(node, WithNode):
            names.update(node.extra_context)
    return names


def _unknown_variable(lookups: tuple[str, ...], scope, block_names=()) -> str | None:
    """Why ``lookups`` (e.g. ("customer", "first_name")) is not a known variable, or None."""
    if lookups[0] in scope:
        return None
    if lookups[0] in block_names and lookups[0] not in TEMPLATE_VARIABLES:
        return (
            f"'{'.'.join(lookups)}' is used outside the {{% for %}} or {{% with %}} block that defines "
            f"{lookups[0]}; move it inside the block."
        )
    known: Known = TEMPLATE_VARIABLES
    for depth, name in enumerate(lookups):
        if known is ANYTHING:
            return None
        if not isinstance(known, dict) or name not in known:
            return _explain(lookups, depth, scope)
        known = known[name]
    return None


def _explain(lookups, depth, scope) -> str:
    dotted = ".".join(lookups)
    suggestion = difflib.get_close_matches(dotted, _candidates(lookups, scope), n=1, cutoff=0.6)
    problem = f"unknown variable '{dotted}'" + (f" — did you mean {suggestion[0]}?" if suggestion else ".")
    parent = lookups[:depth]
    known: Known = TEMPLATE_VARIABLES
    for name in parent:
        known = cast(dict, known)[name]  # _unknown_variable found a dict at each name above ``depth``
    if parent and isinstance(known, dict):
        return f"{problem} {'.'.join(parent)} has {_and_list(_names_below(known))}"
    if parent:
        return f"{problem} {'.'.join(parent)} has nothing below it."
    roots = _and_list(_names_below(TEMPLATE_VARIABLES))
    own = f"; here also {', '.join(sorted(scope))}" if scope else ""
    return f'{problem} Templates can use {roots}{own} (see "Template variables" in docs/templates.md).'


def _candidates(lookups, scope) -> list[str]:
    """Known names to compare ``lookups`` with; where anything may follow, the user's own tail does."""
    candidates = []
    for path, below in known_variables():
        if below is ANYTHING:
            path = path + lookups[len(path) :]
        candidates.append(".".join(path))
    candidates += [".".join((name, *lookups[1:])) for name in scope]
    return candidates


def known_variables(known=None, prefix=()):
    """Each known variable as (path, ``None`` or ``ANYTHING``): ("customer", "email"), None..."""
    for name, below in (TEMPLATE_VARIABLES if known is None else known).items():
        if isinstance(below, dict):
            yield from known_variables(below, (*prefix, name))
        else:
            yield (*prefix, name), below


def _names_below(known: dict) -> list[str]:
    """Known names for a person to read; "attributes.…" where any name may follow."""
    return [f"{name}.…" if below is not None else name for name, below in known.items()]


def _and_list(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# --- Languages ----------------------------------------------------------------------


def normalize_language(code: str | None) -> str:
    """ "pt_BR", "pt-BR" and "pt-br" are one language: stored and compared as "pt-br"."""
    return (code or "").strip().replace("_", "-").lower()


def version_for(content, language: str | None):
    """The variant of ``content`` in ``language``: the exact one (pt-br), else the base
    language's (pt), else ``content`` itself, which is written in the site's default language.

    Reads ``content.variants.all()``, so a caller that prefetched the variants pays no query.
    """
    wanted = normalize_language(language)
    if not wanted or content.pk is None:
        return content
    variants = {normalize_language(variant.language): variant for variant in content.variants.all()}
    return variants.get(wanted) or variants.get(wanted.split("-")[0]) or content


def _customer_language(values: dict) -> str:
    customer = values.get("customer")
    return customer.get("language", "") if isinstance(customer, dict) else ""


# --- Rendering ------------------------------------------------------------------------


class RenderFailed(Exception):
    """A template or SMS content that cannot be rendered: its messages cannot be sent as written.

    Read as "e-mail template 'welcome' in 'it', HTML body: line 2: {% include %} is not
    allowed in a message template; paste the text in instead." ``where`` is what failed
    (the template, its language, the part), ``problem`` the rest.
    """

    def __init__(self, where: str, problem: str):
        super().__init__(where, problem)  # both in args, so that it survives pickling
        self.where, self.problem = where, problem

    def __str__(self):
        return f"{self.where}: {self.problem}"


def render(source: str, values: dict, *, autoescape: bool) -> str:
    """``source`` rendered with ``values``, within the limits of ``template_language.RenderBudget``."""
    template = compile_template(source)
    with template_language.RenderBudget(settings.TRIGGERHUB_RENDER_MAX_BYTES) as budget:
        try:
            text = template.render(Context(values, autoescape=autoescape))
        except Exception:
            if budget.failure is None:
                raise
        if budget.failure is not None:
            # The first limit a filter passed, with its own line if it had one: {% if %} turns
            # an error in a comparison into "false", and the filters after it fail with a copy.
            raise budget.failure
    return text


def text_from_html(markup: str) -> str:
    """A readable plain-text alternative of an HTML body."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", markup)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", text)
    text = re.sub(r"(?i)<a\s[^>]*href=\"([^\"]+)\"[^>]*>(.*?)</a>", r"\2 (\1)", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def render_email(template, values: dict, *, language: str | None = None) -> tuple[str, str, str]:
    """Return (subject, text body, HTML body) of ``template`` for ``values``.

    The version is the one in ``language``, by default the customer's (``values["customer"]``).
    """
    version = version_for(template, _customer_language(values) if language is None else language)
    return _render_email_version(version, values)


def render_sms(content, values: dict, *, language: str | None = None) -> str:
    """The text of ``content`` for ``values``, in ``language`` (by default the customer's)."""
    version = version_for(content, _customer_language(values) if language is None else language)
    return _render_sms_version(version, values)


def _render_email_version(version, values) -> tuple[str, str, str]:
    subject = " ".join(_render_part(version, "subject", values, autoescape=False).split())
    body_html = _render_part(version, "html_body", values, autoescape=True)
    if version.text_body.strip():
        body_text = _render_part(version, "text_body", values, autoescape=False)
    else:
        body_text = text_from_html(body_html)
    return subject, body_text, body_html


def _render_sms_version(version, values) -> str:
    return _render_part(version, "text", values, autoescape=False).strip()


_PART_NAMES = {"subject": "subject", "html_body": "HTML body", "text_body": "text body"}


def _render_part(version, field: str, values: dict, *, autoescape: bool) -> str:
    """The template in ``version.<field>`` rendered; ``RenderFailed`` for any reason it cannot be."""
    try:
        text = render(getattr(version, field), values, autoescape=autoescape)
    except ImproperlyConfigured:
        raise  # a setting the operator must fix (the site's address for links), not the template
    except Exception as exc:
        raise RenderFailed(_where(version, field), _problem(exc)) from exc
    limit = settings.TRIGGERHUB_RENDER_MAX_BYTES
    # A character is 1 to 4 bytes in UTF-8: encode only a text that may be over the limit.
    if len(text) * 4 > limit and len(encoded := text.encode()) > limit:
        raise RenderFailed(
            _where(version, field),
            f"the rendered text is {len(encoded):,} bytes, more than the {limit:,} bytes TRIGGERHUB_RENDER_MAX_BYTES allows.",
        )
    return text


def _where(version, field: str) -> str:
    """ "e-mail template 'welcome' in 'it', HTML body", "SMS content 'birthday'"."""
    kind = "e-mail template" if hasattr(version, "html_body") else "SMS content"
    parent = getattr(version, "template", None) or getattr(version, "content", None)
    name = f"'{parent.slug}' in '{version.language}'" if parent is not None else f"'{version.slug}'"
    return f"{kind} {name}" + (f", {_PART_NAMES[field]}" if field in _PART_NAMES else "")


# --- Previews in the admin ------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    customer: object
    language: str  # the language asked for: the customer's unless the marketer chose one
    version: object  # the template or SMS content itself, or the variant that language picked
    subject: str = ""
    text: str = ""
    html: str = ""
    error: str = ""  # why it could not be rendered, for the marketer to fix


def preview_email(template, customer, *, language: str | None = None, context: dict | None = None) -> Preview:
    """``template`` as ``customer`` would get it, with the message values ``context``."""
    return _preview(template, customer, language, context, _render_email_version)


def preview_sms(content, customer, *, language: str | None = None, context: dict | None = None) -> Preview:
    return _preview(
        content, customer, language, context, lambda version, values: ("", _render_sms_version(version, values), "")
    )


def _preview(content, customer, language, context, render_version) -> Preview:
    language = customer.language if language is None else language
    version = version_for(content, language)
    try:
        subject, text, body_html = render_version(version, values_for(customer, context))
    except RenderFailed as exc:
        return Preview(customer, language, version, error=exc.problem)
    except Exception as exc:  # the marketer reads why (a setting missing), never a 500
        return Preview(customer, language, version, error=str(exc))
    return Preview(customer, language, version, subject=subject, text=text, html=body_html)
