"""Customer attributes a JSON column cannot store are refused by path when edited, not a 500 on save."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db


def test_clean_names_each_attribute_that_cannot_be_stored():
    customer = factories.customer()
    customer.attributes = {"score": float("nan"), "tags": ["ok", "bad\x00"]}

    with pytest.raises(ValidationError) as refused:
        customer.full_clean()

    assert refused.value.message_dict["attributes"] == [
        "score: NaN is not a JSON number; send a finite number or a string.",
        "tags[1]: Contains the NUL character (\\u0000), which cannot be stored.",
    ]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ('{"score": NaN}', "score: NaN is not a JSON number"),
        ('{"score": 1e400}', "score: Infinity is not a JSON number"),  # json.loads reads 1e400 as infinity
        ('{"note": "a\\u0000b"}', "note: Contains the NUL character"),
        ('{"note": "\\ud800"}', "note: "),  # a lone surrogate: the page shows it back as typed
        ('{"\\udfff": 1}', ""),  # also as a key
    ],
)
def test_the_admin_form_shows_the_attribute_that_cannot_be_stored(admin_client, typed, message):
    customer = factories.customer(email="ann@example.com", first_name="Ann", country="US")

    response = admin_client.post(
        reverse("admin:customers_customer_change", args=[customer.pk]),
        {
            "email": "ann@example.com",
            "first_name": "Ann",
            "country": "US",
            "attributes": typed,
            "consent_records-TOTAL_FORMS": 0,
            "consent_records-INITIAL_FORMS": 0,
            "events-TOTAL_FORMS": 0,
            "events-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["attributes"]
    assert error.startswith(message)
    response.content.decode("utf-8")  # the page itself is whole
    customer.refresh_from_db()
    assert customer.attributes == {}
