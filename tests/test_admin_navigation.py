"""The console's navigation puts a marketer's work first and operations apart (triggerhub/console.py).

The index page and the sidebar list Activities, Content, Customers and Reports in that order;
the Operations sections come last, under their own heading, and only for those who may see them.
"""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.urls import reverse

from triggerhub.console import SECTIONS, ConsoleAdminSite

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
MARKETER_SECTIONS = ["Activities", "Content", "Customers", "Reports"]
OPERATIONS_SECTIONS = ["Sending", "Schedules", "People and access"]


def member_of(group_name: str) -> User:
    user = User.objects.create_user(group_name.lower(), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def sections(response) -> list[str]:
    return [section["name"] for section in response.context["app_list"]]


def listed_models(response) -> list[str]:
    return [model["name"] for section in response.context["app_list"] for model in section["models"]]


def captions(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", caption).strip() for caption in re.findall(r"<caption>(.*?)</caption>", html, re.S)]


def test_the_admin_site_is_the_console():
    assert isinstance(admin.site, ConsoleAdminSite)


def test_a_marketer_sees_activities_content_customers_and_reports_in_that_order(client):
    client.force_login(member_of("Marketer"))

    response = client.get(INDEX)

    assert sections(response) == MARKETER_SECTIONS
    assert captions(response.content.decode()) == MARKETER_SECTIONS


def test_each_section_lists_its_models_in_the_order_a_marketer_works(client):
    client.force_login(member_of("Marketer"))

    response = client.get(INDEX)

    assert listed_models(response) == [
        "Activities",
        "Enrollments",
        "Coupon pools",
        "Coupons",
        "Email templates",
        "SMS contents",
        "Customers",
        "Segments",
        "Events",
        "Consent records",
        "Messages",
    ]


def test_a_marketer_sees_no_operations(client):
    client.force_login(member_of("Marketer"))

    html = client.get(INDEX).content.decode()

    assert "Operations" not in html
    for name in ("Periodic tasks", "API keys", "Credit entries", "Suppressions", "Access attempts", "Users"):
        assert f">{name}<" not in html


def test_a_superuser_sees_operations_last_under_their_own_heading(client, admin_user):
    client.force_login(admin_user)

    response = client.get(INDEX)
    html = response.content.decode()

    names = sections(response)
    assert names[:4] == MARKETER_SECTIONS
    assert names[-3:] == OPERATIONS_SECTIONS
    assert [section["operations"] for section in response.context["app_list"]] == [
        name in OPERATIONS_SECTIONS for name in names
    ]
    heading = html.index('<h2 class="console-operations-heading">Operations</h2>')
    assert html.index(">Messages<") < heading < html.index(">Credit entries<") < html.index(">Periodic tasks<")
    assert html.count("console-operations-heading") == 1


def test_a_superuser_finds_every_registered_model_once(client, admin_user):
    client.force_login(admin_user)

    listed = [model["model"] for section in client.get(INDEX).context["app_list"] for model in section["models"]]

    assert sorted(listed, key=str) == sorted(admin.site._registry, key=str)


def test_a_model_no_section_names_keeps_its_apps_section_before_operations(client, admin_user):
    if not any(model._meta.app_label == "storefront" for model in admin.site._registry):
        pytest.skip("the example shop (whose models no section names) is not installed")
    client.force_login(admin_user)

    names = sections(client.get(INDEX))

    assert names.index("Example storefront") == len(MARKETER_SECTIONS)
    assert names.index("Example storefront") < names.index("Sending")


def test_ops_see_their_sections_and_what_they_read(client):
    client.force_login(member_of("Ops"))

    response = client.get(INDEX)

    assert sections(response) == [*MARKETER_SECTIONS, *OPERATIONS_SECTIONS]
    assert "API keys" in listed_models(response)
    assert "Users" not in listed_models(response) and "Groups" not in listed_models(response)


def test_the_sidebar_of_every_page_uses_the_same_sections(client):
    client.force_login(member_of("Marketer"))

    html = client.get(reverse("admin:activities_activity_changelist")).content.decode()
    start = html.index('id="nav-sidebar"')
    sidebar = html[start : html.index("</nav>", start)]

    assert captions(sidebar) == MARKETER_SECTIONS
    assert 'aria-current="page"' in sidebar  # the page the marketer is on is marked


def test_an_apps_own_page_still_lists_that_app(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("admin:app_list", args=["customers"]))

    assert response.status_code == 200
    assert sections(response) == ["Customers and events"]


def test_the_section_style_is_served_by_the_application(client, admin_user):
    client.force_login(admin_user)
    html = client.get(INDEX).content.decode()

    [stylesheet] = set(re.findall(r'href="([^"]*console\.css)"', html))
    assert stylesheet.startswith("/static/")
    assert "console-operations-heading" in b"".join(client.get(stylesheet).streaming_content).decode()


def test_every_model_a_section_names_exists():
    for section in SECTIONS:
        for label in section.models:
            app_label, model_name = label.split(".")
            assert apps.get_model(app_label, model_name), label
