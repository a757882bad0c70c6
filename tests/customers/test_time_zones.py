import pytest
import pytz

from customers import phones
from tests import factories

pytestmark = pytest.mark.django_db

#: A valid international freephone number (+800): no country, so phonenumbers knows no zone for it.
ZONELESS_NUMBER = "+80012345678"


def test_a_new_york_number_is_in_new_york_time():
    assert phones.time_zones("+12125550100") == ["America/New_York"]


def test_an_italian_mobile_is_in_rome_time():
    assert "Europe/Rome" in phones.time_zones("+393331234567")


def test_a_non_geographic_number_has_no_zones():
    assert phones.normalize(ZONELESS_NUMBER) == ZONELESS_NUMBER  # a number we accept...
    assert phones.time_zones(ZONELESS_NUMBER) == []  # ...but cannot place


def test_text_that_is_not_a_number_has_no_zones():
    assert phones.time_zones("not a number") == []


def test_a_customer_is_in_the_zones_of_their_phone_number():
    customer = factories.customer(phone="+12125550100", country="US")
    assert customer.time_zones() == ["America/New_York"]


def test_a_customer_without_phone_is_in_the_zones_of_their_country():
    customer = factories.customer(phone="", country="AU")
    assert customer.time_zones() == list(pytz.country_timezones["AU"])


def test_a_customer_whose_number_cannot_be_placed_is_in_the_zones_of_their_country():
    customer = factories.customer(phone=ZONELESS_NUMBER, country="IT")
    assert customer.time_zones() == list(pytz.country_timezones["IT"])


def test_a_customer_with_an_unplaceable_number_and_no_country_gets_the_site_default(settings):
    settings.TRIGGERHUB_DEFAULT_TIMEZONE = "Europe/Lisbon"
    customer = factories.customer(phone=ZONELESS_NUMBER, country="")
    assert customer.time_zones() == ["Europe/Lisbon"]


def test_a_customer_of_whom_nothing_is_known_gets_the_site_default(settings):
    settings.TRIGGERHUB_DEFAULT_TIMEZONE = "Europe/Lisbon"
    customer = factories.customer(phone="", country="")
    assert customer.time_zones() == ["Europe/Lisbon"]


def test_a_zone_set_by_hand_wins_over_phone_and_country():
    customer = factories.customer(phone="+12125550100", country="US", timezone="Asia/Tokyo")
    assert customer.time_zones() == ["Asia/Tokyo"]
