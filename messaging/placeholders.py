"""Placeholders from other tools that TriggerHub sends as typed: ``{first_name}``, ``[FIRSTNAME]``,
``%FIRSTNAME%``, Mailchimp's ``*|FNAME|*`` and Handlebars' ``{{{ name }}}``.

A marketer who pastes a text from another tool gets no error for them (they are plain
text to the template language, except triple braces), and the customer would read
"Hi {first_name}". ``unfilled_placeholders`` finds each one with its line and the
variable to write instead (from ``rendering.TEMPLATE_VARIABLES``); the admin shows them
as warnings, and so may anything else that checks a text before it is sent. What the
template language fills (``{{ ... }}``, ``{% ... %}``, ``{# ... #}``) is never one.
"""

import bisect
import functools
import re
from dataclasses import dataclass

from .rendering import known_variables

#: Names other tools give the values TriggerHub has, spelt without case, "_", "-" or spaces.
ALIASES = {
    **dict.fromkeys(("firstname", "fname", "first", "givenname", "name", "forename"), "customer.first_name"),
    **dict.fromkeys(("lastname", "lname", "surname", "familyname"), "customer.last_name"),
    **dict.fromkeys(("fullname", "customername", "contactname"), "customer.full_name"),
    **dict.fromkeys(("email", "emailaddress", "mail"), "customer.email"),
    **dict.fromkeys(("phone", "mobile", "phonenumber", "mobilenumber", "cell"), "customer.phone"),
    **dict.fromkeys(("country", "countrycode"), "customer.country"),
    **dict.fromkeys(("language", "lang", "locale"), "customer.language"),
    **dict.fromkeys(
        ("code", "coupon", "couponcode", "discountcode", "promocode", "promo", "voucher", "vouchercode"),
        "coupon.code",
    ),
    **dict.fromkeys(("discount", "percent", "percentoff", "discountpercent"), "coupon.percent_off"),
    **dict.fromkeys(("amount", "amountoff", "discountamount"), "coupon.amount_off"),
    **dict.fromkeys(("expires", "expiry", "expiresat", "expirydate", "validuntil"), "coupon.expires_at"),
    **dict.fromkeys(
        ("unsub", "unsubscribe", "unsubscribeurl", "unsubscribelink", "optout", "optouturl"),
        "unsubscribe_url",
    ),
    **dict.fromkeys(("sitename", "company", "companyname", "listcompany", "shop", "shopname", "brand"), "site.name"),
    **dict.fromkeys(("siteurl", "website", "url", "homepage", "listurl"), "site.url"),
}

_IDENTIFIER = r"[A-Za-z][\w.:-]*"
#: Without ":", so that CSS in an HTML body ("p{margin:0}") is not taken for a placeholder.
_BRACED_IDENTIFIER = r"[A-Za-z][\w.-]*"
#: The template language's own tags, blanked out before looking (they are never a placeholder).
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@dataclass(frozen=True)
class _Style:
    name: str  # how a person calls it
    pattern: re.Pattern
    any_name: bool  # False: only names that look like variables (see _looks_like_a_variable)


_TRIPLE_BRACES = _Style("Handlebars triple braces", re.compile(r"\{\{\{\s*(" + _IDENTIFIER + r")\s*\}\}\}"), True)
_STYLES = (
    _Style("a Mailchimp merge tag", re.compile(r"\*\|\s*(" + _IDENTIFIER + r")\s*\|\*"), True),
    _Style("single braces", re.compile(r"\$?(?<!\{)\{\s*(" + _BRACED_IDENTIFIER + r")\s*\}(?!\})"), True),
    _Style("brackets", re.compile(r"\[\[?\s*(" + _IDENTIFIER + r")\s*\]?\](?!\()"), False),
    _Style("percent signs", re.compile(r"(?<![{\w])%(" + _IDENTIFIER + r")%(?![}\w])"), False),
)


@dataclass(frozen=True)
class Placeholder:
    """One placeholder nobody fills, where it is and what to write instead."""

    text: str  # as written: "{first_name}"
    line: int
    style: str  # "single braces", "brackets", ...
    variable: str  # the TriggerHub variable meant ("customer.first_name"), or "" if none is known

    @property
    def instead(self) -> str:
        if self.variable:
            return "{{ " + self.variable + " }}"
        name = _name_in(self.text)
        return f"{{{{ customer.attributes.{name} }}}} (a customer attribute) or {{{{ event.{name} }}}} (the event's)"

    def __str__(self):
        return (
            f"line {self.line}: {self.text} ({self.style}) is not filled in by TriggerHub and would be sent as "
            f"typed; write {self.instead}"
        )


def unfilled_placeholders(source: str) -> list[Placeholder]:
    """Each placeholder in ``source`` written for another tool, in order, with the variable to write instead."""
    line_starts = [0, *(match.end() for match in re.finditer("\n", source))]
    found = [
        (match.start(), _placeholder(line_starts, match, _TRIPLE_BRACES))
        for match in _TRIPLE_BRACES.pattern.finditer(source)
    ]
    masked = _blank(_TEMPLATE_TAG, _blank(_TRIPLE_BRACES.pattern, source))
    for style in _STYLES:
        found += [
            (match.start(), _placeholder(line_starts, match, style))
            for match in style.pattern.finditer(masked)
            if style.any_name or _looks_like_a_variable(match.group(1))
        ]
        masked = _blank(style.pattern, masked)  # a Mailchimp tag is not also read as something else
    return [placeholder for _, placeholder in sorted(found, key=lambda item: item[0])]


def _blank(pattern: re.Pattern, text: str) -> str:
    """``text`` with what ``pattern`` matches replaced by spaces, newlines kept: lines and offsets stay."""
    return pattern.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), text)


def _placeholder(line_starts: list[int], match: re.Match, style: _Style) -> Placeholder:
    return Placeholder(
        text=match.group(0),
        line=bisect.bisect_right(line_starts, match.start()),
        style=style.name,
        variable=variable_for(match.group(1)),
    )


def _name_in(text: str) -> str:
    found = re.search(_IDENTIFIER, text)
    assert found is not None  # a placeholder's text holds its name
    return found.group(0).lower().replace("-", "_").replace(":", "_")


def _spelling(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=1024)
def variable_for(name: str) -> str:
    """The TriggerHub variable another tool's ``name`` means ("FNAME" → "customer.first_name"), or ""."""
    spelt = _spelling(name)
    known = [".".join(path) for path, below in known_variables() if below is None]
    for variable in known:  # the name written in full: {customer.first_name}
        if spelt == _spelling(variable):
            return variable
    # An alias before a bare last part: "name" is the customer's first name more often than the site's.
    alias = ALIASES.get(spelt) or ALIASES.get(_spelling(name.split(":")[-1]))
    if alias:
        return alias
    return next((variable for variable in known if spelt == _spelling(variable.split(".")[-1])), "")


def _looks_like_a_variable(name: str) -> bool:
    """Brackets and percent signs are also ordinary text ("[if mso]", "[STOP]", "[note]"): only a name
    with an underscore, or one TriggerHub knows by another name, is taken for a placeholder."""
    return "_" in name or bool(variable_for(name))
