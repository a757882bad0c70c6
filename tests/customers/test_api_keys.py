import io

import pytest
from django.core.management import CommandError, call_command

from customers import api_keys
from customers.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_created_key_authenticates():
    api_key, key = api_keys.create("shop")
    assert key.startswith("th_")
    assert api_keys.authenticate(key) == api_key


def test_the_key_is_stored_only_as_its_sha256():
    api_key, key = api_keys.create("shop")

    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert row["key_hash"] == api_keys.hash_key(key)
    assert [column for column, value in row.items() if key in str(value)] == []


def test_an_unknown_or_malformed_key_is_refused():
    api_keys.create("shop")
    assert api_keys.authenticate("th_not-a-real-key") is None
    assert api_keys.authenticate("") is None
    assert api_keys.authenticate(None) is None


def test_the_hash_itself_does_not_authenticate():
    api_key, _ = api_keys.create("shop")
    assert api_keys.authenticate(api_key.key_hash) is None


def test_a_revoked_key_is_refused():
    api_key, key = api_keys.create("shop")

    assert api_keys.revoke(ApiKey.objects.filter(pk=api_key.pk)) == 1

    assert api_keys.authenticate(key) is None


def test_revoking_a_revoked_key_again_counts_nothing():
    api_key, _ = api_keys.create("shop")
    api_keys.revoke(ApiKey.objects.filter(pk=api_key.pk))
    assert api_keys.revoke(ApiKey.objects.filter(pk=api_key.pk)) == 0


def test_create_api_key_command_prints_a_key_that_authenticates():
    out = io.StringIO()
    call_command("create_api_key", "my-shop", stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    assert api_keys.authenticate(key).name == "my-shop"


def test_create_api_key_command_sets_the_rate_limit():
    call_command("create_api_key", "my-shop", "--rate-limit", "60", stdout=io.StringIO())
    assert ApiKey.objects.get(name="my-shop").rate_limit_per_minute == 60


def test_create_api_key_command_refuses_a_name_already_taken():
    api_keys.create("my-shop")
    with pytest.raises(CommandError, match="already a key named 'my-shop'"):
        call_command("create_api_key", "my-shop", stdout=io.StringIO())
    assert ApiKey.objects.filter(name="my-shop").count() == 1
