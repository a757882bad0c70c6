"""Customers to a CSV file, in the columns ``importing.import_customers()`` reads back.

Consent is the latest ledger record of each channel (what ``Customer.has_consent``
decides on), with that record's own source and time: ``email_consent``,
``email_consent_source``, ``email_consent_at`` and the ``sms_`` twins. The shared
``consent_source``/``consent_at`` the importer also takes would have to give the two
channels one source and time, which the ledger rarely has.

A cell a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) is written with a leading ``'`` unless
``protect_formulas=False``; the importer takes it away again (``spreadsheet_cells``).

Two queries whatever the number of customers: one for the attribute names (the
header needs them first), one streaming the rows with each channel's latest record
as correlated subqueries (served by the ``consent_latest`` index).
"""

import csv
import json

from django.db.models import OuterRef, Subquery

from . import spreadsheet_cells
from .importing import ATTRIBUTE_PREFIX, CHANNEL_CONSENT_COLUMNS, PROFILE_COLUMNS
from .models import ConsentAction, ConsentRecord

_ANSWERS = {ConsentAction.GRANTED: "yes", ConsentAction.REVOKED: "no"}


def export_customers(queryset, stream, *, protect_formulas: bool = True) -> int:
    """Write the customers of ``queryset`` to the text ``stream`` as CSV; return how many.

    ``protect_formulas=False`` writes every cell as stored, for a program that is not a
    spreadsheet and would keep the protective quote as part of the value.
    """
    attribute_names = sorted(
        {
            name
            for attributes in queryset.order_by().values_list("attributes", flat=True).iterator()
            if isinstance(attributes, dict)
            for name in attributes
        }
    )
    consent_columns = [column for columns in CHANNEL_CONSENT_COLUMNS.values() for column in columns]
    writer = csv.writer(stream)
    writer.writerow([*PROFILE_COLUMNS, *consent_columns, *(ATTRIBUTE_PREFIX + name for name in attribute_names)])
    rows = (
        queryset.annotate(**_latest_consent()).order_by("pk").values(*PROFILE_COLUMNS, "attributes", *consent_columns)
    )
    count = 0
    for row in rows.iterator(chunk_size=2_000):
        attributes = row["attributes"] if isinstance(row["attributes"], dict) else {}
        cells = [
            *(_cell(row[column]) for column in PROFILE_COLUMNS),
            *(_consent_cell(column, row[column]) for column in consent_columns),
            *(_cell(attributes.get(name)) for name in attribute_names),
        ]
        writer.writerow([spreadsheet_cells.protected(cell) for cell in cells] if protect_formulas else cells)
        count += 1
    return count


def _latest_consent() -> dict:
    """Annotations: each channel's latest answer, source and time, as column names."""
    annotations = {}
    for channel, (answer_column, source_column, at_column) in CHANNEL_CONSENT_COLUMNS.items():
        latest = ConsentRecord.objects.filter(customer=OuterRef("pk"), channel=channel).order_by("-recorded_at", "-pk")
        annotations[answer_column] = Subquery(latest.values("action")[:1])
        annotations[source_column] = Subquery(latest.values("source")[:1])
        annotations[at_column] = Subquery(latest.values("recorded_at")[:1])
    return annotations


def _consent_cell(column, value) -> str:
    if column.endswith("_consent"):
        return _ANSWERS.get(value, "")
    return _cell(value)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value)
