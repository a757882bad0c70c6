import pytest

from customers.models import Customer, Event
from tests import factories

pytestmark = pytest.mark.django_db


def profile_updates(customer):
    return list(Event.objects.filter(customer=customer, name="profile_updated"))


def test_changing_email_and_an_attribute_stores_one_profile_updated_event_with_both_changes():
    customer = factories.customer(email="old@example.com", attributes={"loyalty_points": 10})
    customer = Customer.objects.get(pk=customer.pk)

    customer.email = "new@example.com"
    customer.attributes["loyalty_points"] = 25
    customer.save()

    [event] = profile_updates(customer)
    assert event.properties["changes"] == {
        "email": ["old@example.com", "new@example.com"],
        "attributes.loyalty_points": [10, 25],
    }


def test_changes_are_reported_on_the_instance_that_created_the_customer():
    customer = factories.customer(first_name="Ann")
    customer.first_name = "Anna"
    customer.save()

    [event] = profile_updates(customer)
    assert event.properties["changes"] == {"first_name": ["Ann", "Anna"]}


def test_added_and_removed_attributes_are_reported_with_none_for_the_missing_side():
    customer = factories.customer(attributes={"tier": "gold"})
    customer.attributes = {"loyalty_points": 5}
    customer.save()

    [event] = profile_updates(customer)
    assert event.properties["changes"] == {
        "attributes.loyalty_points": [None, 5],
        "attributes.tier": ["gold", None],
    }


def test_creating_a_customer_stores_no_profile_updated_event():
    customer = factories.customer()
    assert profile_updates(customer) == []


def test_a_save_with_no_change_stores_no_event():
    customer = Customer.objects.get(pk=factories.customer().pk)
    customer.save()
    assert profile_updates(customer) == []


def test_a_change_is_reported_once_however_often_the_customer_is_saved_after_it():
    customer = factories.customer(last_name="Smith")
    customer.last_name = "Jones"
    customer.save()
    customer.save()
    assert len(profile_updates(customer)) == 1


def test_a_bulk_update_stores_no_event():
    customer = factories.customer()
    Customer.objects.filter(pk=customer.pk).update(first_name="Bulk")
    assert profile_updates(customer) == []


def test_a_nested_attribute_changed_in_place_is_reported():
    customer = Customer.objects.get(pk=factories.customer(attributes={"tags": ["vip"]}).pk)
    customer.attributes["tags"].append("newsletter")
    customer.save()

    assert [event.properties["changes"] for event in profile_updates(customer)] == [
        {"attributes.tags": [["vip"], ["vip", "newsletter"]]}
    ]


def test_saving_a_refreshed_unchanged_customer_stores_no_event():
    customer = Customer.objects.get(pk=factories.customer(email="a@example.com").pk)
    Customer.objects.filter(pk=customer.pk).update(email="b@example.com")
    customer.refresh_from_db()
    customer.save()
    assert profile_updates(customer) == []


def test_saving_the_admin_change_form_stores_a_profile_updated_event(admin_client):
    customer = factories.customer(
        email="old@example.com", first_name="Ann", country="US", attributes={"loyalty_points": 10}
    )

    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "email": "new@example.com",
            "first_name": "Ann",
            "country": "US",
            "attributes": '{"loyalty_points": 25}',
            "consent_records-TOTAL_FORMS": "0",
            "consent_records-INITIAL_FORMS": "0",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = profile_updates(customer)
    assert event.properties["changes"] == {
        "email": ["old@example.com", "new@example.com"],
        "attributes.loyalty_points": [10, 25],
    }


def test_saving_the_admin_change_form_unchanged_stores_no_event(admin_client):
    customer = factories.customer(email="ann@example.com", first_name="Ann", country="US")

    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "email": "ann@example.com",
            "first_name": "Ann",
            "country": "US",
            "attributes": "{}",
            "consent_records-TOTAL_FORMS": "0",
            "consent_records-INITIAL_FORMS": "0",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    assert profile_updates(customer) == []


def test_a_change_to_a_field_not_loaded_is_reported():
    customer = Customer.objects.only("pk", "email").get(pk=factories.customer(first_name="Ann").pk)
    customer.first_name = "Anna"
    customer.save()

    assert [event.properties["changes"] for event in profile_updates(customer)] == [{"first_name": ["Ann", "Anna"]}]
