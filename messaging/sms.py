"""SMS length: which encoding a text needs, how many units it takes, and its parts.

GSM 03.38 (GSM-7): 160 septets in one SMS, 153 per part of a long one (the rest is
the concatenation header). Characters of the extension table take two septets (an
escape and the character), and an escape pair is never split across parts.
UCS-2, as soon as one character is outside GSM-7: 70 UTF-16 code units in one SMS,
67 per part; characters outside the Basic Multilingual Plane (most emoji) take two
code units.

A part never ends inside a grapheme cluster, what a reader sees as one character: a
flag 🇮🇹, a family 👨‍👩‍👧 (emoji joined by zero-width joiners), a skin tone 👍🏽, a keycap
1️⃣, a letter and its accents. Twilio keeps a cluster whole and bills the parts that
result, so counting must too. Clusters are found by the ``regex`` module's ``\\X``
(Unicode's own rules, UAX #29, kept current by that module), and the counts are
tested against Twilio's open-source segment calculator
(tests/messaging/segment_vectors.json).
"""

from dataclasses import dataclass
from itertools import takewhile

import regex
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

# An extended grapheme cluster (UAX #29), with the regex module's current Unicode tables.
_GRAPHEME_CLUSTER = regex.compile(r"\X")


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


def units_of(text: str, encoding: str) -> int:
    return sum(unit_cost(character, encoding) for character in text)


def segment(text: str) -> Segments:
    """How ``text`` travels as SMS: encoding, units and the text of each part."""
    non_gsm = tuple(dict.fromkeys(c for c in text if not is_gsm7(c)))
    encoding = "UCS-2" if non_gsm else "GSM-7"
    units = units_of(text, encoding)
    if units <= SINGLE_LIMIT[encoding]:
        parts = (text,) if text else ()
    else:
        parts = tuple(_split(text, encoding, PART_LIMIT[encoding]))
    return Segments(encoding, units, parts, non_gsm)


def _split(text, encoding, limit):
    # A cluster that does not fit in what is left of a part opens the next one.
    part, used = [], 0
    for piece in _unbreakable_pieces(text, encoding, limit):
        cost = units_of(piece, encoding)
        if used + cost > limit:
            yield "".join(part)
            part, used = [], 0
        part.append(piece)
        used += cost
    yield "".join(part)


def _unbreakable_pieces(text, encoding, limit):
    """``text`` in the pieces no part may cut: grapheme clusters, with two exceptions."""
    for cluster in _GRAPHEME_CLUSTER.findall(text):
        # CR LF is one cluster to Unicode but two GSM characters, and Twilio's calculator
        # lets a part end between them. A cluster longer than a whole part (a letter under
        # dozens of accents) cannot stay whole; it is cut between characters, as before.
        # Characters are whole units of cost (an escape pair, a surrogate pair).
        if cluster == "\r\n" or units_of(cluster, encoding) > limit:
            yield from cluster
        else:
            yield cluster


def truncate(text: str) -> str:
    """The longest beginning of ``text`` that fits in one SMS, cut between grapheme clusters.

    The beginning may fit as GSM-7 (up to 160 septets, before the first cluster with a
    non-GSM character) or as UCS-2 (up to 70 code units); whichever keeps more of the
    text wins.
    """
    clusters = _GRAPHEME_CLUSTER.findall(text)
    gsm7_beginning = "".join(takewhile(lambda cluster: all(map(is_gsm7, cluster)), clusters))
    return max(_fitting_prefix(gsm7_beginning, "GSM-7"), _fitting_prefix(text, "UCS-2"), key=len)


def _fitting_prefix(text, encoding) -> str:
    limit = SINGLE_LIMIT[encoding]
    prefix, used = [], 0
    for piece in _unbreakable_pieces(text, encoding, limit):
        used += units_of(piece, encoding)
        if used > limit:
            break
        prefix.append(piece)
    return "".join(prefix)


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
