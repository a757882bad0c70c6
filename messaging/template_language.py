"""The template language of messages: the tags and filters a marketer may use, and no other,
and the limits on what a render may make.

Message templates are compiled by an engine of their own (``rendering``) whose only
library is this module's ``register``: a tag or filter not listed here is a syntax error
when the template is saved, with its line and what to write instead (``problem_in``). So no
template can read a file ({% include %}, {% extends %}), print its context ({% debug %}),
turn a few characters into megabytes ({% lorem %}) or let a customer's name add markup to
an HTML e-mail ({% autoescape off %}, ``|safe``). docs/templates.md lists them,
and the limits below, for marketers.

The size of the rendered text (TRIGGERHUB_RENDER_MAX_BYTES) is checked by ``rendering`` once
it is done; the tags and filters allowed could make far more on the way, in a template of a
few hundred characters: a text that is printed only as its |length, or a value written by a
loop 10,000 times. So a render runs within a ``RenderBudget``:

- every filter is wrapped (``_within_budget``): a value larger than the limit fails the
  render, naming the filter; ``join``, whose value can be its input times its argument, is
  checked before it runs; and the values the filters make add up to at most
  FILTER_VALUES_PER_TEXT times the limit. Only filters make new values ({% with %} and
  {% for %} name values that exist), so this bounds what any value can grow to;
- ``floatformat`` shows at most MAX_FLOATFORMAT_PRECISION decimal places: an argument
  written in the template is refused at save (``argument_problem``), one from a value at
  render;
- every block's text, and every loop's, stops as soon as it passes twice the limit
  (``_NodeListWithinBudget``, ``_LoopBody``), rather than when the whole text is done;
- loops run at most MAX_LOOP_ITERATIONS times in all.

What they cost is a function call and a length on the way: about half a microsecond a filter
and a microsecond a loop iteration, some 15 µs on an e-mail of 13 filters and a loop over 3
items whose render takes 150 µs.
"""

import difflib
import functools
import re
from contextvars import ContextVar
from typing import Any, cast

from django.conf import settings
from django.template import Library, Node, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import NodeList, TokenType
from django.template.defaulttags import ForNode
from django.utils.safestring import SafeString

#: The tags a message may use: conditions, loops, names for values, and a few conveniences.
ALLOWED_TAGS = ("if", "for", "with", "firstof", "cycle", "now", "filter", "spaceless", "comment")

#: What divides or closes the blocks of those tags; where one is misplaced, Django's own
#: message ("Invalid block tag on line 2: 'endif'") says more than ours would.
_PARTS_OF_ALLOWED_TAGS = frozenset(
    ("elif", "else", "endif", "empty", "endfor", "endwith", "endfilter", "endspaceless", "endcomment")
)

#: The filters a message may use: formatting text, numbers, dates and lists. Left out: those
#: that mark text safe (see _ESCAPING), pad or format to a width taken from the template
#: (ljust, center, stringformat: megabytes from a few characters), and those of no use in a
#: message (pprint, json_script, random...).
ALLOWED_FILTERS = (
    "default",
    "default_if_none",
    "upper",
    "lower",
    "title",
    "capfirst",
    "cut",
    "truncatechars",
    "truncatewords",
    "wordwrap",
    "wordcount",
    "linebreaks",
    "linebreaksbr",
    "striptags",
    "escape",
    "force_escape",
    "urlencode",
    "add",
    "floatformat",
    "divisibleby",
    "pluralize",
    "yesno",
    "date",
    "time",
    "timesince",
    "timeuntil",
    "length",
    "first",
    "last",
    "join",
    "slice",
    "dictsort",
    "dictsortreversed",
)

#: How many times the loops of one rendered text may run in all: three loops nested over an
#: event's 1,000 items would run a billion times before the size limit could be checked.
MAX_LOOP_ITERATIONS = 10_000

#: The values the filters of one rendered text make may add up to this many times
#: TRIGGERHUB_RENDER_MAX_BYTES: each value is checked on its own, but a loop can ask for a
#: value just under the limit 10,000 times and throw each away ({{ big|upper|length }}).
FILTER_VALUES_PER_TEXT = 10

#: The most decimal places ``floatformat`` may show: floatformat:"1000000" writes a megabyte.
MAX_FLOATFORMAT_PRECISION = 20

_LIMIT_SETTING = "TRIGGERHUB_RENDER_MAX_BYTES"

_ESCAPING = (
    "values are always escaped in HTML bodies, so that a customer's name or an event's value "
    "cannot add markup or links to your e-mail; write the markup in the template itself."
)
_SITE_ADDRESS = "write the address in full, starting with {{ site.url }}, e.g. {{ site.url }}/cart/."
_WHOLE_MESSAGE = "write the whole message in this template (message templates do not build on others)."


_TAG_NAMES = ", ".join(ALLOWED_TAGS)
_FILTER_NAMES = ", ".join(ALLOWED_FILTERS)

#: What to write instead of the tags a marketer is likeliest to try.
_INSTEAD_OF_TAG = {
    "include": "paste the text in instead.",
    "extends": _WHOLE_MESSAGE,
    "block": _WHOLE_MESSAGE,
    "load": f"a message can use only these tags: {_TAG_NAMES}; and these filters: {_FILTER_NAMES}.",
    "debug": "remove it (Preview, on the template's page, shows what a customer would get).",
    "lorem": "write the text itself.",
    "url": _SITE_ADDRESS,
    "static": _SITE_ADDRESS,
    "csrf_token": "remove it; a message has no form to protect.",
    "autoescape": _ESCAPING,
}
_INSTEAD_OF_FILTER = {"safe": _ESCAPING, "safeseq": _ESCAPING}


class OverLimit(Exception):
    """A render went past one of the limits of this module: its text cannot be sent."""


class TooManyLoopIterations(OverLimit):
    """A render ran its loops more than MAX_LOOP_ITERATIONS times."""


# --- What one render may make -----------------------------------------------------------


class RenderBudget:
    """The limits of one rendered text, for the filters and blocks rendering it (``with
    RenderBudget(limit): template.render(...)``; ``rendering.render`` does).

    ``limit`` (TRIGGERHUB_RENDER_MAX_BYTES) bounds each value a filter makes and each block's
    text as it is written, so that no render builds more than a few times the limit before
    it fails: a value or a text is measured in characters, each at least a byte. ``left`` is
    what the filters may still make in all; ``runs`` and ``written`` count for the loops
    (``_LoopBody``). ``failure`` is the first limit a filter passed:
    {% if %} turns an error in a comparison into "false", so the render must fail after the
    fact too (``rendering.render`` raises it), and every filter after it fails at once.
    """

    __slots__ = ("limit", "left", "failure", "runs", "written", "_token")

    def __init__(self, limit: int):
        self.limit, self.left = limit, FILTER_VALUES_PER_TEXT * limit
        self.failure: OverLimit | None = None
        self.runs = 0  # iterations of all loops
        self.written: dict[Node, int] = {}  # each running loop's (_LoopBody's) text so far

    def __enter__(self):
        self._token = _budget.set(self)
        return self

    def __exit__(self, *exc_info):
        _budget.reset(self._token)

    def refuse(self, problem: str):
        failure = self.failure = self.failure or OverLimit(problem)
        raise failure

    def over(self, name: str, made: int):
        """The filter ``name`` made a value of ``made`` characters, taking ``left`` below zero or
        being over the limit itself."""
        if made > self.limit:
            self.refuse(f"the filter '{name}' made a value of more than {amount(self.limit)} ({_LIMIT_SETTING}).")
        self.refuse(
            f"the filters of this text made more than {amount(FILTER_VALUES_PER_TEXT * self.limit)} of values in "
            f"all ({FILTER_VALUES_PER_TEXT} times {_LIMIT_SETTING}); use fewer filters on long values, or fewer "
            "loop iterations."
        )


_budget: ContextVar[RenderBudget | None] = ContextVar("message render budget", default=None)


def _fresh_budget() -> RenderBudget:
    """For a filter or block rendered outside ``rendering.render`` (a shell): the limit holds,
    the sum of the filters' values is not kept."""
    return RenderBudget(settings.TRIGGERHUB_RENDER_MAX_BYTES)


def amount(limit: int) -> str:
    """1048576 as "1 MiB", 1000 as "1,000 bytes"."""
    if limit % 2**20 == 0:
        return f"{limit // 2**20:,} MiB"
    return f"{limit // 1024:,} KiB" if limit % 1024 == 0 else f"{limit:,} bytes"


def size(value) -> int:
    """How much a value holds, cheaply: a text's length; a list's or tuple's length plus that
    of each text in it (other values count one each, and are not looked into)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return len(value) + sum(len(item) for item in value if isinstance(item, str))
    return 0


def _joined_size(value, separator) -> int:
    """At least what ``value|join:separator`` makes: (items - 1) separators between the items."""
    try:
        items = len(value)
    except TypeError:
        return 0
    return size(value) + max(items - 1, 0) * len(separator if isinstance(separator, str) else str(separator))


def _remembered(problem_of):
    """``problem_of``, remembering its answers for the few arguments templates give it (a
    template asks with the same ones for every message)."""
    answers = {}

    def problem(argument):
        try:
            return answers[argument]
        except KeyError:
            answer = problem_of(argument)
            if len(answers) < 256:
                answers[argument] = answer
            return answer
        except TypeError:  # unhashable: a list from a value
            return problem_of(argument)

    return problem


def _floatformat_problem(argument) -> str | None:
    """What is wrong with ``floatformat``'s ``argument`` (read as floatformat reads it: "2",
    "-3g", "2u"), or None."""
    places = argument
    if isinstance(places, str):
        if places[-2:] in ("gu", "ug"):
            places = places[:-2] or -1
        elif places[-1:] in ("g", "u"):
            places = places[:-1] or -1
    try:
        places = int(places)
    except (TypeError, ValueError):
        return None  # floatformat shows the number as it is
    except OverflowError:  # float("inf")
        places = argument
    if not isinstance(places, int) or abs(places) > MAX_FLOATFORMAT_PRECISION:
        return (
            f"floatformat can show at most {MAX_FLOATFORMAT_PRECISION} decimal places; here it is asked for {places}."
        )
    return None


#: Checks of a filter's argument: at save for an argument written in the template
#: (``argument_problem``), at render for one taken from a value.
_ARGUMENT_CHECKS = {"floatformat": _remembered(_floatformat_problem)}

#: Filters whose value can be far larger than their input and argument together, with a
#: bound known before they run: checked before, so the value is never made.
_SIZE_BEFORE = {"join": _joined_size}


def _within_budget(name: str, function):
    """``function`` (the filter ``name``), refusing a value larger than the render's limit,
    and values in all larger than FILTER_VALUES_PER_TEXT times it; its flags (is_safe,
    needs_autoescape...) and signature (``__wrapped__``, for Django's argument check) kept."""
    check_argument, size_before = _ARGUMENT_CHECKS.get(name), _SIZE_BEFORE.get(name)

    @functools.wraps(function)
    def filter_within_budget(value, *args, **kwargs):
        budget = _budget.get() or _fresh_budget()
        if budget.failure is not None:
            raise OverLimit(str(budget.failure))  # a copy: the first keeps its own line, or none
        if args:
            if check_argument is not None and (problem := check_argument(args[0])):
                budget.refuse(problem)
            if size_before is not None and size_before(value, args[0]) > budget.limit:
                budget.refuse(
                    f"the filter '{name}' would make a value of more than {amount(budget.limit)} ({_LIMIT_SETTING})."
                )
        result = function(value, *args, **kwargs)
        if result is not value:
            if isinstance(result, str):
                made = len(result)
            elif isinstance(result, (list, tuple)):
                made = size(result)
            else:
                return result
            budget.left -= made
            if made > budget.limit or budget.left < 0:
                budget.over(name, made)
        return result

    cast(Any, filter_within_budget).message_filter_name = name  # read by argument_problem
    return filter_within_budget


def argument_problem(function, argument) -> str | None:
    """What is wrong with ``argument``, written in a template for the filter ``function``
    (one of this library's), or None."""
    check = _ARGUMENT_CHECKS.get(getattr(function, "message_filter_name", ""))
    return check(argument) if check else None


def _text_too_long(limit: int) -> str:
    return f"the rendered text is more than the {limit:,} bytes {_LIMIT_SETTING} allows."


#: A block's text may reach this many times the limit as it is written: past the limit, the
#: text is refused when it is done, with its exact size in bytes (``rendering``).
_WRITTEN_PER_LIMIT = 2


class _NodeListWithinBudget(NodeList):
    """A block's nodes (the whole text, an {% if %} branch, a {% with %} body...) that stop as
    soon as their text passes the limit, instead of writing a value 10,000 times first."""

    def render(self, context):
        most = _WRITTEN_PER_LIMIT * (_budget.get() or _fresh_budget()).limit
        bits, written = [], 0
        for node in self:
            bit = node.render_annotated(context)
            written += len(bit)
            if written > most:
                raise OverLimit(_text_too_long(most // _WRITTEN_PER_LIMIT))
            bits.append(bit)
        return SafeString("".join(bits))


def within_budget(template):
    """``template`` (compiled by ``rendering``), its blocks writing within the limit: the
    parser makes plain NodeLists, and loops gather their text by themselves (``_LoopBody``)."""
    _limit_blocks(template.nodelist, set())
    return template


def _limit_blocks(value, seen):
    if isinstance(value, NodeList) and not isinstance(value, _NodeListWithinBudget):
        value.__class__ = _NodeListWithinBudget
    if isinstance(value, Node):
        if id(value) in seen:
            return
        seen.add(id(value))
        value = [item for name, item in vars(value).items() if name not in ("token", "origin")]
    if isinstance(value, (list, tuple)):
        for item in value:
            _limit_blocks(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _limit_blocks(item, seen)


# --- The library --------------------------------------------------------------------

register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    register.filters[_name] = _within_budget(_name, defaultfilters.register.filters[_name])


class _LoopBody(Node):
    """The body of every loop, rendering its nodes: counts the iterations of all loops in one
    render, and what this loop has written so far, stopping it past twice the limit (a
    loop gathers its text itself, not in a NodeList)."""

    def __init__(self, token, origin, nodelist):
        self.token, self.origin = token, origin  # so an error shows the line of its {% for %}
        self.nodelist = nodelist

    def render(self, context):
        budget = _budget.get()  # set by _CountedForNode
        budget.runs += 1
        if budget.runs > MAX_LOOP_ITERATIONS:
            raise TooManyLoopIterations(
                f"loops ran more than {MAX_LOOP_ITERATIONS:,} times; loop over fewer values, or nest fewer loops."
            )
        text = self.nodelist.render(context)
        written = budget.written[self] = budget.written[self] + len(text)
        if written > _WRITTEN_PER_LIMIT * budget.limit:
            raise OverLimit(_text_too_long(budget.limit))
        return text


class _CountedForNode(ForNode):
    """Django's {% for %}, whose body is a ``_LoopBody``; it starts the count of what it writes."""

    def render(self, context):
        budget = _budget.get()
        if budget is None:  # a template rendered without rendering.render (a shell): within its own
            with RenderBudget(settings.TRIGGERHUB_RENDER_MAX_BYTES):
                return self.render(context)
        budget.written[self.nodelist_loop[0]] = 0  # a loop inside another starts again each time
        return super().render(context)


@register.tag("for")
def counted_for(parser, token):
    """Django's {% for %}, whose iterations count towards MAX_LOOP_ITERATIONS and whose text stops at the limit."""
    node = defaulttags.do_for(parser, token)
    body = _LoopBody(token, parser.origin, node.nodelist_loop)
    return _CountedForNode(node.loopvars, node.sequence, node.is_reversed, NodeList([body]), node.nodelist_empty)


# --- Saying what to write instead -----------------------------------------------------


def problem_in(error: TemplateSyntaxError) -> str:
    """``error`` as the marketer should read it: for a tag or filter outside the language, what
    to write instead; otherwise Django's message (an unclosed block, a misplaced {% endif %})."""
    token = getattr(error, "token", None)
    if str(error).startswith("Invalid block tag") and token is not None and token.token_type == TokenType.BLOCK:
        name = token.contents.split()[0]
        if name not in _PARTS_OF_ALLOWED_TAGS:
            return refused_tag(name)
    unknown_filter = re.fullmatch(r"Invalid filter: '(.+)'", str(error))
    if unknown_filter:
        return refused_filter(unknown_filter[1])
    # Django's hint is for developers: a marketer can do neither.
    return str(error).replace(" Did you forget to register or load this tag?", "")


def refused_tag(name: str) -> str:
    if name in _INSTEAD_OF_TAG:
        return f"{{% {name} %}} is not allowed in a message template; {_INSTEAD_OF_TAG[name]}"
    matches = difflib.get_close_matches(name, ALLOWED_TAGS, n=1, cutoff=0.6)
    closest = matches[0] if matches else None
    hint = f" — did you mean {{% {closest} %}}?" if closest else "."
    return f"{{% {name} %}} is not a tag message templates can use{hint} They can use {_TAG_NAMES}."


def refused_filter(name: str) -> str:
    if name in _INSTEAD_OF_FILTER:
        return f"the filter '{name}' is not allowed in a message template; {_INSTEAD_OF_FILTER[name]}"
    matches = difflib.get_close_matches(name, ALLOWED_FILTERS, n=1, cutoff=0.6)
    closest = matches[0] if matches else None
    hint = f" — did you mean {closest}?" if closest else "."
    return f"the filter '{name}' is not one message templates can use{hint} They can use {_FILTER_NAMES}."
