import csv
import io
import time
from datetime import UTC, date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from customers import importing
from customers.importing import ImportFileError, import_customers, open_csv_upload
from customers.models import Channel, ConsentAction, ConsentRecord, ConsentSource, Customer, Event
from tests import factories

pytestmark = pytest.mark.django_db

CONSENT_AT = "2026-01-15T10:00:00+01:00"


def csv_text(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n")


def reasons_by_line(report) -> dict:
    return {rejection.line: rejection.reasons for rejection in report.rejections}


# Valid rows ---------------------------------------------------------------------------


def test_valid_rows_are_imported_with_their_profile():
    report = import_customers(
        csv_text(
            "external_id,email,phone,first_name,last_name,country,language,timezone,date_of_birth",
            "A1,ann@example.com,(212) 555-0100,Ann,Lee,us,en-US,America/New_York,1990-04-25",
            "A2,bob@example.com,+39 333 123 4567,Bob,,IT,it,,",
        )
    )

    assert (report.created, report.updated, report.rejected) == (2, 0, 0)
    ann = Customer.objects.get(external_id="A1")
    assert (ann.email, ann.phone, ann.first_name, ann.last_name, ann.country, ann.language, ann.timezone) == (
        "ann@example.com",
        "+12125550100",
        "Ann",
        "Lee",
        "US",
        "en-US",
        "America/New_York",
    )
    assert ann.date_of_birth == date(1990, 4, 25)
    assert Customer.objects.get(external_id="A2").phone == "+393331234567"


def test_a_row_identified_only_by_phone_is_imported():
    report = import_customers(csv_text("phone,country", "212 555 0100,US"))

    assert report.created == 1
    assert Customer.objects.get().phone == "+12125550100"


def test_semicolon_separated_files_are_read():
    report = import_customers(csv_text("email;first_name", "ann@example.com;Ann"))

    assert report.created == 1
    assert Customer.objects.get().first_name == "Ann"


def test_attributes_are_parsed_numbers_become_numbers_and_leading_zeros_stay_text():
    import_customers(
        csv_text(
            "email,attr_tier,attr_orders,attr_spent,attr_zip,attr_code",
            "ann@example.com,gold,12,59.90,02134,-7",
        )
    )

    assert Customer.objects.get().attributes == {
        "tier": "gold",
        "orders": 12,
        "spent": 59.9,
        "zip": "02134",
        "code": -7,
    }


def test_existing_external_id_updates_that_customer_and_empty_cells_change_nothing():
    customer = factories.customer(
        external_id="A1",
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        attributes={"tier": "gold"},
    )

    report = import_customers(
        csv_text(
            "external_id,email,first_name,last_name,attr_orders",
            "A1,ann.lee@example.com,Annie,,3",
        )
    )

    assert (report.created, report.updated) == (0, 1)
    customer.refresh_from_db()
    assert (customer.email, customer.first_name, customer.last_name) == ("ann.lee@example.com", "Annie", "Lee")
    assert customer.attributes == {"tier": "gold", "orders": 3}


def test_a_row_that_changes_nothing_counts_as_unchanged():
    factories.customer(external_id="A1", email="ann@example.com", first_name="Ann")

    report = import_customers(csv_text("external_id,email,first_name", "A1,ann@example.com,Ann"))

    assert (report.updated, report.unchanged) == (0, 1)


def test_imports_send_no_profile_updated_events():
    factories.customer(external_id="A1", first_name="Ann")

    import_customers(csv_text("external_id,first_name", "A1,Annie"))

    assert not Event.objects.filter(name="profile_updated").exists()


# Rejected rows ----------------------------------------------------------------------


def test_malformed_phone_numbers_are_rejected_with_line_and_reason_and_neighbours_are_imported():
    report = import_customers(
        csv_text(
            "email,phone,country",
            "ann@example.com,212 555 0100,US",
            "bob@example.com,12,US",
            "cid@example.com,+39 333 123 4567,IT",
        )
    )

    assert reasons_by_line(report) == {3: ["phone: '12' is too short for a US number."]}
    assert sorted(Customer.objects.values_list("email", flat=True)) == ["ann@example.com", "cid@example.com"]


def test_unknown_country_is_rejected_with_line_and_reason_and_neighbours_are_imported():
    report = import_customers(
        csv_text(
            "email,country",
            "ann@example.com,US",
            "bob@example.com,XX",
            "cid@example.com,IT",
        )
    )

    assert reasons_by_line(report) == {
        3: ["country: 'XX' is not a country code (ISO 3166-1 alpha-2, e.g. US or IT)."],
    }
    assert Customer.objects.count() == 2


def test_every_problem_of_a_row_is_reported_not_just_the_first():
    report = import_customers(
        csv_text(
            "email,country,date_of_birth,language,timezone",
            "not-an-address,XX,25/04/1990,english!,Mars/Olympus",
        )
    )

    assert reasons_by_line(report)[2] == [
        "email: 'not-an-address' is not an e-mail address.",
        "country: 'XX' is not a country code (ISO 3166-1 alpha-2, e.g. US or IT).",
        "date_of_birth: '25/04/1990' is not a date written YYYY-MM-DD, e.g. 1990-04-25.",
        "language: 'english!' is not a language tag such as it or pt-BR.",
        "timezone: 'Mars/Olympus' is not an IANA time zone such as Europe/Rome.",
    ]


def test_a_row_without_external_id_email_or_phone_is_rejected():
    report = import_customers(csv_text("external_id,email,first_name", ",,Ann"))

    assert reasons_by_line(report) == {2: ["Give an external_id, email or phone to identify the customer."]}


def test_duplicate_email_within_the_file_is_rejected_naming_the_earlier_line():
    report = import_customers(
        csv_text(
            "email,first_name",
            "ann@example.com,Ann",
            "bob@example.com,Bob",
            "ANN@example.com,Annie",
        )
    )

    assert reasons_by_line(report) == {4: ["email: 'ANN@example.com' is also on line 2."]}
    assert Customer.objects.count() == 2


def test_duplicate_email_of_an_existing_customer_is_rejected_naming_that_customer():
    existing = factories.customer(external_id="S-9", email="ann@example.com")

    report = import_customers(
        csv_text(
            "external_id,email",
            "N-1,Ann@Example.com",
            "N-2,bob@example.com",
        )
    )

    assert reasons_by_line(report) == {
        2: [f"email: 'Ann@Example.com' is already the e-mail of customer #{existing.pk} (external_id 'S-9')."],
    }
    assert Customer.objects.filter(external_id="N-2").exists()


def test_duplicate_external_id_within_the_file_is_rejected_naming_the_earlier_line():
    report = import_customers(csv_text("external_id,first_name", "A1,Ann", "A1,Annie"))

    assert reasons_by_line(report) == {3: ["external_id: 'A1' is also on line 2."]}


def test_duplicates_are_found_across_chunks():
    report = import_customers(
        csv_text("email", "ann@example.com", "bob@example.com", "cid@example.com", "ann@example.com"),
        chunk_size=2,
    )

    assert reasons_by_line(report) == {5: ["email: 'ann@example.com' is also on line 2."]}
    assert report.created == 3


def test_a_row_with_more_cells_than_the_header_is_rejected():
    report = import_customers(csv_text("email,first_name", "ann@example.com,Ann,Lee", "bob@example.com,Bob"))

    assert list(reasons_by_line(report)) == [2]
    assert "Has 3 cells but the header names 2 columns" in reasons_by_line(report)[2][0]
    assert report.created == 1


def test_a_quote_left_open_is_reported_on_the_row_where_it_opens():
    report = import_customers(csv_text("email,first_name", 'ann@example.com,"Ann', "bob@example.com,Bob"))

    assert reasons_by_line(report) == {
        2: ["first_name: contains a line break (the row runs to line 3: is a quote left open?)."],
    }


def test_an_external_id_created_meanwhile_rejects_only_that_row(monkeypatch):
    factories.customer(external_id="A1")
    # As if another process created A1 after this chunk looked for existing customers.
    monkeypatch.setattr(importing, "_existing_customers", lambda rows: ({}, {}))

    report = import_customers(csv_text("external_id,first_name", "A1,Ann", "A2,Bob"))

    assert reasons_by_line(report) == {
        2: [
            "external_id: 'A1' was created by someone else during the import; import this row again to update "
            "that customer.",
        ]
    }
    assert Customer.objects.filter(external_id="A2").exists()


def test_rejections_are_written_as_csv_with_line_and_reasons():
    report = import_customers(csv_text("email,country", "bad,XX", "ann@example.com,US"))
    out = io.StringIO()

    report.write_rejections_csv(out)

    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["line", "reasons"],
        [
            "2",
            "email: 'bad' is not an e-mail address.; country: 'XX' is not a country code (ISO 3166-1 alpha-2, "
            "e.g. US or IT).",
        ],
    ]


def test_unknown_columns_are_reported_once_as_a_warning_and_rows_still_import():
    report = import_customers(csv_text("email,shoe_size", "ann@example.com,38", "bob@example.com,44"))

    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("Ignored unknown columns: shoe_size.")
    assert report.created == 2


def test_a_file_without_an_identifier_column_in_its_header_is_refused():
    with pytest.raises(ImportFileError, match="header naming the columns"):
        import_customers(csv_text("ann@example.com,Ann", "bob@example.com,Bob"))


def test_an_empty_file_is_refused():
    with pytest.raises(ImportFileError, match="The file is empty"):
        import_customers(io.StringIO(""))


def test_a_file_that_is_not_utf8_is_refused_naming_the_line():
    latin1 = "email,first_name\nann@example.com,Ann\nbob@example.com,Jos\u00e9\n".encode("latin-1")

    with pytest.raises(ImportFileError, match="line 3"):
        open_csv_upload(io.BytesIO(latin1))


def test_progress_is_reported_after_each_chunk():
    lines_seen = []

    import_customers(
        csv_text("email", *(f"c{i}@example.com" for i in range(5))),
        chunk_size=2,
        progress=lambda report: lines_seen.append(report.last_line),
    )

    assert lines_seen == [3, 5, 6]


# Consent ------------------------------------------------------------------------------


def test_consent_without_source_and_timestamp_is_rejected():
    report = import_customers(csv_text("email,email_consent", "ann@example.com,yes"))

    assert reasons_by_line(report) == {
        2: [
            "email_consent: given without consent_source and consent_at. Consent without its source and time is "
            "not consent: add them, or leave the column empty to record nothing.",
        ]
    }
    assert not Customer.objects.exists()


def test_consent_with_a_naive_or_future_timestamp_is_rejected():
    report = import_customers(
        csv_text(
            "email,email_consent,consent_source,consent_at",
            "ann@example.com,yes,form,2026-01-15 10:00",
            "bob@example.com,yes,form,2999-01-01T00:00:00+00:00",
        )
    )

    assert reasons_by_line(report) == {
        2: [
            "consent_at: '2026-01-15 10:00' is not an ISO 8601 date and time with its offset, e.g. "
            "2026-05-01T12:00:00+02:00."
        ],
        3: ["consent_at: '2999-01-01T00:00:00+00:00' is in the future."],
    }


def test_consent_with_an_unknown_source_is_rejected():
    report = import_customers(
        csv_text(
            "email,sms_consent,consent_source,consent_at",
            f"ann@example.com,yes,newsletter,{CONSENT_AT}",
        )
    )

    assert reasons_by_line(report)[2][0].startswith("consent_source: 'newsletter' is not a consent source; use one of")


def test_consent_with_source_and_timestamp_appends_ledger_records_and_grants_consent():
    import_customers(
        csv_text(
            "email,phone,email_consent,sms_consent,consent_source,consent_at",
            f"ann@example.com,+12125550100,yes,true,form,{CONSENT_AT}",
        ),
        filename="fair-2026.csv",
    )

    customer = Customer.objects.get()
    assert customer.has_consent(Channel.EMAIL) and customer.has_consent(Channel.SMS)
    record = customer.consent_records.get(channel=Channel.EMAIL)
    assert (record.action, record.source, record.recorded_at, record.evidence) == (
        ConsentAction.GRANTED,
        ConsentSource.FORM,
        datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        "imported from fair-2026.csv, line 2",
    )


def test_consent_no_records_a_revocation():
    customer = factories.customer(external_id="A1")
    import_customers(
        csv_text(
            "external_id,email_consent,consent_source,consent_at",
            f"A1,no,admin,{CONSENT_AT}",
        )
    )

    assert customer.consent_state(Channel.EMAIL) == ConsentAction.REVOKED


def test_each_channel_can_have_its_own_consent_source_and_time():
    import_customers(
        csv_text(
            "email,email_consent,sms_consent,consent_source,consent_at,sms_consent_source,sms_consent_at",
            f"ann@example.com,yes,yes,form,{CONSENT_AT},keyword,2026-02-01T08:00:00+00:00",
        )
    )

    sms = ConsentRecord.objects.get(channel=Channel.SMS)
    assert (sms.source, sms.recorded_at) == (ConsentSource.KEYWORD, datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    assert ConsentRecord.objects.get(channel=Channel.EMAIL).source == ConsentSource.FORM


def test_an_imported_grant_older_than_a_revocation_does_not_restore_consent():
    customer = factories.customer(external_id="A1")
    ConsentRecord.objects.create(
        customer=customer,
        channel=Channel.EMAIL,
        action=ConsentAction.REVOKED,
        source=ConsentSource.FORM,
        recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
    )

    import_customers(csv_text("external_id,email_consent,consent_source,consent_at", f"A1,yes,import,{CONSENT_AT}"))

    assert not customer.has_consent(Channel.EMAIL)


def test_importing_the_same_consent_twice_records_it_once():
    text = f"external_id,email,email_consent,consent_source,consent_at\nA1,ann@example.com,yes,form,{CONSENT_AT}\n"

    import_customers(io.StringIO(text))
    again = import_customers(io.StringIO(text))

    assert again.consent_records == 0
    assert ConsentRecord.objects.count() == 1


# Many rows ----------------------------------------------------------------------------


def generated_csv(rows: int, *, bad_every: int = 20) -> tuple[str, int]:
    """``rows`` customers with consent, one bad row in every ``bad_every``; and the number of bad rows."""
    lines = ["external_id,email,phone,country,first_name,email_consent,consent_source,consent_at,attr_orders"]
    bad = 0
    for i in range(rows):
        row = [
            f"X{i}",
            f"c{i}@example.com",
            f"+1212{2_000_000 + i}",
            "US",
            f"Name{i}",
            "yes",
            "form",
            CONSENT_AT,
            str(i % 7),
        ]
        if i % bad_every == bad_every - 1:
            kind = (i // bad_every) % 4
            if kind == 0:
                row[3] = "XX"
            elif kind == 1:
                row[2] = "12"
            elif kind == 2:
                row[1] = "c0@example.com"
            else:
                row[6] = ""
            bad += 1
        lines.append(",".join(row))
    return "\n".join(lines) + "\n", bad


def test_ten_thousand_rows_with_bad_ones_mixed_in_import_every_valid_row():
    text, bad = generated_csv(10_000)

    started = time.perf_counter()
    report = import_customers(io.StringIO(text))
    elapsed = time.perf_counter() - started
    print(f"\n10,000 rows imported in {elapsed:.2f} s ({10_000 / elapsed:,.0f} rows/s)")

    assert (report.rows, report.created, report.rejected) == (10_000, 10_000 - bad, bad)
    assert Customer.objects.count() == 10_000 - bad
    assert ConsentRecord.objects.count() == report.consent_records == 10_000 - bad


# Command ------------------------------------------------------------------------------


def test_command_prints_summary_and_rejection_report(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("email,country\nann@example.com,US\nbob@example.com,XX\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    call_command("import_customers", str(path), stdout=out, stderr=err)

    assert "customers.csv: 2 rows: 1 created, 0 updated, 0 unchanged, 1 rejected" in out.getvalue()
    assert "line 3: country: 'XX' is not a country code" in out.getvalue()
    assert "100%" in err.getvalue()


def test_command_writes_the_rejection_report_to_the_given_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("email\nnot-an-address\n", encoding="utf-8")
    report = tmp_path / "rejected.csv"

    call_command("import_customers", str(path), "--report", str(report), stdout=io.StringIO(), stderr=io.StringIO())

    assert report.read_text().splitlines() == ["line,reasons", "2,email: 'not-an-address' is not an e-mail address."]


def test_command_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="There is no file"):
        call_command("import_customers", str(tmp_path / "nope.csv"), stdout=io.StringIO(), stderr=io.StringIO())


def test_command_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("email,first_name\nann@example.com,Jos\u00e9\n".encode("latin-1"))

    with pytest.raises(CommandError, match="not UTF-8 text"):
        call_command("import_customers", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def test_command_refuses_a_file_without_a_header(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("ann@example.com,Ann\n", encoding="utf-8")

    with pytest.raises(CommandError, match="header naming the columns"):
        call_command("import_customers", str(path), stdout=io.StringIO(), stderr=io.StringIO())


# Admin --------------------------------------------------------------------------------


def upload(content: bytes, name="customers.csv"):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_changelist_links_to_the_import_page(admin_client):
    response = admin_client.get(reverse("admin:customers_customer_changelist"))

    assert reverse("admin:customers_customer_import").encode() in response.content


def test_import_page_shows_the_upload_form(admin_client):
    response = admin_client.get(reverse("admin:customers_customer_import"))

    assert response.status_code == 200
    assert b'type="file"' in response.content


def test_import_page_needs_permission_to_add_and_change_customers(client, django_user_model):
    staff = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("admin:customers_customer_import"))

    assert response.status_code == 403


def test_admin_upload_shows_counts_and_rejected_rows_with_reasons(admin_client):
    content = b"email,country\nann@example.com,US\nbob@example.com,XX\n"

    response = admin_client.post(reverse("admin:customers_customer_import"), {"file": upload(content)})

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.rejected) == (1, 1)
    assert "country: &#x27;XX&#x27; is not a country code" in response.content.decode()
    assert Customer.objects.filter(email="ann@example.com").exists()


def test_admin_upload_of_a_file_that_is_not_utf8_shows_a_form_error(admin_client):
    response = admin_client.post(
        reverse("admin:customers_customer_import"),
        {"file": upload(b"PK\x03\x04\xff\xfe binary", name="x.xlsx")},
    )

    assert response.status_code == 200
    assert "is not UTF-8 text" in response.context["form"].errors["file"][0]


def test_admin_upload_without_a_header_shows_a_form_error(admin_client):
    response = admin_client.post(reverse("admin:customers_customer_import"), {"file": upload(b"just some text\n")})

    assert response.status_code == 200
    assert "header naming the columns" in response.context["form"].errors["file"][0]


def test_admin_upload_kept_on_disk_is_imported(admin_client, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # Django then writes the upload to a temporary file

    response = admin_client.post(
        reverse("admin:customers_customer_import"),
        {"file": upload(b"email\nann@example.com\n")},
    )

    assert response.context["report"].created == 1


# Numbers no JSON column holds, and the cells exports protect --------------------------

TOO_LONG = "9" * 5_000


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1e400", "attr_score: 1e400 is beyond the largest number that can be stored (about 1.8e308)."),
        ("-1e400", "attr_score: -1e400 is beyond the largest number that can be stored (about 1.8e308)."),
        (TOO_LONG, "attr_score: a number of more than 4,300 digits cannot be stored."),
    ],
)
def test_a_number_no_json_column_holds_rejects_its_row_and_its_chunk_is_imported(cell, reason):
    report = import_customers(csv_text("external_id,attr_score", "A1,1", f"A2,{cell}", "A3,2.5e-3"))

    assert (report.created, reasons_by_line(report)) == (2, {3: [reason]})
    assert dict(Customer.objects.values_list("external_id", "attributes")) == {
        "A1": {"score": 1},
        "A3": {"score": 0.0025},
    }


def test_command_reports_a_number_too_large_and_imports_the_other_rows(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(f"external_id,attr_score\nA1,1\nA2,1e400\nA3,{TOO_LONG}\nA4,4\n", encoding="utf-8")
    out = io.StringIO()

    call_command("import_customers", str(path), stdout=out, stderr=io.StringIO())

    assert "4 rows: 2 created, 0 updated, 0 unchanged, 2 rejected" in out.getvalue()
    assert "line 3: attr_score: 1e400 is beyond the largest number that can be stored" in out.getvalue()
    assert "line 4: attr_score: a number of more than 4,300 digits cannot be stored." in out.getvalue()
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A1", "A4"]


def test_admin_upload_reports_a_number_too_large_and_imports_the_other_rows(admin_client):
    content = f"external_id,attr_score\nA1,1\nA2,1e400\nA3,{TOO_LONG}\nA4,4\n".encode()

    response = admin_client.post(reverse("admin:customers_customer_import"), {"file": upload(content)})

    assert response.status_code == 200
    assert reasons_by_line(response.context["report"]) == {
        3: ["attr_score: 1e400 is beyond the largest number that can be stored (about 1.8e308)."],
        4: ["attr_score: a number of more than 4,300 digits cannot be stored."],
    }
    assert "1e400 is beyond the largest number" in response.content.decode()
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A1", "A4"]


def test_a_nul_in_the_header_refuses_the_file_before_an_attribute_gets_that_name():
    with pytest.raises(ImportFileError, match="header line contains the NUL character"):
        import_customers(csv_text("external_id,attr_a\x00b", "A1,1"))


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ('\'=HYPERLINK("http://x")', '=HYPERLINK("http://x")'),
        ("'@SUM(1)", "@SUM(1)"),
        ("'-Lee", "-Lee"),
        ("''=x", "'=x"),  # a stored "'=x" is exported with a second quote
        ("'O'Brien", "'O'Brien"),  # a quote before anything else is the value's own
    ],
)
def test_the_quote_an_export_puts_before_a_formula_is_taken_away(cell, stored):
    import_customers(csv_text("external_id,last_name,attr_note", f"A1,{cell},{cell}"))

    customer = Customer.objects.get()
    assert (customer.last_name, customer.attributes["note"]) == (stored, stored)


def test_a_protected_phone_number_is_read_as_the_number():
    import_customers(csv_text("external_id,phone", "A1,'+1 212 555 0100"))

    assert Customer.objects.get().phone == "+12125550100"
