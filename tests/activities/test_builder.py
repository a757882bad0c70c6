"""The activity builder: an activity's change page built from choices, read back exactly.

The pages are read and posted as a browser would (tests/activities/builder_pages.py), so
a field the template names differently from what the builder reads fails here.
"""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from activities import spec
from activities.builder import Builder
from activities.models import Activity, ActivityStatus
from customers.models import Event
from examples.storefront import demo
from tests import factories
from tests.activities.builder_pages import ADD_URL, change_url, posted

pytestmark = pytest.mark.django_db

EXAMPLES = demo.example_files()


def press(client, url, data, action):
    """A palette button: the page again with the blocks changed, nothing saved."""
    response = client.post(url, {**data, "_builder": action})
    assert response.status_code == 200
    return response, posted(response)


def new_page(client):
    return posted(client.get(ADD_URL))


# --- what the page is -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["add", "change"])
def test_the_add_and_change_pages_have_no_json_text_box(admin_client, url):
    demo.create_example_content()
    activity = spec.load(json.loads((demo.EXAMPLES_DIR / "cart-abandonment.json").read_text()))
    page = admin_client.get(ADD_URL if url == "add" else change_url(activity)).content.decode()
    assert "<textarea" not in page.split('id="builder"')[1]  # the description is the page's one text area
    for part in ("trigger", "target", "goal", "steps", "send_rules"):
        assert f'name="{part}"' not in page
    assert 'id="block-when"' in page and 'id="block-who"' in page and 'id="block-goal"' in page


def test_the_page_reads_top_to_bottom_when_who_steps_goal_in_words(admin_client):
    demo.create_example_content()
    activity = spec.load(json.loads((demo.EXAMPLES_DIR / "birthday.json").read_text()))
    page = admin_client.get(change_url(activity)).content.decode()
    when, who, steps = page.index('id="block-when"'), page.index('id="block-who"'), page.index('id="block-steps"')
    assert when < who < steps < page.index('id="block-goal"')
    assert (
        "7 days before the customer&#x27;s date of birth, every year, at 10:00 in the customer&#x27;s own time zone"
    ) in page
    assert "consent.sms is true" in page or "Agreed to marketing SMS" in page


# --- the definition survives the page ---------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_saving_an_example_unchanged_keeps_its_definition_and_version(admin_client, path):
    demo.create_example_content()
    activity = spec.load(json.loads(path.read_text()))
    before = activity.definition()

    response = admin_client.post(change_url(activity), posted(admin_client.get(change_url(activity))))

    assert response.status_code == 302, response.context["adminform"].form.errors
    activity.refresh_from_db()
    assert activity.definition() == before
    assert activity.version == 1


def test_a_nested_target_the_rows_cannot_show_is_kept_whole_and_said_in_words(admin_client):
    factories.email_template("hello")
    target = [
        {
            "any": [
                {"field": "country", "op": "eq", "value": "IT"},
                {"not": [{"field": "age", "op": "lt", "value": 18}, {"field": "language", "op": "eq", "value": "it"}]},
            ]
        }
    ]
    activity = spec.load(
        {
            "name": "Nested",
            "trigger": {"type": "event", "event": "x"},
            "target": target,
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    page = admin_client.get(change_url(activity))
    assert "groups inside groups" in page.content.decode()
    assert admin_client.post(change_url(activity), posted(page)).status_code == 302
    activity.refresh_from_db()
    assert (activity.target, activity.version) == (target, 1)


# --- building with the palette ------------------------------------------------------------


def test_a_birthday_sms_is_built_from_choices_only(admin_client):
    factories.sms_content("bday", text="Happy birthday {{ customer.first_name }}! {{ coupon.code }} gives 10% off.")
    data = new_page(admin_client)
    data.update({"name": ["Birthday SMS"], "trigger-type": ["date"]})
    _, data = press(admin_client, ADD_URL, data, "noop")  # the date trigger's fields appear
    data.update(
        {
            "trigger-offset": ["7"],
            "trigger-direction": ["before"],
            "trigger-field": ["date_of_birth"],
            "trigger-recurrence": ["yearly"],
            "trigger-at": ["10:00"],
        }
    )
    _, data = press(admin_client, ADD_URL, data, "row:target")
    data.update({"target-0-field": ["consent.sms"]})
    _, data = press(admin_client, ADD_URL, data, "noop")
    data.update({"target-0-op": ["is"], "target-0-value": ["true"]})
    _, data = press(admin_client, ADD_URL, data, "add:issue_coupon::")
    coupon = data["step"][0]
    data.update({f"step-{coupon}-value": ["10"], f"step-{coupon}-valid_days": ["14"]})
    _, data = press(admin_client, ADD_URL, data, "add:send::")
    send = data["step"][1]
    data[f"step-{send}-channel"] = ["sms"]
    _, data = press(admin_client, ADD_URL, data, "noop")
    data[f"step-{send}-content"] = ["bday"]
    data["reentry"] = ["always"]
    assert Activity.objects.count() == 0  # nothing saved by the palette

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    activity = Activity.objects.get(name="Birthday SMS")
    assert activity.definition() == {
        "category": "marketing",
        "trigger": {"type": "date", "field": "date_of_birth", "offset_days": -7, "recurrence": "yearly", "at": "10:00"},
        "target": [{"field": "consent.sms", "op": "is", "value": True}],
        "goal": {},
        "steps": [
            {"type": "issue_coupon", "percent_off": 10, "valid_days": 14},
            {"type": "send", "channel": "sms", "content": "bday"},
        ],
        "send_rules": {},
        "reentry": "always",
        "reentry_days": None,
    }
    assert activity.status == ActivityStatus.DRAFT


def test_a_branch_gets_two_lanes_and_steps_go_into_the_lane_they_were_added_to(admin_client):
    factories.email_template("vip")
    factories.email_template("everyone")
    data = new_page(admin_client)
    data.update({"name": ["Branching"], "trigger-event": ["order_placed"]})
    _, data = press(admin_client, ADD_URL, data, "add:branch::")
    branch = data["step"][0]
    data.update({f"step-{branch}-if-0-field": ["orders.count"]})
    _, data = press(admin_client, ADD_URL, data, "noop")
    data.update({f"step-{branch}-if-0-op": ["gte"], f"step-{branch}-if-0-value": ["5"]})
    _, data = press(admin_client, ADD_URL, data, f"add:send:{branch}:then")
    _, data = press(admin_client, ADD_URL, data, f"add:send:{branch}:else")
    then_step, else_step = data["step"][1], data["step"][2]
    data.update({f"step-{then_step}-template": ["vip"], f"step-{else_step}-template": ["everyone"]})
    _, data = press(admin_client, ADD_URL, data, "add:exit::")

    assert admin_client.post(ADD_URL, data).status_code == 302
    assert Activity.objects.get(name="Branching").steps == [
        {
            "type": "branch",
            "if": [{"field": "orders.count", "op": "gte", "value": 5}],
            "then": [{"type": "send", "channel": "email", "template": "vip"}],
            "else": [{"type": "send", "channel": "email", "template": "everyone"}],
        },
        {"type": "exit"},
    ]


def test_steps_move_up_and_down_and_are_removed(admin_client):
    data = new_page(admin_client)
    for kind in ("wait", "exit", "wait_for_event"):
        _, data = press(admin_client, ADD_URL, data, f"add:{kind}::")
    first, second, third = data["step"]
    _, data = press(admin_client, ADD_URL, data, f"down:{first}")
    assert data["step"] == [second, first, third]
    _, data = press(admin_client, ADD_URL, data, f"up:{third}")
    assert data["step"] == [second, third, first]
    _, data = press(admin_client, ADD_URL, data, f"remove:{third}")
    assert data["step"] == [second, first]
    assert [data[f"step-{one}-type"] for one in data["step"]] == [["exit"], ["wait"]]


def test_send_rules_are_chosen_as_times_a_checkbox_caps_and_regions(admin_client):
    factories.email_template("hello")
    data = new_page(admin_client)
    data.update({"name": ["Rules"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:send::")
    data[f"step-{data['step'][0]}-template"] = ["hello"]
    _, data = press(admin_client, ADD_URL, data, "cap")
    data.update(
        {
            "rules-start": ["09:30"],
            "rules-end": ["18:00"],
            "rules-no_weekends": ["on"],
            "cap-0-count": ["2"],
            "cap-0-amount": ["7"],
            "cap-0-channel": ["email"],
            "rules-regions": ["Asia", "Australia", "JP"],
        }
    )
    assert admin_client.post(ADD_URL, data).status_code == 302
    assert Activity.objects.get(name="Rules").send_rules == {
        "send_window": {"start": "09:30", "end": "18:00", "no_weekends": True},
        "caps": [{"channel": "email", "category": "marketing", "count": 2, "days": 7}],
        "excluded_regions": ["Asia", "Australia", "JP"],
    }


# --- what the marketer typed wrong ----------------------------------------------------------


@pytest.mark.parametrize("typed", ["ten", "NaN", "inf", "1e400", "10\ufffd", "", "99999999999999999999"])
def test_a_discount_that_is_not_a_number_is_said_on_its_step_and_nothing_is_saved(admin_client, typed):
    data = new_page(admin_client)
    data.update({"name": ["Coupon"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:issue_coupon::")
    data[f"step-{data['step'][0]}-value"] = [typed]

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Step 1 (issue a coupon), discount:" in page
    assert Activity.objects.count() == 0


def test_a_send_step_without_content_names_the_step_and_what_to_choose(admin_client):
    data = new_page(admin_client)
    data.update({"name": ["Empty send"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:send::")
    response = admin_client.post(ADD_URL, data)
    assert "Step 1 (send a message): choose the e-mail template to send" in response.content.decode()
    assert Activity.objects.count() == 0


def test_a_spec_problem_is_written_with_the_step_number_a_person_sees(admin_client):
    data = new_page(admin_client)
    data.update({"name": ["No template"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:wait::")
    wait = data["step"][0]
    data[f"step-{wait}-amount"] = ["0"]
    response = admin_client.post(ADD_URL, data)
    assert "Step 1: the duration must be more than zero" in response.content.decode()


def test_forged_step_ids_and_types_are_ignored_not_a_500(admin_client):
    data = new_page(admin_client)
    data.update(
        {
            "name": ["Forged"],
            "trigger-event": ["x"],
            "step": ["1", "abc", "1", "2"],
            "step-1-type": ["exit"],
            "step-1-parent": ["1"],
            "step-2-type": ["rm -rf"],
        }
    )
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302
    assert Activity.objects.get(name="Forged").steps == [{"type": "exit"}]


def test_unknown_palette_actions_change_nothing(admin_client):
    data = new_page(admin_client)
    for action in ("add:nope::", "up:999", "remove:x", "row:nowhere", "unrow:target:5", "uncap:7", "\ufffd", ""):
        response, after = press(admin_client, ADD_URL, data, action)
        assert after.get("step", []) == data.get("step", [])


# --- activation -----------------------------------------------------------------------------


def test_activating_with_warnings_needs_them_confirmed(admin_client):
    factories.email_template("hello")
    activity = spec.load(
        {
            "name": "Unseen event",
            "status": "draft",
            "trigger": {"type": "event", "event": "birthday"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    data = posted(admin_client.get(change_url(activity)))

    refused = admin_client.post(change_url(activity), {**data, "_activate": "Save and activate"})

    assert refused.status_code == 200
    assert "tick" in refused.content.decode() and "I have read the warnings" in refused.content.decode()
    activity.refresh_from_db()
    assert activity.status == ActivityStatus.DRAFT

    confirmed = admin_client.post(change_url(activity), {**data, "_activate": "x", "confirm_warnings": "on"})
    assert confirmed.status_code == 302
    activity.refresh_from_db()
    assert activity.status == ActivityStatus.ACTIVE


def test_the_list_action_does_not_activate_an_activity_with_warnings(admin_client):
    factories.email_template("hello")
    activity = spec.load(
        {
            "name": "Unseen",
            "status": "draft",
            "trigger": {"type": "event", "event": "birthday"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    response = admin_client.post(
        "/admin/activities/activity/", {"action": "activate", "_selected_action": [activity.pk]}, follow=True
    )
    assert "not activated" in response.content.decode()
    activity.refresh_from_db()
    assert activity.status == ActivityStatus.DRAFT


# --- estimate, export/import, advanced --------------------------------------------------------


def test_the_estimate_counts_the_target_being_edited(admin_client):
    factories.customer(email="a@example.com", country="IT")
    factories.customer(email="b@example.com", country="FR")
    data = new_page(admin_client)
    _, data = press(admin_client, ADD_URL, data, "row:target")
    data.update({"target-0-field": ["country"], "target-0-op": ["eq"], "target-0-value": ["IT"]})
    response = admin_client.post("/admin/activities/activity/estimate/", data)
    assert response.status_code == 200
    assert '<strong class="estimate-matching">1</strong> customer match' in response.content.decode()


def test_the_estimate_needs_the_activity_permissions(client):
    client.force_login(User.objects.create_user("nobody", password="x", is_staff=True))
    assert client.post("/admin/activities/activity/estimate/", {}).status_code == 403


def test_built_exported_and_imported_again_gives_the_same_definition(admin_client):
    demo.create_example_content()
    data = new_page(admin_client)
    data.update({"name": ["Built"], "trigger-event": ["order_placed"], "goal-event": ["review_written"]})
    _, data = press(admin_client, ADD_URL, data, "add:wait::")
    data[f"step-{data['step'][0]}-amount"] = ["3"]
    _, data = press(admin_client, ADD_URL, data, "add:send::")
    data[f"step-{data['step'][1]}-template"] = ["welcome"]
    assert admin_client.post(ADD_URL, data).status_code == 302
    built = Activity.objects.get(name="Built")

    exported = json.loads(admin_client.get(f"/admin/activities/activity/{built.pk}/export/").content)
    imported = spec.load({**exported, "name": "Built again"})

    assert imported.definition() == built.definition()
    assert spec.load(exported).version == built.version  # the same file again: nothing changed


def test_the_advanced_view_shows_the_definition_as_json_and_saves_checked_edits(admin_client):
    factories.email_template("hello")
    activity = spec.load(
        {
            "name": "Adv",
            "trigger": {"type": "event", "event": "x"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    url = f"/admin/activities/activity/{activity.pk}/advanced/"
    data = {name: value for name, value in posted(admin_client.get(url)).items()}
    assert json.loads(data["steps"][0]) == activity.steps

    data["steps"] = [json.dumps([{"type": "wait", "days": 0}])]
    refused = admin_client.post(url, data)
    assert "the duration must be more than zero" in refused.content.decode()

    data["steps"] = [
        json.dumps([{"type": "wait", "days": 1}, {"type": "send", "channel": "email", "template": "hello"}])
    ]
    assert admin_client.post(url, data).status_code == 302
    activity.refresh_from_db()
    assert (activity.steps[0], activity.version) == ({"type": "wait", "days": 1}, 2)


def test_someone_who_may_only_view_sees_the_advanced_view_but_cannot_save_it(client):
    factories.email_template("hello")
    activity = spec.load(
        {
            "name": "Adv",
            "trigger": {"type": "event", "event": "x"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_activity"))
    client.force_login(viewer)
    url = f"/admin/activities/activity/{activity.pk}/advanced/"
    assert client.get(url).status_code == 200
    client.post(url, {"trigger": "{}", "steps": "[]"})
    activity.refresh_from_db()
    assert activity.version == 1


def test_the_builder_reads_every_example_back_to_its_definition():
    demo.create_example_content()
    for path in EXAMPLES:
        definition = spec.load(json.loads(path.read_text())).definition()
        parts, problems = Builder.from_definition(definition).definition_parts()
        assert problems == []
        assert {key: definition[key] for key in parts} == parts, path.name


def test_a_lone_surrogate_posted_as_bytes_is_an_error_on_the_field_not_a_500(admin_client):
    data = new_page(admin_client)
    _, data = press(admin_client, ADD_URL, data, "add:issue_coupon::")
    step = data["step"][0]
    body = "&".join(
        f"{name}={value}" for name, values in data.items() for value in values if name != f"step-{step}-value"
    )
    response = admin_client.post(
        ADD_URL,
        body + f"&name=S&trigger-event=%ED%A0%80&step-{step}-value=%ED%A0%80",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Step 1 (issue a coupon), discount:" in response.content.decode()
    assert Activity.objects.count() == 0


# --- what the blocks offer -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_event_names():
    from activities import builder_admin

    builder_admin._events_read.clear()
    yield
    builder_admin._events_read.clear()


def test_the_event_list_offers_the_names_this_site_saw_with_their_counts_and_the_signals(admin_client):
    customer = factories.customer()
    for _ in range(3):
        Event.objects.create(customer=customer, name="webinar_registered", properties={}, occurred_at=timezone.now())
    page = admin_client.get(ADD_URL).content.decode()
    datalist = page.split('<datalist id="known-events">')[1].split("</datalist>")[0]
    assert '<option value="webinar_registered">3 in 30 days</option>' in datalist
    assert 'value="order_placed"' in datalist and "sent by the storefront" in datalist


def test_a_date_trigger_offers_the_attributes_that_hold_dates(admin_client):
    factories.customer(attributes={"delivery_date": "2026-05-01", "nickname": "Bo"})
    data = new_page(admin_client)
    data["trigger-type"] = ["date"]
    response, _ = press(admin_client, ADD_URL, data, "noop")
    field = response.content.decode().split('name="trigger-field"')[1].split("</select>")[0]
    assert 'value="attributes.delivery_date"' in field and "nickname" not in field


def test_a_country_condition_offers_the_countries_to_pick(admin_client):
    data = new_page(admin_client)
    _, data = press(admin_client, ADD_URL, data, "row:target")
    data.update({"target-0-field": ["country"], "target-0-op": ["in"]})
    response, _ = press(admin_client, ADD_URL, data, "noop")
    values = response.content.decode().split('name="target-0-value"')[1].split("</select>")[0]
    assert "multiple" in values.split(">")[0] and 'value="AU"' in values


# --- what the builder cannot show is kept, not changed ---------------------------------------

ODD_BUT_VALID = {
    "a wait for an event with conditions on it": {
        "trigger": {"type": "event", "event": "x"},
        "steps": [
            {
                "type": "wait_for_event",
                "event": "order_placed",
                "where": [{"field": "properties.total", "op": "gt", "value": 20}],
                "timeout_days": 3,
            },
            {"type": "send", "channel": "email", "template": "hello"},
        ],
    },
    "a time zone among the excluded regions": {
        "trigger": {"type": "event", "event": "x"},
        "send_rules": {"excluded_regions": ["America/Sao_Paulo", "Asia"]},
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
    "a wait of days and hours": {
        "trigger": {"type": "event", "event": "x"},
        "steps": [{"type": "wait", "days": 1, "hours": 12}, {"type": "send", "channel": "email", "template": "hello"}],
    },
    "a wait until with hours and minutes": {
        "trigger": {"type": "event", "event": "x"},
        "steps": [
            {"type": "wait_until", "field": "properties.starts_at", "offset_hours": -1, "offset_minutes": -30},
            {"type": "send", "channel": "email", "template": "hello"},
        ],
    },
    "a cap over days and hours": {
        "trigger": {"type": "event", "event": "x"},
        "send_rules": {"caps": [{"channel": "email", "category": "marketing", "count": 1, "days": 1, "hours": 12}]},
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
    "a value with a comma in a list": {
        "trigger": {"type": "event", "event": "x"},
        "target": [{"field": "attributes.code", "op": "in", "value": ["a, b", "c"]}],
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
    "a date trigger without its time or recurrence": {
        "trigger": {"type": "date", "field": "date_of_birth"},
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
    "a threshold without its direction": {
        "trigger": {"type": "threshold", "field": "attributes.points", "value": 100},
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
    "a branch without an else": {
        "trigger": {"type": "event", "event": "x"},
        "steps": [
            {
                "type": "branch",
                "if": [{"field": "country", "op": "eq", "value": "IT"}],
                "then": [{"type": "send", "channel": "email", "template": "hello"}],
            }
        ],
    },
    "a window of days on an orders condition": {
        "trigger": {"type": "event", "event": "x"},
        "target": [{"field": "orders.count", "op": "gte", "value": 1, "days": 30}],
        "steps": [{"type": "send", "channel": "email", "template": "hello"}],
    },
}


@pytest.mark.parametrize("case", ODD_BUT_VALID, ids=list(ODD_BUT_VALID))
def test_saving_unchanged_keeps_what_the_builder_cannot_show(admin_client, case):
    factories.email_template("hello")
    activity = spec.load({"name": "Odd", **ODD_BUT_VALID[case]})
    before = activity.definition()

    response = admin_client.post(
        change_url(activity), {**posted(admin_client.get(change_url(activity))), "_continue": "x"}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    activity.refresh_from_db()
    assert (activity.definition(), activity.version) == (before, 1)


def test_a_kept_step_can_be_edited_here_anyway_and_a_kept_trigger_too(admin_client):
    factories.email_template("hello")
    activity = spec.load({"name": "Odd", **ODD_BUT_VALID["a wait of days and hours"]})
    data = posted(admin_client.get(change_url(activity)))
    wait = data["step"][0]
    assert f"step-{wait}-kept" in data
    _, data = press(admin_client, change_url(activity), data, f"unkeep:{wait}")
    assert f"step-{wait}-kept" not in data and data[f"step-{wait}-amount"] == ["1"]


def test_the_estimate_of_a_page_with_an_unfinished_step_names_what_is_missing_not_a_500(admin_client):
    data = new_page(admin_client)
    _, data = press(admin_client, ADD_URL, data, "add:send::")
    _, data = press(admin_client, ADD_URL, data, "add:wait::")
    response = admin_client.post("/admin/activities/activity/estimate/", data)
    assert response.status_code == 200
    assert "customer" in response.content.decode()


def test_switching_the_trigger_type_and_back_keeps_the_event_and_its_conditions(admin_client):
    data = new_page(admin_client)
    data["trigger-event"] = ["cart_updated"]
    _, data = press(admin_client, ADD_URL, data, "row:trigger-where")
    data.update(
        {
            "trigger-where-0-field": ["properties.<name>"],
            "trigger-where-0-name": ["total"],
            "trigger-where-0-op": ["gte"],
            "trigger-where-0-value": ["20"],
        }
    )
    for kind in ("date", "threshold", "event"):
        data["trigger-type"] = [kind]
        _, data = press(admin_client, ADD_URL, data, "noop")
    assert data["trigger-event"] == ["cart_updated"]
    assert data["trigger-where-0-name"] == ["total"] and data["trigger-where-0-value"] == ["20"]


def test_a_new_condition_on_a_field_with_a_list_of_values_waits_for_a_choice(admin_client):
    data = new_page(admin_client)
    data.update({"name": ["Chosen"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "row:target")
    data["target-0-field"] = ["country"]
    _, data = press(admin_client, ADD_URL, data, "noop")
    assert data["target-0-value"] == [""]
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 200 and Activity.objects.count() == 0


@pytest.mark.parametrize(
    "field, typed",
    [
        ("amount", "999999999999999"),
        ("amount", "3651"),
    ],
)
def test_a_wait_of_a_million_years_is_an_error_not_a_500(admin_client, field, typed):
    data = new_page(admin_client)
    data.update({"name": ["Long"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:wait::")
    data[f"step-{data['step'][0]}-{field}"] = [typed]
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 200
    assert "Step 1 (wait), how long: at most 3,650" in response.content.decode()


def test_a_problem_is_said_once_in_the_words_of_the_page_not_the_files(admin_client):
    data = new_page(admin_client)
    data.update({"name": ["Missing"], "trigger-event": ["x"]})
    _, data = press(admin_client, ADD_URL, data, "add:wait::")
    data[f"step-{data['step'][0]}-amount"] = ["0"]
    page = admin_client.post(ADD_URL, data).content.decode()
    assert "steps[0]" not in page
    assert "Step 1: the duration must be more than zero" in page


def test_enter_in_a_text_field_saves_rather_than_pressing_a_palette_button(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    form = page[page.index('id="activity_form"') :]
    first_submit = form[form.index('type="submit"') :][:200]
    assert 'name="_continue"' in first_submit


def test_the_checks_stay_on_the_page_after_a_palette_button(admin_client):
    factories.email_template("hello")
    factories.customer()
    activity = spec.load(
        {
            "name": "Unseen",
            "status": "draft",
            "trigger": {"type": "event", "event": "birthday"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    response, _ = press(admin_client, change_url(activity), posted(admin_client.get(change_url(activity))), "cap")
    page = response.content.decode()
    assert 'class="finding finding-warning"' in page and "I have read the warnings" in page
    assert 'id="block-rules" open' in page  # the cap just added is in sight


def test_steps_whose_parents_point_at_each_other_are_kept_at_the_end_not_dropped(admin_client):
    data = new_page(admin_client)
    data.update(
        {
            "name": ["Loop"],
            "trigger-event": ["x"],
            "step": ["1", "2"],
            "step-1-type": ["branch"],
            "step-1-parent": ["2"],
            "step-1-arm": ["then"],
            "step-1-if-row": ["0"],
            "step-1-if-0-field": ["country"],
            "step-1-if-0-op": ["eq"],
            "step-1-if-0-value": ["IT"],
            "step-2-type": ["branch"],
            "step-2-parent": ["1"],
            "step-2-arm": ["then"],
            "step-2-if-row": ["0"],
            "step-2-if-0-field": ["country"],
            "step-2-if-0-op": ["eq"],
            "step-2-if-0-value": ["FR"],
        }
    )
    _, after = press(admin_client, ADD_URL, data, "noop")
    assert set(after["step"]) == {"1", "2"}


def test_a_nul_in_an_event_name_is_refused_in_words(admin_client):
    data = new_page(admin_client)
    data.update({"name": ["Nul"], "trigger-event": ["cart\x00updated"]})
    _, data = press(admin_client, ADD_URL, data, "add:exit::")
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 200
    assert "cannot be stored" in response.content.decode()
    assert Activity.objects.count() == 0


def test_the_advanced_view_refuses_what_the_builder_refuses(admin_client):
    factories.email_template("coupon-mail", html_body="Your code {{ coupon.code }}")
    factories.email_template("hello")
    activity = spec.load(
        {
            "name": "Adv",
            "trigger": {"type": "event", "event": "x"},
            "steps": [{"type": "send", "channel": "email", "template": "hello"}],
        }
    )
    url = f"/admin/activities/activity/{activity.pk}/advanced/"
    data = posted(admin_client.get(url))
    data["steps"] = [json.dumps([{"type": "send", "channel": "email", "template": "coupon-mail"}])]
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "coupon.code" in response.content.decode()
    activity.refresh_from_db()
    assert activity.version == 1


def test_importing_a_file_the_builder_would_refuse_is_refused_with_the_reason(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    factories.email_template("coupon-mail", html_body="Your code {{ coupon.code }}")
    upload = SimpleUploadedFile(
        "a.json",
        json.dumps(
            {
                "name": "Coupon-less",
                "trigger": {"type": "event", "event": "x"},
                "steps": [{"type": "send", "channel": "email", "template": "coupon-mail"}],
            }
        ).encode(),
    )
    response = admin_client.post("/admin/activities/activity/import/", {"file": upload})
    assert response.status_code == 200 and "coupon.code" in response.content.decode()
    assert not Activity.objects.filter(name="Coupon-less").exists()
