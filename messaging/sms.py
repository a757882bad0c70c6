"""SMS length: which encoding a text needs, how many units it takes, and its parts.

GSM 03.38 (GSM-7): 160 septets in one SMS, 153 per part of a long one (the rest is
the concatenation header). Characters of the extension table take two septets (an
escape and the character), and an escape pair is never split across parts.
UCS-2, as soon as one character is outside GSM-7: 70 UTF-16 code units in one SMS,
67 per part; characters outside the Basic Multilingual Plane (most emoji) take two
code units, and a surrogate pair is never split.
"""

from dataclasses import dataclass

from django.db import models

# The GSM 03.38 basic character set (the escape, 0x1B, is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT = {"GSM-7": 160, "UCS-2": 70}
PART_LIMIT = {"GSM-7": 153, "UCS-2": 67}


class LongSmsPolicy(models.TextChoices):
    """What to do with a rendered text longer than one SMS (TRIGGERHUB_SMS_LONG_POLICY)."""

    SPLIT = "split", "Send as several parts (paid per part)"
    TRUNCATE = "truncate", "Cut to one SMS"
    REFUSE = "refuse", "Refuse to send"


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: tuple[str, ...]
    non_gsm_characters: tuple[str, ...]  # what forced UCS-2, in order of appearance

    @property
    def segments(self) -> int:
        return len(self.parts)


def is_gsm7(character: str) -> bool:
    return character in GSM7_BASIC or character in GSM7_EXTENSION


def unit_cost(character: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if character in GSM7_EXTENSION else 1
    return 2 if ord(character) > 0xFFFF else 1


def segment(text: str) -> Segments:
    """How ``text`` travels as SMS: encoding, units and the text of each part."""
    non_gsm = tuple(dict.fromkeys(c for c in text if not is_gsm7(c)))
    encoding = "UCS-2" if non_gsm else "GSM-7"
    costs = [unit_cost(c, encoding) for c in text]
    units = sum(costs)
    if units <= SINGLE_LIMIT[encoding]:
        parts = (text,) if text else ()
    else:
        parts = tuple(_split(text, costs, PART_LIMIT[encoding]))
    return Segments(encoding, units, parts, non_gsm)


def _split(text, costs, limit):
    # Characters are whole units of cost (an escape pair, a surrogate pair), so cutting
    # between characters never splits one.
    start, used = 0, 0
    for index, cost in enumerate(costs):
        if used + cost > limit:
            yield text[start:index]
            start, used = index, 0
        used += cost
    yield text[start:]


def truncate(text: str) -> str:
    """The longest beginning of ``text`` that fits in one SMS, cut between characters.

    The beginning may fit as GSM-7 (up to 160 septets, before any non-GSM character)
    or as UCS-2 (up to 70 code units); whichever keeps more of the text wins.
    """
    return text[: max(_fitting_prefix(text, "GSM-7"), _fitting_prefix(text, "UCS-2"))]


def _fitting_prefix(text, encoding) -> int:
    used = 0
    for index, character in enumerate(text):
        if encoding == "GSM-7" and not is_gsm7(character):
            return index
        used += unit_cost(character, encoding)
        if used > SINGLE_LIMIT[encoding]:
            return index
    return len(text)


class TooLong(Exception):
    """The site refuses SMS longer than one part, and this text is."""


def apply_long_policy(text: str, policy: str) -> str:
    """``text`` as it may be sent under ``policy`` (a ``LongSmsPolicy``); raises ``TooLong``."""
    result = segment(text)
    if result.segments <= 1 or policy == LongSmsPolicy.SPLIT:
        return text
    if policy == LongSmsPolicy.TRUNCATE:
        return truncate(text)
    forced = f"; {', '.join(map(repr, result.non_gsm_characters))} forced UCS-2" if result.non_gsm_characters else ""
    raise TooLong(f"{result.units} {result.encoding} units make {result.segments} parts{forced}.")
