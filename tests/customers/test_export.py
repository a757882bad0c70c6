import csv
import io
from datetime import UTC, date, datetime

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from customers import consent
from customers.exporting import export_customers
from customers.importing import import_customers
from customers.models import Channel, ConsentRecord, ConsentSource, Customer
from tests import factories

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
MAR = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def exported(queryset=None) -> list[dict]:
    out = io.StringIO()
    export_customers(queryset if queryset is not None else Customer.objects.all(), out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_export_writes_the_profile_columns():
    factories.customer(
        external_id="A1",
        email="ann@example.com",
        phone="+12125550100",
        first_name="Ann",
        last_name="Lee",
        country="US",
        language="en-US",
        timezone="America/New_York",
        date_of_birth=date(1990, 4, 25),
    )

    [row] = exported()

    assert {
        key: row[key]
        for key in (
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
    } == {
        "external_id": "A1",
        "email": "ann@example.com",
        "phone": "+12125550100",
        "first_name": "Ann",
        "last_name": "Lee",
        "country": "US",
        "language": "en-US",
        "timezone": "America/New_York",
        "date_of_birth": "1990-04-25",
    }


def test_export_has_a_column_for_every_attribute_key_present():
    factories.customer(attributes={"tier": "gold"})
    factories.customer(attributes={"orders": 3})

    rows = exported()

    assert {(row["attr_tier"], row["attr_orders"]) for row in rows} == {("gold", ""), ("", "3")}


def test_consent_columns_come_from_the_latest_record_of_each_channel():
    customer = factories.customer()
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM, recorded_at=JAN)
    consent.revoke(customer, Channel.EMAIL, ConsentSource.COMPLAINT, recorded_at=MAR)
    consent.grant(customer, Channel.SMS, ConsentSource.KEYWORD, recorded_at=FEB)

    [row] = exported()

    assert (row["email_consent"], row["email_consent_source"], row["email_consent_at"]) == (
        "no",
        "complaint",
        "2026-03-01T12:00:00+00:00",
    )
    assert (row["sms_consent"], row["sms_consent_source"], row["sms_consent_at"]) == (
        "yes",
        "keyword",
        "2026-02-01T08:00:00+00:00",
    )


def test_a_customer_without_consent_records_has_empty_consent_columns():
    factories.customer()

    [row] = exported()

    assert row["email_consent"] == row["email_consent_source"] == row["sms_consent_at"] == ""


def test_export_takes_the_same_number_of_queries_for_any_number_of_customers(django_assert_num_queries):
    for _ in range(5):
        customer = factories.customer()
        consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)

    with django_assert_num_queries(2):  # the attribute names, then the rows
        export_customers(Customer.objects.all(), io.StringIO())


def snapshot() -> list[tuple]:
    """What an export must carry over: each customer's profile and latest consent per channel."""
    customers = []
    for customer in Customer.objects.order_by("external_id", "email"):
        latest = {
            channel: customer.consent_records.filter(channel=channel)
            .values_list("action", "source", "recorded_at")
            .first()
            for channel in Channel
        }
        customers.append(
            (
                customer.external_id,
                customer.email,
                customer.phone,
                customer.first_name,
                customer.last_name,
                customer.country,
                customer.language,
                customer.timezone,
                customer.date_of_birth,
                customer.attributes,
                latest[Channel.EMAIL],
                latest[Channel.SMS],
            )
        )
    return customers


def test_export_then_import_into_an_empty_database_gives_the_same_customers():
    with transaction.atomic():
        ann = factories.customer(
            external_id="A1",
            email="Ann@Example.com",
            phone="+12125550100",
            first_name="Ann",
            last_name="Lee",
            country="US",
            language="en",
            timezone="America/New_York",
            date_of_birth=date(1990, 4, 25),
            attributes={"tier": "gold", "orders": 12, "spent": 59.9, "zip": "02134"},
        )
        consent.grant(ann, Channel.EMAIL, ConsentSource.FORM, recorded_at=JAN)
        consent.grant(ann, Channel.SMS, ConsentSource.KEYWORD, recorded_at=FEB)
        consent.revoke(ann, Channel.SMS, ConsentSource.CARRIER, recorded_at=MAR)
        factories.customer(external_id=None, email="bob@example.com", first_name="Bob", country="IT")
        factories.customer(external_id="C3", email="", phone="+393331234567", country="", first_name="")
        before = snapshot()
        out = io.StringIO()
        export_customers(Customer.objects.all(), out)
        transaction.set_rollback(True)  # back to an empty database
    assert not Customer.objects.exists()

    report = import_customers(io.StringIO(out.getvalue()))

    assert (report.created, report.rejected) == (3, 0)
    assert snapshot() == before


def test_command_exports_to_standard_output():
    factories.customer(email="ann@example.com")
    out = io.StringIO()

    call_command("export_customers", stdout=out, stderr=io.StringIO())

    assert [row["email"] for row in csv.DictReader(io.StringIO(out.getvalue()))] == ["ann@example.com"]


def test_command_exports_to_a_file(tmp_path):
    factories.customer(email="ann@example.com")
    path = tmp_path / "customers.csv"

    call_command("export_customers", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert [row["email"] for row in csv.DictReader(path.open(encoding="utf-8"))] == ["ann@example.com"]


def test_admin_action_exports_the_selected_customers_as_csv(admin_client):
    chosen = factories.customer(email="ann@example.com")
    factories.customer(email="bob@example.com")

    response = admin_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "export_as_csv", "_selected_action": [chosen.pk]},
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="customers-')
    text = response.content.decode("utf-8-sig")
    assert [row["email"] for row in csv.DictReader(io.StringIO(text))] == ["ann@example.com"]


def test_an_admin_export_imports_back_byte_order_mark_and_all(admin_client):
    customer = factories.customer(external_id="A1", email="ann@example.com", first_name="Zoë")
    response = admin_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "export_as_csv", "_selected_action": [customer.pk]},
    )

    report = import_customers(io.StringIO(response.content.decode("utf-8")))

    assert (report.unchanged, report.rejected, report.warnings) == (1, 0, [])
    assert not ConsentRecord.objects.exists()


# Cells a spreadsheet would run as formulas ------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tlead", "\rlead"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_written_with_a_leading_quote(formula):
    factories.customer(first_name=formula, attributes={"note": formula})

    [row] = exported()

    assert (row["first_name"], row["attr_note"]) == (f"'{formula}", f"'{formula}")


def test_numbers_and_e164_phones_are_written_as_they_are():
    factories.customer(phone="+12125550100", attributes={"balance": -12, "rate": -0.5, "tiny": 1e-05})

    [row] = exported()

    assert (row["phone"], row["attr_balance"], row["attr_rate"], row["attr_tiny"]) == (
        "+12125550100",
        "-12",
        "-0.5",
        "1e-05",
    )


def test_a_value_that_already_starts_with_a_quote_gets_one_more():
    factories.customer(first_name="'=x", last_name="'plain")

    [row] = exported()

    assert (row["first_name"], row["last_name"]) == ("''=x", "'plain")


def test_protection_can_be_turned_off_for_a_program_that_is_not_a_spreadsheet():
    factories.customer(first_name="=1+1")
    out = io.StringIO()

    export_customers(Customer.objects.all(), out, protect_formulas=False)

    [row] = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["first_name"] == "=1+1"


def test_command_protects_formulas_unless_told_not_to():
    factories.customer(first_name="=1+1")

    def first_name(*options):
        out = io.StringIO()
        call_command("export_customers", *options, stdout=out, stderr=io.StringIO())
        [row] = csv.DictReader(io.StringIO(out.getvalue()))
        return row["first_name"]

    assert (first_name(), first_name("--no-formula-protection")) == ("'=1+1", "=1+1")


def test_admin_exports_protected_by_default_and_as_stored_with_the_other_action(admin_client):
    customer = factories.customer(first_name="=1+1")

    def first_name(action):
        response = admin_client.post(
            reverse("admin:customers_customer_changelist"),
            {"action": action, "_selected_action": [customer.pk]},
        )
        [row] = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
        return row["first_name"]

    assert first_name("export_as_csv") == "'=1+1"
    assert first_name("export_as_csv_for_another_program") == "=1+1"


def test_the_admin_offers_both_exports_by_name(admin_client):
    factories.customer()

    page = admin_client.get(reverse("admin:customers_customer_changelist")).content.decode()

    assert "Export selected as CSV</option>" in page
    assert "Export selected as CSV for another program (cells as stored, unsafe in a spreadsheet)" in page


def test_protected_cells_and_phones_import_back_as_they_were():
    values = [*FORMULAS, "'=x", "''@y", "'plain", "-", "+"]
    with transaction.atomic():
        for index, value in enumerate(values):
            factories.customer(
                external_id=f"C{index}",
                email=f"c{index}@example.com",
                phone=f"+1212555{index:04d}",
                # The importer refuses a line break in a profile field (a quote left open), not in an attribute.
                last_name=value.replace("\r", "\t"),
                attributes={"note": value, "balance": -index},
            )
        factories.customer(external_id="IT", email="", phone="+393331234567", country="IT")
        before = snapshot()
        out = io.StringIO()
        export_customers(Customer.objects.all(), out)
        transaction.set_rollback(True)
    assert "'=HYPERLINK" in out.getvalue() and "+393331234567" in out.getvalue()

    report = import_customers(io.StringIO(out.getvalue()))

    assert (report.created, report.rejected) == (len(values) + 1, 0)
    assert snapshot() == before


def test_an_export_for_another_program_imports_back_without_the_quote_a_stored_value_began_with():
    # The import takes one protective ' away from every cell; this export added none. As
    # docs/operations.md says: the round trip holds for the default, protected export only.
    with transaction.atomic():
        factories.customer(external_id="A1", first_name="'=x", attributes={"note": "'-5", "plain": "'hello"})
        out = io.StringIO()
        export_customers(Customer.objects.all(), out, protect_formulas=False)
        transaction.set_rollback(True)

    import_customers(io.StringIO(out.getvalue()))

    customer = Customer.objects.get(external_id="A1")
    assert (customer.first_name, customer.attributes) == ("=x", {"note": -5, "plain": "'hello"})
