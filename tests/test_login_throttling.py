"""Logins are throttled (django-axes): after too many wrong passwords for one username from
one address, even the right password is refused until the cool-off ends or ops unlock it.
"""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = reverse("admin:login")
SHOP_LOGIN = "/login/"  # the example shop's, in development
PASSWORD = "the-Right-one-42"


@pytest.fixture
def operator():
    return User.objects.create_user("ops", password=PASSWORD, is_staff=True)


def log_in(client, username, password, *, url=ADMIN_LOGIN, address="127.0.0.1"):
    return client.post(url, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def fail_until_locked(client, username, **where):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, username, "wrong", **where)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_limit_is_a_handful_of_tries():
    assert 3 <= settings.AXES_FAILURE_LIMIT <= 10


def test_the_right_password_after_fewer_wrong_ones_than_the_limit_logs_in(client, operator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "ops", "wrong").status_code == 200
    assert log_in(client, "ops", PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_too_many_wrong_passwords_lock_the_admin_login_even_for_the_right_one(client, operator):
    fail_until_locked(client, "ops")

    response = log_in(client, "ops", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not is_logged_in(client)


def test_the_lockout_page_says_when_to_try_again_and_who_can_unlock(client, operator):
    fail_until_locked(client, "ops")
    page = log_in(client, "ops", PASSWORD).content.decode()
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"{minutes} minutes" in page
    assert "administrator" in page


def test_the_lock_ends_after_the_cool_off(client, operator):
    fail_until_locked(client, "ops")
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert log_in(client, "ops", PASSWORD).status_code == 302
        assert is_logged_in(client)


def test_ops_unlock_with_axes_reset(client, operator):
    fail_until_locked(client, "ops")
    call_command("axes_reset_username", "ops", verbosity=0)
    assert log_in(client, "ops", PASSWORD).status_code == 302


def test_another_user_from_the_same_address_is_not_locked(client, operator):
    User.objects.create_user("ann", password=PASSWORD, is_staff=True)
    fail_until_locked(client, "ops")
    assert log_in(client, "ann", PASSWORD).status_code == 302


def test_the_same_user_from_another_address_is_not_locked(client, operator):
    # Locking by username alone would let anyone lock an operator out by guessing.
    fail_until_locked(client, "ops", address="203.0.113.9")
    assert log_in(client, "ops", PASSWORD, address="198.51.100.7").status_code == 302


def test_the_example_shops_login_is_throttled_too(client):
    User.objects.create_user("zoe", password=PASSWORD)
    fail_until_locked(client, "zoe", url=SHOP_LOGIN)
    response = log_in(client, "zoe", PASSWORD, url=SHOP_LOGIN)
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_behind_a_load_balancer_the_address_it_appended_counts_not_the_one_the_client_wrote(client, operator, settings):
    # Only the precedence order is set, as an operator who reads no further would: the
    # default proxy order must already take the address the balancer appended.
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    balancer = "10.0.0.1"

    for forged in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            ADMIN_LOGIN,
            {"username": "ops", "password": "wrong"},
            REMOTE_ADDR=balancer,
            HTTP_X_FORWARDED_FOR=f"1.2.3.{forged}, 8.8.8.8",
        )
    locked = client.post(
        ADMIN_LOGIN, {"username": "ops", "password": PASSWORD}, REMOTE_ADDR=balancer, HTTP_X_FORWARDED_FOR="8.8.8.8"
    )
    elsewhere = client.post(
        ADMIN_LOGIN, {"username": "ops", "password": PASSWORD}, REMOTE_ADDR=balancer, HTTP_X_FORWARDED_FOR="9.9.9.9"
    )

    assert (locked.status_code, elsewhere.status_code) == (429, 302)
