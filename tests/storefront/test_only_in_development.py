"""The example shop, with its public registration form, exists in development and the demo
only: in production it is neither installed nor routed, and / leads to the admin."""

import pytest

from tests.test_settings import PRODUCTION_ENV, manage

SERVED_IN_PRODUCTION = """
from django.conf import settings
from django.test import Client
from django.urls import NoReverseMatch, reverse

client = Client(HTTP_HOST="triggerhub.example.com", raise_request_exception=False)
root = client.get("/", secure=True)
print("root", root.status_code, root.get("Location"))
for path in ("/register/", "/login/", "/cart/"):
    print(path, client.get(path, secure=True).status_code)
try:
    reverse("storefront:register")
except NoReverseMatch:
    print("no storefront urls")
print("installed", "storefront" in settings.INSTALLED_APPS)
print("login", reverse(settings.LOGIN_URL))
"""


@pytest.fixture(scope="module")
def production_answers(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")  # an empty database: no page here may need one
    result = manage("shell", "--no-imports", "-c", SERVED_IN_PRODUCTION, **PRODUCTION_ENV, TRIGGERHUB_VAR_DIR=str(var))
    print(result.stderr)
    return result.stdout.splitlines()


def test_in_production_the_site_root_leads_to_the_admin(production_answers):
    assert "root 302 /admin/" in production_answers


def test_in_production_the_shops_pages_and_registration_do_not_exist(production_answers):
    assert {"/register/ 404", "/login/ 404", "/cart/ 404", "no storefront urls"} <= set(production_answers)


def test_in_production_the_shop_is_not_installed_and_logins_go_to_the_admin(production_answers):
    assert "installed False" in production_answers
    assert "login /admin/login/" in production_answers


@pytest.mark.django_db
def test_in_development_the_shop_is_served_at_the_root_with_its_registration(client):
    assert client.get("/").status_code == 200
    assert "password1" in client.get("/register/").content.decode()
