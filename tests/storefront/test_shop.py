"""The example shop tells TriggerHub what happens, through the signals, in its own transaction."""

import pytest
from django.contrib.auth import get_user_model

from customers.models import Customer, Event
from examples.storefront.models import Order, Product

pytestmark = pytest.mark.django_db

REGISTRATION = {
    "username": "zoe",
    "email": "Zoe@Example.com",
    "first_name": "Zoe",
    "last_name": "Zed",
    "country": "it",
    "password1": "a-Long-secret-9",
    "password2": "a-Long-secret-9",
}


@pytest.fixture
def product():
    return Product.objects.create(name="Moka pot", slug="moka-pot", price="34.00")


def register(client):
    response = client.post("/register/", REGISTRATION)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Customer.objects.get(user__username="zoe")


def test_registering_creates_the_customer_and_a_registration_event(client):
    customer = register(client)
    assert (customer.email, customer.country, customer.first_name) == ("zoe@example.com", "IT", "Zoe")
    event = Event.objects.get(customer=customer)
    assert event.name == "customer_registered"
    assert event.idempotency_key == f"registration:{customer.user_id}"


def test_a_registration_with_a_taken_email_is_refused_with_a_message(client):
    register(client)
    client.logout()
    response = client.post("/register/", {**REGISTRATION, "username": "zoe2"})
    assert response.status_code == 200
    assert "An account with this e-mail address already exists." in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_adding_to_the_cart_tells_triggerhub_for_a_known_customer(client, product):
    customer = register(client)
    client.post(f"/cart/add/{product.slug}/")
    client.post(f"/cart/add/{product.slug}/")
    cart_events = Event.objects.filter(customer=customer, name="cart_updated").order_by("received_at")
    assert [e.properties["total"] for e in cart_events] == ["34.00", "68.00"]
    assert cart_events.last().properties["items"] == [
        {"sku": "moka-pot", "name": "Moka pot", "quantity": 2, "price": "34.00"}
    ]


def test_an_anonymous_cart_sends_nothing(client, product):
    client.post(f"/cart/add/{product.slug}/")
    assert Event.objects.count() == 0
    assert "Moka pot" in client.get("/cart/").content.decode()


def test_a_quantity_that_is_not_a_number_is_refused_and_the_cart_kept(client, product):
    client.post(f"/cart/add/{product.slug}/")
    response = client.post("/cart/", {f"quantity-{product.pk}": "two"}, follow=True)
    assert "&#x27;two&#x27; is not a quantity for Moka pot." in response.content.decode()
    assert 'value="1"' in response.content.decode()


def test_checkout_places_the_order_and_tells_triggerhub(client, product):
    customer = register(client)
    client.post(f"/cart/add/{product.slug}/")
    response = client.post("/checkout/")
    order = Order.objects.get(customer=customer)
    assert response.url == f"/orders/{order.pk}/"
    event = Event.objects.get(customer=customer, name="order_placed")
    assert event.properties["order_id"] == str(order.pk)
    assert event.properties["total"] == "34.00"
    assert event.idempotency_key == f"order:{order.pk}"
    assert client.get("/cart/").context["lines"] == []


def test_ticking_the_offers_box_records_email_consent_from_the_form(client):
    from customers.models import ConsentAction, ConsentSource

    client.post("/register/", {**REGISTRATION, "email_offers": "on"})
    customer = Customer.objects.get(user__username="zoe")
    record = customer.consent_records.get()
    assert (record.channel, record.action, record.source) == ("email", ConsentAction.GRANTED, ConsentSource.FORM)
    assert "ticked" in record.evidence


def test_without_the_box_ticked_no_consent_is_recorded(client):
    assert not register(client).consent_records.exists()
