"""The template language of messages: the tags and filters a marketer may use, and no other.

Message templates are compiled by an engine of their own (``rendering``) whose only
library is this module's ``register``: a tag or filter not listed here is a syntax error
when the template is saved, with its line and what to write instead (``problem_in``). So no
template can read a file ({% include %}, {% extends %}), print its context ({% debug %}),
turn a few characters into megabytes ({% lorem %}) or let a customer's name add markup to
an HTML e-mail ({% autoescape off %}, ``|safe``). README.md, "Template language", lists
them for marketers.
"""

import difflib
import re

from django.template import Library, Node, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import TokenType

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
    "default", "default_if_none", "upper", "lower", "title", "capfirst", "cut",
    "truncatechars", "truncatewords", "wordwrap", "wordcount", "linebreaks", "linebreaksbr",
    "striptags", "escape", "force_escape", "urlencode",
    "add", "floatformat", "divisibleby", "pluralize", "yesno",
    "date", "time", "timesince", "timeuntil",
    "length", "first", "last", "join", "slice", "dictsort", "dictsortreversed",
)

#: How many times the loops of one rendered text may run in all: three loops nested over an
#: event's 1,000 items would run a billion times before the size limit could be checked.
MAX_LOOP_ITERATIONS = 10_000

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


class TooManyLoopIterations(Exception):
    """A render ran its loops more than MAX_LOOP_ITERATIONS times."""


# --- The library --------------------------------------------------------------------

register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class _LoopCounter(Node):
    """The first node of every loop's body: counts the iterations of all loops in one render."""

    def __init__(self, token, origin):
        self.token, self.origin = token, origin  # so an error shows the line of its {% for %}

    def render(self, context):
        runs = context.render_context.get(_LoopCounter, 0) + 1
        if runs > MAX_LOOP_ITERATIONS:
            raise TooManyLoopIterations(
                f"loops ran more than {MAX_LOOP_ITERATIONS:,} times; loop over fewer values, or nest fewer loops."
            )
        context.render_context[_LoopCounter] = runs
        return ""


@register.tag("for")
def counted_for(parser, token):
    """Django's {% for %}, whose iterations count towards MAX_LOOP_ITERATIONS."""
    node = defaulttags.do_for(parser, token)
    node.nodelist_loop.insert(0, _LoopCounter(token, parser.origin))
    return node


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
    [closest] = difflib.get_close_matches(name, ALLOWED_TAGS, n=1, cutoff=0.6) or [None]
    hint = f" — did you mean {{% {closest} %}}?" if closest else "."
    return f"{{% {name} %}} is not a tag message templates can use{hint} They can use {_TAG_NAMES}."


def refused_filter(name: str) -> str:
    if name in _INSTEAD_OF_FILTER:
        return f"the filter '{name}' is not allowed in a message template; {_INSTEAD_OF_FILTER[name]}"
    [closest] = difflib.get_close_matches(name, ALLOWED_FILTERS, n=1, cutoff=0.6) or [None]
    hint = f" — did you mean {closest}?" if closest else "."
    return f"the filter '{name}' is not one message templates can use{hint} They can use {_FILTER_NAMES}."
