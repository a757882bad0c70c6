"""Customers from a CSV file, many at a time, every bad row reported with all its problems.

``import_customers()`` reads a CSV text stream with a header line. Columns, all
optional except one identifier (external_id, email or phone):

* profile: ``external_id, email, phone, first_name, last_name, country, language,
  timezone, date_of_birth`` (YYYY-MM-DD);
* consent: ``email_consent, sms_consent`` (yes/no/true/false/1/0, empty for nothing),
  taken only with ``consent_source`` (a ``ConsentSource`` value) and ``consent_at``
  (ISO 8601 with offset). ``email_consent_source``/``email_consent_at`` and the
  ``sms_`` twins give one channel its own source and time; ``export_customers()``
  writes those, since the latest e-mail and SMS records rarely share them;
* ``attr_<name>``: ``Customer.attributes[name]``; integers and decimals become numbers,
  except ones with a leading zero (postcodes, codes), which stay text. A number no JSON
  column can hold (``1e400``, more than 4,300 digits) rejects its row.

A cell that starts with ``'`` followed by ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return loses that quote: exports write it to stop spreadsheets running the cell as a
formula (``spreadsheet_cells``), so the default, protected export imports back with its
quotes as they were. An export for another program adds no quote, so a stored ``'=x``
in it imports as ``=x``.

A row whose external_id exists updates that customer: its non-empty cells replace the
stored values, attributes are merged, empty cells change nothing. Rows are never
matched by e-mail: an e-mail another customer (or an earlier row) already has makes
the row a duplicate, rejected naming that customer or line, so an import never merges
two people on a guess.

Rows are checked one by one, with no database (``_check_row``), then saved in chunks
of ``CHUNK_SIZE`` in one transaction each: one query finds the chunk's existing
customers by external_id and e-mail, one ``bulk_create`` inserts the new ones, one
``bulk_update`` the changed ones, one ``bulk_create`` appends the consent records.
So a bad row never costs its neighbours, and 10,000 rows take seconds, not minutes.

Imports send no events: ``Customer.save()`` sends ``profile_updated`` for each save
that changes something and ``consent.grant()`` emits ``consent_changed``;
``bulk_update`` and ``bulk_create`` do neither. An import copies what another system
already knew, it is not the customer doing something now, so no activity should start
from it.
"""

import codecs
import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import pytz
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from . import phones, spreadsheet_cells, storable_json
from .models import LOCAL_ZONE_SOURCES, Channel, ConsentAction, ConsentRecord, ConsentSource, Customer

CHUNK_SIZE = 1_000
IDENTIFIER_COLUMNS = ("external_id", "email", "phone")
PROFILE_COLUMNS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "language",
    "timezone",
    "date_of_birth",
)
#: For each channel: the column of its answer, and its own source and time columns.
CHANNEL_CONSENT_COLUMNS = {
    channel: (f"{channel}_consent", f"{channel}_consent_source", f"{channel}_consent_at") for channel in Channel
}
SHARED_CONSENT_COLUMNS = ("consent_source", "consent_at")
ATTRIBUTE_PREFIX = "attr_"
KNOWN_COLUMNS = frozenset(
    PROFILE_COLUMNS
    + SHARED_CONSENT_COLUMNS
    + tuple(column for columns in CHANNEL_CONSENT_COLUMNS.values() for column in columns)
)

_ANSWERS = {
    "yes": ConsentAction.GRANTED,
    "true": ConsentAction.GRANTED,
    "1": ConsentAction.GRANTED,
    "no": ConsentAction.REVOKED,
    "false": ConsentAction.REVOKED,
    "0": ConsentAction.REVOKED,
}
_INTEGER = re.compile(r"^-?(0|[1-9]\d*)$")
_DECIMAL = re.compile(r"^-?(0|[1-9]\d*)(\.\d+([eE][+-]?\d+)?|[eE][+-]?\d+)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DELIMITERS = ",;\t"


class ImportFileError(Exception):
    """The file as a whole cannot be imported (empty, no header, not UTF-8); says what to do."""


@dataclass
class Rejection:
    line: int
    reasons: list[str]


@dataclass
class ImportReport:
    filename: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    consent_records: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_line: int = 0  # the last line read so far, for progress

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def summary(self) -> str:
        return (
            f"{self.rows:,} rows: {self.created:,} created, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {self.rejected:,} rejected; "
            f"{self.consent_records:,} consent records added."
        )

    def write_rejections_csv(self, stream):
        """Write one CSV row per rejected row: its line and its reasons, separated by '; '."""
        writer = csv.writer(stream)
        writer.writerow(["line", "reasons"])
        for rejection in self.rejections:
            writer.writerow([rejection.line, "; ".join(rejection.reasons)])


@dataclass
class _Row:
    """One data row of the file, checked: clean values, or the reasons it cannot be imported."""

    line: int
    profile: dict = field(default_factory=dict)  # Customer field -> clean value, non-empty cells only
    attributes: dict = field(default_factory=dict)
    consents: list = field(default_factory=list)  # (channel, action, source, recorded_at)
    errors: list[str] = field(default_factory=list)

    @property
    def email_key(self) -> str:
        return self.profile.get("email", "").lower()


def open_csv_upload(binary_file) -> io.TextIOWrapper:
    """``binary_file`` as text for ``import_customers()``, once all of it is known to be UTF-8.

    Checked before importing, so a stray byte on line 9,000 refuses the file instead
    of stopping an import half-way. A byte-order mark (Excel's "CSV UTF-8") is dropped.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    line = 1
    for block in iter(lambda: binary_file.read(64 * 1024), b""):
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            line += block[: exc.start].count(b"\n")
            raise ImportFileError(_not_utf8(line)) from None
        line += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportFileError(_not_utf8(line)) from None
    binary_file.seek(0)
    return io.TextIOWrapper(binary_file, encoding="utf-8-sig", newline="")


def _not_utf8(line: int) -> str:
    return (
        f"The file is not UTF-8 text (line {line} has bytes that are not): is it a CSV file? "
        "Save it as 'CSV UTF-8' and import it again."
    )


def import_customers(rows_or_file, *, progress=None, filename=None, chunk_size=CHUNK_SIZE) -> ImportReport:
    """Import the customers of a CSV text stream (or any iterable of its lines).

    ``progress(report)`` is called after each chunk. ``filename`` names the file in the
    consent records' evidence (default: the stream's ``name``). Raises
    ``ImportFileError`` if the file has no recognisable header; bad rows never raise,
    they are in the report's ``rejections``.
    """
    filename = filename or getattr(rows_or_file, "name", None) or "a CSV file"
    report = ImportReport(filename=str(filename))
    records = _read_csv(rows_or_file, report)
    claims = _Claims()
    while chunk := list(itertools.islice(records, chunk_size)):
        rows = [
            _check_row(record) if record.cells is not None else _Row(record.line, errors=record.errors)
            for record in chunk
        ]
        report.rows += len(rows)
        report.last_line = chunk[-1].last_line
        _import_chunk(rows, report, claims)
        if progress is not None:
            progress(report)
    report.rejections.sort(key=lambda rejection: rejection.line)
    return report


# Reading ---------------------------------------------------------------------------


@dataclass
class _Record:
    """One record of the file as read: its cells by column, or why it could not be read."""

    line: int
    last_line: int  # records with quoted line breaks run over several lines
    cells: dict[str, str] | None  # None when the record could not be read
    errors: list[str] = field(default_factory=list)


def _read_csv(rows_or_file, report):
    """The data records of the file, after reading its header."""
    lines = _decoded_lines(rows_or_file)
    try:
        header_line = next(lines)
    except StopIteration:
        raise ImportFileError(
            "The file is empty. Give a header line naming the columns (e.g. external_id,email,phone) "
            "and one customer per line."
        ) from None
    header_line = header_line.lstrip("\ufeff")
    # Excel writes ';' where the decimal separator is a comma, and TSV is common too.
    delimiter = max(_DELIMITERS, key=header_line.count)
    reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter)
    columns = _header_columns(next(reader), report)
    return _records(reader, columns)


def _decoded_lines(rows_or_file):
    line = 0
    source = iter(rows_or_file)
    while True:
        try:
            text = next(source)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise ImportFileError(_not_utf8(line + 1)) from None
        line += 1
        yield text


def _header_columns(header: list[str], report) -> list[str | None]:
    """Each cell of the header as a known column, ``attr_<name>``, or None (ignored)."""
    if any("\x00" in cell for cell in header):
        # An attribute's name is a key of a JSON column, and PostgreSQL cannot store U+0000.
        raise ImportFileError(
            "The header line contains the NUL character (\\u0000), which cannot be a column's name: "
            "is the file UTF-16? Save it as 'CSV UTF-8' and import it again."
        )
    columns, unknown, seen = [], [], set()
    for cell in header:
        name = cell.strip()
        lowered = name.lower()
        if lowered in KNOWN_COLUMNS:
            column = lowered
        elif lowered.startswith(ATTRIBUTE_PREFIX) and name[len(ATTRIBUTE_PREFIX) :].strip():
            column = ATTRIBUTE_PREFIX + name[len(ATTRIBUTE_PREFIX) :].strip()
        else:
            column = None
            unknown.append(name or "(a column without a name)")
        if column is not None and column in seen:
            raise ImportFileError(f"The column {column!r} appears twice in the header; keep one.")
        seen.add(column)
        columns.append(column)
    if not seen & set(IDENTIFIER_COLUMNS):
        shown = ",".join(header)[:200]
        raise ImportFileError(
            "The first line must be a header naming the columns, with at least one of external_id, email, "
            f"phone; it reads {shown!r}."
        )
    if unknown:
        report.warnings.append(
            f"Ignored unknown columns: {', '.join(unknown)}. Known columns are {', '.join(sorted(KNOWN_COLUMNS))}; "
            f"attributes go in {ATTRIBUTE_PREFIX}<name> columns."
        )
    return columns


def _records(reader, columns):
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _Record(line, reader.line_num, None, [f"Cannot be read as CSV: {exc}."])
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank lines separate nothing
        if len(cells) > len(columns):
            yield _Record(
                line,
                reader.line_num,
                None,
                [
                    f"Has {len(cells)} cells but the header names {len(columns)} columns: is there a delimiter "
                    "in a value that is not quoted?"
                ],
            )
            continue
        values = {
            column: spreadsheet_cells.unprotected(cell.strip())
            for column, cell in zip(columns, cells)
            if column and cell.strip()
        }
        yield _Record(line, reader.line_num, values)


# Checking one row ------------------------------------------------------------------


def _check_row(record: _Record) -> _Row:
    """Every problem of one row, or its clean values. No database: duplicates come later."""
    row = _Row(record.line)
    cells = record.cells
    assert cells is not None  # only records that could be read are checked
    errors = row.errors
    if not any(cells.get(column) for column in IDENTIFIER_COLUMNS):
        errors.append("Give an external_id, email or phone to identify the customer.")
    for column, value in cells.items():
        if "\x00" in value:
            # PostgreSQL cannot store U+0000 in text or JSON.
            errors.append(f"{column}: contains the NUL character, which cannot be stored.")
        elif not column.startswith(ATTRIBUTE_PREFIX) and ("\n" in value or "\r" in value):
            errors.append(
                f"{column}: contains a line break (the row runs to line {record.last_line}: is a quote left open?)."
            )
    profile = row.profile
    for name in ("external_id", "first_name", "last_name", "language", "timezone"):
        if name in cells:
            profile[name] = cells[name]
    _check_email(cells, row)
    _check_country_and_phone(cells, row)
    _check_date_of_birth(cells, row)
    _check_lengths(row)
    _check_language_and_timezone(row)
    _check_consent(cells, row)
    for column, text in cells.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            value = _attribute_value(text)
            if isinstance(value, storable_json.UnstorableNumber):
                errors.append(f"{column}: {value.reason}.")
            else:
                row.attributes[column[len(ATTRIBUTE_PREFIX) :]] = value
    return row


def _check_email(cells, row):
    if "email" not in cells:
        return
    email = cells["email"]
    try:
        validate_email(email)
    except ValidationError:
        row.errors.append(f"email: '{email}' is not an e-mail address.")
    else:
        row.profile["email"] = email


def _check_country_and_phone(cells, row):
    country = cells.get("country", "").upper() or None
    if country is not None:
        if country in pytz.country_names:
            row.profile["country"] = country
        else:
            row.errors.append(
                f"country: '{cells['country']}' is not a country code (ISO 3166-1 alpha-2, e.g. US or IT)."
            )
            country = None
    if "phone" in cells:
        try:
            row.profile["phone"] = phones.normalize(cells["phone"], country)
        except ValidationError as exc:
            row.errors.extend(f"phone: {message}" for message in exc.messages)


def _check_date_of_birth(cells, row):
    if "date_of_birth" not in cells:
        return
    text = cells["date_of_birth"]
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        born = date.fromisoformat(text)
    except ValueError:
        row.errors.append(f"date_of_birth: '{text}' is not a date written YYYY-MM-DD, e.g. 1990-04-25.")
        return
    if born > timezone.localdate():
        row.errors.append(f"date_of_birth: '{text}' is in the future.")
    else:
        row.profile["date_of_birth"] = born


def _check_lengths(row):
    for name, value in row.profile.items():
        limit = Customer._meta.get_field(name).max_length
        if limit is not None and len(value) > limit:
            row.errors.append(f"{name}: {len(value)} characters, at most {limit} fit.")


def _check_language_and_timezone(row):
    # The model's own rules for language tags and IANA zones, on a customer with only those.
    wanted = {name: row.profile[name] for name in ("language", "timezone") if name in row.profile}
    if not wanted:
        return
    try:
        Customer(**wanted).clean()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            row.errors.extend(f"{name}: {message}" for message in messages)


def _check_consent(cells, row):
    sources = {
        column: _consent_source(column, cells[column], row)
        for column in ("consent_source", "email_consent_source", "sms_consent_source")
        if column in cells
    }
    times = {
        column: _consent_time(column, cells[column], row)
        for column in ("consent_at", "email_consent_at", "sms_consent_at")
        if column in cells
    }
    for channel, (answer_column, source_column, at_column) in CHANNEL_CONSENT_COLUMNS.items():
        if answer_column not in cells:
            continue
        answer = cells[answer_column]
        action = _ANSWERS.get(answer.lower())
        if action is None:
            row.errors.append(f"{answer_column}: '{answer}' is not yes, no, true, false, 1 or 0 (or empty).")
        # The channel's own column wins over the shared one.
        source_column = source_column if source_column in sources else "consent_source"
        at_column = at_column if at_column in times else "consent_at"
        missing = [
            generic
            for generic, column in (("consent_source", source_column), ("consent_at", at_column))
            if column not in cells
        ]
        if missing:
            row.errors.append(
                f"{answer_column}: given without {' and '.join(missing)}. Consent without its source and time "
                "is not consent: add them, or leave the column empty to record nothing."
            )
        elif action is not None and sources[source_column] and times[at_column]:
            row.consents.append((channel, action, sources[source_column], times[at_column]))


def _consent_source(column, text, row) -> str:
    """The ConsentSource value of ``text``, or "" after noting the problem."""
    value = text.lower()
    if value in ConsentSource.values:
        return value
    row.errors.append(f"{column}: '{text}' is not a consent source; use one of {', '.join(ConsentSource.values)}.")
    return ""


def _consent_time(column, text, row):
    """The aware datetime of ``text``, or "" after noting the problem."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        row.errors.append(
            f"{column}: '{text}' is not an ISO 8601 date and time with its offset, e.g. 2026-05-01T12:00:00+02:00."
        )
        return ""
    if moment > timezone.now():
        # A future record would outrank a revocation made before that moment.
        row.errors.append(f"{column}: '{text}' is in the future.")
        return ""
    return moment


def _attribute_value(text: str):
    """A number, or an ``UnstorableNumber`` (1e400, 5,000 digits), if ``text`` writes one; else ``text``."""
    if _INTEGER.match(text):
        return storable_json.integer_from(text)
    if _DECIMAL.match(text):
        return storable_json.float_from(text)
    return text


# Saving a chunk ----------------------------------------------------------------------


@dataclass
class _Claims:
    """The lines of the file that took each external_id and e-mail, across chunks."""

    external_ids: dict = field(default_factory=dict)
    emails: dict = field(default_factory=dict)


@dataclass
class _Plan:
    row: _Row
    customer: Customer
    is_new: bool
    changed_fields: set


def _import_chunk(rows: list[_Row], report: ImportReport, claims: _Claims):
    by_external_id, by_email = _existing_customers(rows)
    plans = []
    for row in rows:
        customer = by_external_id.get(row.profile.get("external_id"))
        # Keeping one's own e-mail claims nothing, even if a legacy twin shares it.
        claims_email = bool(row.email_key) and (customer is None or customer.email.lower() != row.email_key)
        _check_duplicates(row, customer, claims_email, by_email, claims)
        if row.errors:
            report.rejections.append(Rejection(row.line, row.errors))
        else:
            plans.append(_plan(row, customer, claims))
    try:
        with transaction.atomic():
            _save(plans, report)
    except IntegrityError:
        # Someone else created one of these external_ids during the import: one by one,
        # so only that row is refused.
        for plan in plans:
            _reset_for_retry(plan)
            try:
                with transaction.atomic():
                    _save([plan], report)
            except IntegrityError as exc:
                _reset_for_retry(plan)
                external_id = plan.row.profile.get("external_id")
                reason = (
                    f"external_id: '{external_id}' was created by someone else during the import; import this "
                    "row again to update that customer."
                    if external_id
                    else f"Could not be saved: {exc}."
                )
                report.rejections.append(Rejection(plan.row.line, [reason]))
                claims.external_ids.pop(external_id, None)
                claims.emails.pop(plan.row.email_key, None)


def _existing_customers(rows):
    """The chunk's existing customers by external_id and by lower(e-mail), from one query."""
    external_ids = {row.profile["external_id"] for row in rows if "external_id" in row.profile}
    emails = {row.email_key for row in rows if row.email_key}
    found = (
        Customer.objects.annotate(email_lower=Lower("email"))
        .filter(Q(external_id__in=external_ids) | Q(email_lower__in=emails))
        .order_by("pk")
    )
    by_external_id, by_email = {}, {}
    for customer in found:
        if customer.external_id:
            by_external_id[customer.external_id] = customer
        if customer.email:
            by_email.setdefault(customer.email_lower, []).append(customer)
    return by_external_id, by_email


def _check_duplicates(row, customer, claims_email, by_email, claims):
    """Note in ``row.errors`` an external_id or e-mail an earlier row or another customer has."""
    external_id = row.profile.get("external_id")
    if external_id in claims.external_ids:
        row.errors.append(f"external_id: '{external_id}' is also on line {claims.external_ids[external_id]}.")
    email = row.email_key
    if email in claims.emails:
        row.errors.append(f"email: '{row.profile['email']}' is also on line {claims.emails[email]}.")
    elif claims_email:
        # The e-mails as this chunk left them: an earlier row may have changed one.
        holders = [other for other in by_email.get(email, []) if other is not customer and other.email.lower() == email]
        if holders:
            known_as = f" (external_id '{holders[0].external_id}')" if holders[0].external_id else ""
            row.errors.append(
                f"email: '{row.profile['email']}' is already the e-mail of customer #{holders[0].pk}{known_as}."
            )


def _plan(row, customer, claims) -> _Plan:
    """What saving the valid ``row`` does: a new customer, or ``customer`` changed in memory."""
    if "external_id" in row.profile:
        claims.external_ids[row.profile["external_id"]] = row.line
    if row.email_key:
        claims.emails[row.email_key] = row.line
    if customer is None:
        customer = Customer(**row.profile, attributes=row.attributes)
        return _Plan(row, customer, is_new=True, changed_fields=set())
    for name, value in row.profile.items():
        setattr(customer, name, value)
    if row.attributes:
        customer.attributes = {**(customer.attributes or {}), **row.attributes}
    changed = {name.split(".")[0] for name in customer.changes()}
    return _Plan(row, customer, is_new=False, changed_fields=changed)


def _save(plans, report):
    new = [plan.customer for plan in plans if plan.is_new]
    changed = [plan for plan in plans if not plan.is_new and plan.changed_fields]
    for plan in plans:
        if plan.is_new or plan.changed_fields & set(LOCAL_ZONE_SOURCES):
            plan.customer.refresh_local_zone()  # bulk_create and bulk_update skip save()
    if new:
        if connection.features.can_return_rows_from_bulk_insert:
            Customer.objects.bulk_create(new)
        else:  # the consent records need the new customers' ids
            for customer in new:
                customer.save()
    if changed:
        now = timezone.now()
        for plan in changed:
            plan.customer.updated_at = now
        fields = set().union(*(plan.changed_fields for plan in changed)) | {"updated_at"}
        if fields & set(LOCAL_ZONE_SOURCES):
            fields.add("local_zone")
        Customer.objects.bulk_update([plan.customer for plan in changed], sorted(fields))
    records = _new_consent_records(plans, report.filename)
    ConsentRecord.objects.bulk_create(records)
    report.created += len(new)
    report.updated += len(changed)
    report.unchanged += sum(1 for plan in plans if not plan.is_new and not plan.changed_fields)
    report.consent_records += len(records)


def _new_consent_records(plans, filename) -> list[ConsentRecord]:
    """The chunk's consent records, less those already in the ledger (the file imported again)."""
    wanted = [(plan, consent) for plan in plans for consent in plan.row.consents]
    existing_customers = {plan.customer.pk for plan, _ in wanted if not plan.is_new}
    recorded = set()
    if existing_customers:
        recorded = set(
            ConsentRecord.objects.filter(
                customer_id__in=existing_customers,
                recorded_at__in={consent[3] for _, consent in wanted},
            ).values_list("customer_id", "channel", "action", "recorded_at")
        )
    records = []
    for plan, (channel, action, source, recorded_at) in wanted:
        if (plan.customer.pk, channel, action, recorded_at) in recorded:
            continue
        records.append(
            ConsentRecord(
                customer=plan.customer,
                channel=channel,
                action=action,
                source=source,
                recorded_at=recorded_at,
                evidence=f"imported from {filename}, line {plan.row.line}",
            )
        )
    return records


def _reset_for_retry(plan):
    # A rolled-back bulk_create leaves the ids it returned on the objects.
    if plan.is_new:
        plan.customer.pk = None
        plan.customer._state.adding = True
