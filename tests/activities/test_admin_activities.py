"""The activity admin: spec problems on their fields, JSON as readable text, export and import of activity files."""

import io
import json
import zipfile
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from activities import files, spec
from activities.models import Activity, ActivityVersion
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def cart(contents):
    return spec.load(
        {
            "name": "Cart reminder",
            "trigger": {"type": "event", "event": "cart_updated"},
            "reentry": {"policy": "after_days", "days": 30},
            "goal": {"event": "order_placed"},
            "steps": [{"type": "wait", "hours": 1}, {"type": "send", "channel": "email", "template": "cart-reminder"}],
        }
    )


@pytest.fixture
def contents():
    factories.email_template("cart-reminder")


class _FormFields(HTMLParser):
    """The values a browser would post from the page's main form."""

    def __init__(self):
        super().__init__()
        self.data, self._textarea, self._select = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.data[name] = attrs.get("value", "")
        elif tag == "textarea" and name:
            self._textarea, self.data[name] = name, ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def form_of(response) -> dict:
    parser = _FormFields()
    parser.feed(response.content.decode())
    parser.data.pop("csrfmiddlewaretoken", None)
    return {key: value.removeprefix("\n") for key, value in parser.data.items()}


def change_url(activity):
    return reverse("admin:activities_activity_change", args=[activity.pk])


def advanced_url(activity):
    """The JSON view for engineers; the change page is the builder (tests/activities/test_builder.py)."""
    return reverse("admin:activities_activity_advanced", args=[activity.pk])


# --- the advanced (JSON) view -----------------------------------------------------------------


def test_the_advanced_view_shows_every_problem_of_a_bad_step_list_on_the_steps_field(admin_client, cart):
    data = form_of(admin_client.get(advanced_url(cart)))
    data["steps"] = json.dumps([{"type": "wait"}, {"type": "send", "channel": "email", "template": "nope"}])

    response = admin_client.post(advanced_url(cart), data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["steps"] == [
        "steps[0]: give a duration in days, hours or minutes",
        "steps[1]: there is no e-mail template 'nope'",
    ]
    assert "give a duration in days, hours or minutes" in response.content.decode()
    cart.refresh_from_db()
    assert (cart.version, cart.steps[0]) == (1, {"type": "wait", "hours": 1})


def test_the_advanced_view_shows_a_bad_trigger_on_the_trigger_field(admin_client, cart):
    data = form_of(admin_client.get(advanced_url(cart)))
    data["trigger"] = json.dumps({"type": "webhook"})
    response = admin_client.post(advanced_url(cart), data)
    assert response.context["form"].errors["trigger"] == [
        "trigger.type must be event, date or threshold, not 'webhook'"
    ]


def test_a_good_edit_in_the_advanced_view_saves_a_new_version(admin_client, cart):
    data = form_of(admin_client.get(advanced_url(cart)))
    data["steps"] = json.dumps(
        [{"type": "wait", "hours": 2}, {"type": "send", "channel": "email", "template": "cart-reminder"}]
    )
    response = admin_client.post(advanced_url(cart), data)
    assert response.status_code == 302
    cart.refresh_from_db()
    assert (cart.version, cart.steps[0]) == (2, {"type": "wait", "hours": 2})


def test_the_advanced_view_edits_json_indented(admin_client, cart):
    data = form_of(admin_client.get(advanced_url(cart)))
    assert json.loads(data["steps"]) == cart.steps
    assert data["steps"] == json.dumps(json.loads(data["steps"]), indent=2)
    assert data["goal"] == '{\n  "event": "order_placed"\n}'


def test_invalid_json_in_the_advanced_view_is_kept_in_the_field_with_its_error(admin_client, cart):
    data = form_of(admin_client.get(advanced_url(cart)))
    data["steps"] = '[{"type": "wait", "hours": 1},]'
    response = admin_client.post(advanced_url(cart), data)
    assert response.context["form"].errors["steps"] == ["Enter a valid JSON."]
    assert form_of(response)["steps"] == '[{"type": "wait", "hours": 1},]'


def test_versions_show_their_definition_as_indented_json(admin_client, cart):
    page = admin_client.get(change_url(cart)).content.decode()
    definition = ActivityVersion.objects.get(activity=cart).definition
    assert f"<pre>{escape(json.dumps(definition, indent=2))}</pre>" in page


# --- export ---------------------------------------------------------------------------


def test_the_change_form_has_an_export_button_that_downloads_the_file(admin_client, cart):
    export_url = reverse("admin:activities_activity_export", args=[cart.pk])
    assert f'href="{export_url}"' in admin_client.get(change_url(cart)).content.decode()

    response = admin_client.get(export_url)

    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="cart-reminder.json"'
    assert json.loads(response.content) == spec.dump(cart)


def test_exporting_an_unknown_activity_is_not_found(admin_client):
    assert admin_client.get(reverse("admin:activities_activity_export", args=[999])).status_code == 404


def test_the_export_action_downloads_one_file_for_one_activity(admin_client, cart):
    response = admin_client.post(
        reverse("admin:activities_activity_changelist"), {"action": "export_files", "_selected_action": [cart.pk]}
    )
    assert response["Content-Disposition"] == 'attachment; filename="cart-reminder.json"'
    assert json.loads(response.content) == spec.dump(cart)


def test_the_export_action_zips_several_activities_one_file_each(admin_client, cart):
    other = factories.welcome_activity(template=factories.email_template("welcome"))
    response = admin_client.post(
        reverse("admin:activities_activity_changelist"),
        {"action": "export_files", "_selected_action": [cart.pk, other.pk]},
    )
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        assert sorted(bundle.namelist()) == ["cart-reminder.json", "welcome.json"]
        assert json.loads(bundle.read("welcome.json")) == spec.dump(other)


# --- import ---------------------------------------------------------------------------

IMPORT_URL = "admin:activities_activity_import"


def upload(client, name, content):
    return client.post(reverse(IMPORT_URL), {"file": SimpleUploadedFile(name, content.encode())}, follow=True)


def test_the_changelist_links_to_the_import_page(admin_client):
    page = admin_client.get(reverse("admin:activities_activity_changelist")).content.decode()
    assert f'href="{reverse(IMPORT_URL)}"' in page
    assert admin_client.get(reverse(IMPORT_URL)).status_code == 200


def test_importing_a_file_creates_the_activity_and_opens_it(admin_client, contents):
    data = {
        "name": "Cart reminder",
        "trigger": {"type": "event", "event": "cart_updated"},
        "steps": [{"type": "send", "channel": "email", "template": "cart-reminder"}],
    }

    response = upload(admin_client, "cart.json", json.dumps(data))

    activity = Activity.objects.get()
    assert response.redirect_chain[-1][0] == change_url(activity)
    assert "Cart reminder: created, version 1" in [str(m) for m in response.context["messages"]]


def test_importing_a_changed_export_updates_to_a_new_version(admin_client, cart):
    exported = spec.dump(cart)
    exported["steps"][0] = {"type": "wait", "hours": 3}
    response = upload(admin_client, "cart.json", json.dumps(exported))
    assert "Cart reminder: updated, now version 2" in [str(m) for m in response.context["messages"]]
    assert ActivityVersion.objects.filter(activity=cart).count() == 2


def test_importing_yaml(admin_client, cart):
    response = upload(admin_client, "cart.yaml", files.render(cart, file_format=files.FileFormat.YAML))
    assert "Cart reminder: unchanged, version 1" in [str(m) for m in response.context["messages"]]


def test_a_bad_file_is_refused_with_every_problem_listed_and_nothing_saved(admin_client, contents):
    data = {
        "name": "Broken",
        "trigger": {"type": "event"},
        "colour": "red",
        "steps": [{"type": "wait"}, {"type": "send", "channel": "email", "template": "nope"}],
    }

    response = upload(admin_client, "broken.json", json.dumps(data))

    assert response.status_code == 200
    assert response.context["problems"] == [
        "unknown key 'colour'",
        'trigger: name the event, e.g. "event": "cart_updated"',
        "steps[0]: give a duration in days, hours or minutes",
        "steps[1]: there is no e-mail template 'nope'",
    ]
    page = response.content.decode()
    assert "broken.json was refused; nothing was saved" in page
    assert "<li>steps[1]: there is no e-mail template &#x27;nope&#x27;</li>" in page
    assert not Activity.objects.exists()


def test_a_syntax_error_is_shown_with_its_line(admin_client):
    response = upload(admin_client, "cart.json", '{"name": "x",\n "steps": [}')
    assert response.context["problems"] == ["line 2, column 12: JSON syntax error: Expecting value"]


def test_a_file_of_another_kind_is_refused_naming_the_extensions(admin_client):
    response = upload(admin_client, "cart.txt", "{}")
    assert response.context["problems"] == ["name the file .json, .yaml or .yml so its format is known, not 'cart.txt'"]


def test_staff_who_may_only_view_activities_cannot_import(client):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_activity"))
    client.force_login(viewer)
    assert client.get(reverse(IMPORT_URL)).status_code == 403
    assert (
        'href="/admin/activities/activity/import/"'
        not in client.get(reverse("admin:activities_activity_changelist")).content.decode()
    )
