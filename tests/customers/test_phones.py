import pytest
from django.core.exceptions import ValidationError

from customers import phones


def test_a_us_national_number_with_its_country_becomes_e164():
    assert phones.normalize("(212) 555-0100", "US") == "+12125550100"


def test_an_italian_mobile_with_its_country_becomes_e164():
    assert phones.normalize("333 123 4567", "IT") == "+393331234567"


def test_a_number_with_plus_and_calling_code_needs_no_country():
    assert phones.normalize("+39 333 123 4567") == "+393331234567"


def test_a_00_international_prefix_is_read_as_plus():
    assert phones.normalize("0039 333 123 4567") == "+393331234567"


def test_the_country_code_is_accepted_in_lower_case():
    assert phones.normalize("(212) 555-0100", "us") == "+12125550100"


@pytest.mark.parametrize(
    ("raw", "country", "problem"),
    [
        ("(212) 555-0100", None, "is a national number: give the customer's country"),
        ("212-CALL-NOW", "US", "contains characters other than digits"),
        ("555", "US", "'555' is too short for a US number"),
        ("+1 555", None, "'+1 555' is too short for a +1 number"),
        ("333 123 4567", "XX", "'XX' is not a country code"),
        ("  ", "US", "Give a phone number"),
    ],
    ids=["national-without-country", "letters", "too-short", "too-short-international", "unknown-country", "blank"],
)
def test_an_unusable_number_raises_a_validation_error_naming_the_problem(raw, country, problem):
    with pytest.raises(ValidationError) as caught:
        phones.normalize(raw, country)
    [message] = caught.value.messages
    assert problem in message
