"""Customer.local_zone: the one zone a customer's dates come round in, kept on every way in."""

import io
import json

import pytest
from django.apps import apps

from customers import api_keys
from customers.importing import import_customers
from customers.models import Customer, local_zone_for
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "zone"),
    [
        ({"timezone": "Asia/Tokyo", "phone": "+61291234567", "country": "AU"}, "Asia/Tokyo"),
        ({"phone": "+61291234567", "country": "AU"}, "Australia/Sydney"),
        ({"phone": "+13105550100", "country": "US"}, "America/Los_Angeles"),
        ({"phone": "", "country": "IT"}, "Europe/Rome"),
        ({"phone": "", "country": ""}, ""),
    ],
)
def test_the_local_zone_is_the_zone_set_by_hand_else_the_numbers_else_the_countrys(fields, zone):
    assert factories.customer(**fields).local_zone == zone


def test_of_a_mobiles_several_zones_the_countrys_most_populous_is_taken():
    assert local_zone_for(phone="+61412345678") == "Australia/Sydney"  # eight zones, Adelaide first
    assert local_zone_for(phone="+79161234567", country="RU") == "Europe/Moscow"


def test_of_several_zones_one_in_the_customers_own_country_is_taken():
    assert local_zone_for(phone="+79161234567", country="KZ") == "Asia/Almaty"  # +7 is Russia and Kazakhstan


def test_a_changed_phone_number_moves_the_local_zone():
    customer = factories.customer(phone="+12125550100", country="US")
    assert customer.local_zone == "America/New_York"

    customer.phone = "+13105550100"
    customer.save(update_fields=["phone"])

    customer.refresh_from_db()
    assert customer.local_zone == "America/Los_Angeles"


def test_imported_customers_get_their_local_zone():
    import_customers(
        io.StringIO("external_id,phone,country,timezone\nA1,+61 2 9123 4567,AU,\nA2,,IT,\nA3,,US,Asia/Tokyo\n")
    )
    zones = dict(Customer.objects.values_list("external_id", "local_zone"))
    assert zones == {"A1": "Australia/Sydney", "A2": "Europe/Rome", "A3": "Asia/Tokyo"}


def test_an_import_that_changes_the_phone_number_moves_the_local_zone():
    import_customers(io.StringIO("external_id,phone,country\nA1,+1 212 555 0100,US\n"))
    import_customers(io.StringIO("external_id,phone,country\nA1,+1 310 555 0100,US\n"))
    assert Customer.objects.get(external_id="A1").local_zone == "America/Los_Angeles"


def test_customers_created_by_the_events_api_get_their_local_zone(client):
    _, key = api_keys.create("shop-api")
    response = client.post(
        "/api/v1/events/batch",
        json.dumps(
            {
                "events": [
                    {
                        "name": "customer_registered",
                        "customer": {"external_id": "u-1", "phone": "+61 2 9123 4567", "country": "AU"},
                    }
                ]
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code in (200, 202), response.content
    assert Customer.objects.get(external_id="u-1").local_zone == "Australia/Sydney"


def test_the_migration_fills_the_local_zone_of_existing_customers():
    from importlib import import_module

    fill_local_zones = import_module("customers.migrations.0005_customer_local_zone").fill_local_zones
    by_hand = factories.customer(timezone="Asia/Tokyo", phone="+13105550100")
    by_number = factories.customer(phone="+61291234567", country="AU")
    by_country = factories.customer(phone="", country="IT")
    unknown = factories.customer(phone="", country="")
    Customer.objects.update(local_zone="")

    fill_local_zones(apps, None)

    zones = dict(Customer.objects.values_list("pk", "local_zone"))
    assert zones == {
        by_hand.pk: "Asia/Tokyo",
        by_number.pk: "Australia/Sydney",
        by_country.pk: "Europe/Rome",
        unknown.pk: "",
    }
