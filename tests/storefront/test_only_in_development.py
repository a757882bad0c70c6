"""The example shop (examples/storefront/), with its public registration form, exists in
development and the demo only: in production it is neither installed nor routed, nothing
answers at /, and it is never packaged with the product."""

import tomllib
from fnmatch import fnmatchcase

import pytest
from django.apps import apps

from examples.storefront.models import Product
from tests.conftest import ROOT
from tests.test_settings import PRODUCTION_ENV, manage

SERVED_IN_PRODUCTION = """
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import NoReverseMatch, reverse

client = Client(HTTP_HOST="triggerhub.example.com", raise_request_exception=False)
print("root", client.get("/", secure=True).status_code)
for path in ("/register/", "/login/", "/cart/"):
    print(path, client.get(path, secure=True).status_code)
try:
    reverse("storefront:register")
except NoReverseMatch:
    print("no storefront urls")
shop = {"storefront", "examples.storefront"}
print("listed", sorted(shop & set(settings.INSTALLED_APPS)))
print("installed", any(config.label == "storefront" or config.name in shop for config in apps.get_app_configs()))
print("context processors", [p for t in settings.TEMPLATES for p in t["OPTIONS"]["context_processors"] if "storefront" in p])
print("login", reverse(settings.LOGIN_URL))
"""


@pytest.fixture(scope="module")
def production_answers(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")  # an empty database: no page here may need one
    result = manage("shell", "--no-imports", "-c", SERVED_IN_PRODUCTION, **PRODUCTION_ENV, TRIGGERHUB_VAR_DIR=str(var))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_in_production_the_site_root_answers_404(production_answers):
    assert "root 404" in production_answers


def test_in_production_the_shops_pages_and_registration_do_not_exist(production_answers):
    assert {"/register/ 404", "/login/ 404", "/cart/ 404", "no storefront urls"} <= set(production_answers)


def test_in_production_the_shop_is_not_installed_and_logins_go_to_the_admin(production_answers):
    assert "listed []" in production_answers
    assert "installed False" in production_answers
    assert "context processors []" in production_answers
    assert "login /admin/login/" in production_answers


def is_packaged(package):
    """As setuptools' ``packages.find`` decides: a name some include pattern matches and no exclude does."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    include, exclude = find.get("include", ["*"]), find.get("exclude", [])
    return any(fnmatchcase(package, p) for p in include) and not any(fnmatchcase(package, p) for p in exclude)


def test_the_shop_is_not_packaged_with_the_product():
    shop = [".".join(path.relative_to(ROOT).parent.parts) for path in (ROOT / "examples").rglob("__init__.py")]
    assert "examples.storefront.migrations" in shop
    assert not [package for package in [*shop, "storefront"] if is_packaged(package)]
    assert all(is_packaged(package) for package in ("triggerhub", "customers", "messaging.backends", "activities"))


def test_in_development_the_shop_keeps_the_label_its_tables_and_migrations_were_made_under():
    assert apps.get_app_config("storefront").name == "examples.storefront"
    assert Product._meta.db_table == "storefront_product"


@pytest.mark.django_db
def test_in_development_the_shop_is_served_at_the_root_with_its_registration(client):
    assert client.get("/").status_code == 200
    assert "password1" in client.get("/register/").content.decode()
