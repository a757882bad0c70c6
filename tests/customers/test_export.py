import csv
import io
from datetime import date, datetime, timezone as dt_timezone

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

JAN = datetime(2026, 1, 15, 9, 0, tzinfo=dt_timezone.utc)
FEB = datetime(2026, 2, 1, 8, 0, tzinfo=dt_timezone.utc)
MAR = datetime(2026, 3, 1, 12, 0, tzinfo=dt_timezone.utc)


def exported(queryset=None) -> list[dict]:
    out = io.StringIO()
    export_customers(queryset if queryset is not None else Customer.objects.all(), out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_export_writes_the_profile_columns():
    factories.customer(
        external_id="A1", email="ann@example.com", phone="+12125550100", first_name="Ann", last_name="Lee",
        country="US", language="en-US", timezone="America/New_York", date_of_birth=date(1990, 4, 25),
    )

    [row] = exported()

    assert {key: row[key] for key in ("external_id", "email", "phone", "first_name", "last_name", "country",
                                      "language", "timezone", "date_of_birth")} == {
        "external_id": "A1", "email": "ann@example.com", "phone": "+12125550100", "first_name": "Ann",
        "last_name": "Lee", "country": "US", "language": "en-US", "timezone": "America/New_York",
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
        "no", "complaint", "2026-03-01T12:00:00+00:00",
    )
    assert (row["sms_consent"], row["sms_consent_source"], row["sms_consent_at"]) == (
        "yes", "keyword", "2026-02-01T08:00:00+00:00",
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
            .values_list("action", "source", "recorded_at").first()
            for channel in Channel
        }
        customers.append((
            customer.external_id, customer.email, customer.phone, customer.first_name, customer.last_name,
            customer.country, customer.language, customer.timezone, customer.date_of_birth, customer.attributes,
            latest[Channel.EMAIL], latest[Channel.SMS],
        ))
    return customers


def test_export_then_import_into_an_empty_database_gives_the_same_customers():
    with transaction.atomic():
        ann = factories.customer(
            external_id="A1", email="Ann@Example.com", phone="+12125550100", first_name="Ann", last_name="Lee",
            country="US", language="en", timezone="America/New_York", date_of_birth=date(1990, 4, 25),
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
