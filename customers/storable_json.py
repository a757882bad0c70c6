"""What a JSON column can store, checked before it is stored, so a bad value is named, not a 500.

Python's ``json`` reads and writes values that PostgreSQL's jsonb and SQLite's JSON
refuse, or that Python itself cannot write back:

* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON numbers;
* a number past the range of a float (``1e400`` reads as infinity), or an integer of
  more digits than Python converts to text (``sys.get_int_max_str_digits()``, 4,300 by
  default, so it could be stored but never read back);
* the NUL character, which PostgreSQL text cannot hold;
* a lone UTF-16 surrogate (``"\\ud800"`` in JSON), half of a pair, which is not a
  character and has no UTF-8 form, in a value or in a key;
* objects and arrays nested more than ``MAX_DEPTH`` levels deep: json.loads reads some
  900 levels, and writing them back, a few frames further down, runs out of stack.

``integer_from()`` and ``float_from()`` read a number as JSON or CSV writes it and keep
one that cannot be stored as an ``UnstorableNumber``, so that the parser goes on and
``problems_in()`` names its path instead of one bad number failing a whole document.
"""

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 100
_NOT_NUMBERS = ("NaN", "Infinity", "-Infinity")
# Shown escaped in a path or a message: control characters and lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# At most 603 digits: under the lowest limit sys.set_int_max_str_digits() takes (640).
_SAFE_INTEGER_BITS = 2_000


@dataclass(frozen=True)
class UnstorableNumber:
    """A number as it was written (``NaN``, ``1e400``, 5,000 digits) that no JSON column holds."""

    reason: str  # e.g. "1e400 is beyond the largest number that can be stored (about 1.8e308)"
    advice: str  # what a sender of JSON can do instead

    @classmethod
    def written_as(cls, text: str) -> "UnstorableNumber":
        """``NaN``, ``Infinity``, ``-Infinity``, or a number past the range of a float (``1e400``)."""
        if text in _NOT_NUMBERS:
            return cls(f"{text} is not a JSON number", "send a finite number or a string")
        shown = text if len(text) <= 40 else f"{text[:20]}…{text[-10:]}"
        return cls(f"{shown} is beyond the largest number that can be stored (about 1.8e308)", "send it as a string")

    @classmethod
    def too_long(cls) -> "UnstorableNumber":
        limit = sys.get_int_max_str_digits()
        return cls(f"a number of more than {limit:,} digits cannot be stored", "send it as a string")


def integer_from(text: str):
    """The int ``text`` (digits, as JSON or CSV writes them) writes, or an ``UnstorableNumber``."""
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return UnstorableNumber.too_long()


def float_from(text: str):
    """The float ``text`` (1.5, 2e-3, as JSON or CSV writes them) writes, or an ``UnstorableNumber``."""
    value = float(text)
    return value if math.isfinite(value) else UnstorableNumber.written_as(text)


#: ``json.loads(text, **JSON_NUMBER_HOOKS)`` reads numbers as it always does, except
#: those no JSON column holds, kept as ``UnstorableNumber`` for ``problems_in()`` to name.
JSON_NUMBER_HOOKS = {
    "parse_int": integer_from,
    "parse_float": float_from,
    "parse_constant": UnstorableNumber.written_as,
}


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. properties.items[0].price
    message: str


def problems_in(value) -> list[Problem]:
    """Every part of ``value`` (as ``json.loads`` or Python code made it) that cannot be stored."""
    return _walk(value, copy=False)[0]


def messages_about(value) -> list[str]:
    """``problems_in(value)`` as one line each, path first, for a ``ValidationError``."""
    return [f"{problem.path}: {problem.message}" for problem in problems_in(value)]


def with_stand_ins(value):
    """A copy of ``value`` with a harmless stand-in for each part that cannot be stored.

    A bad character is written as its \\u escape (so a bad key becomes its name in a
    problem's path), a bad number as 0, a part nested too deep as None: checking the
    copy finds every other problem of the document, and what it says about those
    parts can be told apart by path.
    """
    return _walk(value, copy=True)[1]


# A path kept as (parent's path, key or (index,)), None at the root.
_Path = tuple["_Path", Any] | None
# Where a value's copy goes: its parent's copy (None when not copying), at a key or an index.
_Copy = dict[Any, object] | list[object] | None
# A value still to check: (value, its path, its depth, its parent's copy, its key or index there).
_Pending = tuple[object, _Path, int, _Copy, Any]


def _walk(value, *, copy: bool) -> tuple[list[Problem], object]:
    # Iterative, so that a deep document cannot hit the recursion limit here. A path is
    # kept as (parent's path, key) and spelt out only for a problem: most values have none.
    problems = []
    root: list[object] = [None]
    stack: list[_Pending] = [(value, None, 0, root, 0)]
    while stack:
        item, path, depth, parent, slot = stack.pop()
        if isinstance(item, (dict, list, tuple)) and depth >= MAX_DEPTH:
            problems.append(Problem(_spelt(path), f"Nested more than {MAX_DEPTH} levels deep; flatten it."))
            item = None
        elif isinstance(item, dict):
            inner_copy: _Copy = {} if copy else None
            children: list[_Pending] = []
            for key, inner in item.items():
                inner_path = (path, key)
                problem = _text_problem(key) if isinstance(key, str) else ""
                if problem:
                    problems.append(Problem(_spelt(inner_path), f"The name of this field contains {problem}"))
                    key = _shown(key)
                children.append((inner, inner_path, depth + 1, inner_copy, key))
            stack.extend(reversed(children))
            item = inner_copy
        elif isinstance(item, (list, tuple)):
            inner_copy = [None] * len(item) if copy else None
            stack.extend(
                (item[index], (path, (index,)), depth + 1, inner_copy, index) for index in range(len(item) - 1, -1, -1)
            )
            item = inner_copy
        else:
            message = _scalar_problem(item)
            if message:
                problems.append(Problem(_spelt(path), message))
                item = _shown(item) if isinstance(item, str) else 0
        if copy:
            assert parent is not None  # every value's parent has a copy when copying
            parent[slot] = item
    return problems, root[0]


def _spelt(path: _Path) -> str:
    """A path kept as nested (parent, key or (index,)) pairs, written e.g. properties.items[0].price."""
    parts = []
    while path is not None:
        path, key = path
        parts.append(f"[{key[0]}]" if isinstance(key, tuple) else f".{_shown(key)}")
    return "".join(reversed(parts)).removeprefix(".")


def _scalar_problem(item) -> str:
    if isinstance(item, str):
        problem = _text_problem(item)
        return f"Contains {problem}" if problem else ""
    if isinstance(item, float) and not math.isfinite(item):
        item = UnstorableNumber.written_as("NaN" if math.isnan(item) else "Infinity" if item > 0 else "-Infinity")
    elif isinstance(item, int) and item.bit_length() > _SAFE_INTEGER_BITS:
        try:
            str(item)
        except ValueError:
            item = UnstorableNumber.too_long()
    if isinstance(item, UnstorableNumber):
        return f"{item.reason[0].upper()}{item.reason[1:]}; {item.advice}."
    return ""


def _text_problem(text: str) -> str:
    """What follows "contains" in the message about ``text``, or "" if it can be stored."""
    if "\x00" in text:
        return "the NUL character (\\u0000), which cannot be stored."
    surrogate = None if text.isascii() else _SURROGATE.search(text)
    if surrogate:
        return (
            f"{_shown(surrogate.group())}, half of a UTF-16 surrogate pair without its other half: "
            "it is not a character and cannot be stored."
        )
    return ""


def _shown(text) -> str:
    """``text`` as a path shows it: a character that cannot be printed as its \\u escape."""
    return _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", str(text))
