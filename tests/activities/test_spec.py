"""Activity files: every problem listed at once, load/versions, dump round trips, the commands, the README."""

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from activities import engine, files, spec
from activities.models import Activity, ActivityStatus, ActivityVersion, CouponPool, EnrollmentState, TriggerType
from activities.steps import STEPS
from customers.models import Segment
from tests import factories

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "docs" / "activities.md"  # where the reference lives


@pytest.fixture
def contents():
    factories.email_template("cart-reminder")
    factories.sms_content("cart-discount", text="Your code {{ coupon.code }}")


def cart_file(**changes) -> dict:
    """The cart reminder of the README, with ``changes``."""
    data = {
        "name": "Cart reminder",
        "category": "marketing",
        "trigger": {
            "type": "event",
            "event": "cart_updated",
            "where": [{"field": "properties.total", "op": "gte", "value": 20}],
        },
        "target": [{"field": "country", "op": "in", "value": ["US", "IT"]}],
        "reentry": {"policy": "after_days", "days": 30},
        "goal": {"event": "order_placed"},
        "steps": [
            {"type": "wait", "hours": 1},
            {"type": "send", "channel": "email", "template": "cart-reminder"},
            {"type": "wait", "hours": 24},
            {"type": "issue_coupon", "percent_off": 10, "prefix": "CART"},
            {"type": "send", "channel": "sms", "content": "cart-discount"},
        ],
    }
    return {**data, **changes}


# --- problems_in: every problem at once -------------------------------------------------


def test_a_bad_file_lists_every_problem_at_once(contents, settings):
    settings.TRIGGERHUB_SMS_LONG_POLICY = "refuse"
    factories.sms_content("long-promo", text="x" * 161)
    data = cart_file(
        trigger={"type": "event"},
        target=[{"field": "favourite_colour", "op": "eq", "value": "red"}],
        reentry={"policy": "sometimes"},
        steps=[
            {"type": "send", "channel": "email", "template": "no-such-template"},
            {"type": "wait"},
            {"type": "send", "channel": "sms", "content": "long-promo"},
            {"type": "teleport"},
        ],
        colour="red",
    )

    problems = spec.problems_in(data)

    assert "unknown key 'colour'" in problems
    assert 'trigger: name the event, e.g. "event": "cart_updated"' in problems
    assert any(p.startswith("target: ") and "unknown field 'favourite_colour'" in p for p in problems)
    assert "steps[0]: there is no e-mail template 'no-such-template'" in problems
    assert "steps[1]: give a duration in days, hours or minutes" in problems
    assert (
        "steps[2]: SMS content 'long-promo' is 2 parts (161 GSM-7 units) and the site refuses SMS over one part"
        in problems
    )
    assert any(p.startswith("steps[3]: unknown step type 'teleport'") for p in problems)
    assert any(p.startswith("reentry.policy must be one of") for p in problems)
    assert len(problems) == 8


def test_a_long_sms_is_a_problem_only_when_the_site_refuses_long_sms(contents, settings):
    factories.sms_content("long-promo", text="x" * 161)
    data = cart_file(steps=[{"type": "send", "channel": "sms", "content": "long-promo"}])
    settings.TRIGGERHUB_SMS_LONG_POLICY = "split"
    assert spec.problems_in(data) == []
    settings.TRIGGERHUB_SMS_LONG_POLICY = "refuse"
    assert len(spec.problems_in(data)) == 1


@pytest.mark.parametrize(
    "trigger, problem",
    [
        ({"type": "webhook"}, "trigger.type must be event, date or threshold, not 'webhook'"),
        (
            {"type": "date", "field": "birthday"},
            "trigger.field must be date_of_birth or attributes.<name>, e.g. attributes.delivery_date",
        ),
        (
            {"type": "date", "field": "date_of_birth", "at": "25:00"},
            "trigger.at must be a local time such as 10:00, not '25:00'",
        ),
        (
            {"type": "date", "field": "date_of_birth", "recurrence": "weekly"},
            'trigger.recurrence must be "yearly", "once" or {"every_months": N} with N from 1 to 120',
        ),
        (
            {"type": "threshold", "field": "attributes.loyalty_points", "value": "1000"},
            "trigger.value must be a number (the line to cross)",
        ),
        (
            {"type": "threshold", "field": "attributes.loyalty_points", "value": 1000, "direction": "sideways"},
            "trigger.direction must be up or down",
        ),
    ],
)
def test_a_bad_trigger_is_named(contents, trigger, problem):
    assert spec.problems_in(cart_file(trigger=trigger)) == [problem]


def test_after_days_reentry_without_days_is_a_problem(contents):
    assert spec.problems_in(cart_file(reentry={"policy": "after_days"})) == [
        "reentry: after_days needs days, a whole number above zero"
    ]


def test_problems_inside_branches_name_their_place(contents):
    data = cart_file(
        steps=[
            {
                "type": "branch",
                "if": [{"field": "country", "op": "eq", "value": "IT"}],
                "then": [{"type": "wait", "minutes": 0}],
                "else": [{"type": "add_to_segment", "segment": "nope"}],
            }
        ]
    )
    assert spec.problems_in(data) == [
        "steps[0].then[0]: the duration must be more than zero",
        "steps[0].else[0]: there is no segment 'nope'",
    ]


@pytest.mark.parametrize("field, value", [("starts_at", "next tuesday"), ("ends_at", "2026-05-01T10:00:00")])
def test_a_start_or_end_that_is_not_a_moment_with_offset_is_a_problem(contents, field, value):
    [problem] = spec.problems_in(cart_file(**{field: value}))
    assert problem.startswith(f"{field} must be an ISO 8601 time with its offset")


def test_a_priority_that_is_not_a_whole_number_is_a_problem(contents):
    assert spec.problems_in(cart_file(priority="high")) == [
        "priority must be a whole number (higher runs first), not 'high'"
    ]


# --- load: create, versions -------------------------------------------------------------


def test_load_creates_the_activity_at_version_1(contents):
    activity = spec.load(cart_file())
    activity.refresh_from_db()
    assert (activity.name, activity.status, activity.version) == ("Cart reminder", ActivityStatus.ACTIVE, 1)
    assert activity.trigger_event == "cart_updated"
    assert (activity.reentry, activity.reentry_days) == ("after_days", 30)
    assert activity.current_version().steps == cart_file()["steps"]


def test_loading_a_changed_file_makes_version_2_and_running_enrollments_keep_version_1(contents):
    activity = spec.load(cart_file())
    waiting = engine.enroll(activity, factories.customer(country="US"))
    waiting.refresh_from_db()
    assert waiting.state == EnrollmentState.WAITING

    changed_steps = [{"type": "wait", "hours": 2}, *cart_file()["steps"][1:]]
    activity = spec.load(cart_file(steps=changed_steps))

    assert activity.version == 2
    waiting.refresh_from_db()
    assert waiting.version.number == 1
    assert waiting.version.steps[0] == {"type": "wait", "hours": 1}
    newcomer = engine.enroll(activity, factories.customer(country="IT"))
    assert newcomer.version.number == 2
    assert newcomer.version.steps[0] == {"type": "wait", "hours": 2}


def test_loading_the_same_file_again_keeps_the_version(contents):
    spec.load(cart_file())
    activity = spec.load(cart_file())
    assert activity.version == 1
    assert ActivityVersion.objects.count() == 1


def test_a_refused_file_changes_nothing_of_the_activity_it_names(contents):
    spec.load(cart_file())
    with pytest.raises(spec.SpecError):
        spec.load(cart_file(description="new words", steps=[{"type": "wait"}]))
    activity = Activity.objects.get()
    assert (activity.description, activity.version) == ("", 1)


def test_a_file_that_pauses_a_running_activity_holds_its_enrollments(contents):
    activity = spec.load(cart_file())
    enrollment = engine.enroll(activity, factories.customer(country="US"))
    spec.load(cart_file(status="paused"))
    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.HELD


def test_a_file_that_ends_an_activity_exits_its_enrollments(contents):
    activity = spec.load(cart_file())
    enrollment = engine.enroll(activity, factories.customer(country="US"))
    spec.load(cart_file(status="ended"))
    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.EXITED


def test_a_file_without_a_status_keeps_the_status_of_the_activity_it_updates(contents):
    spec.load(cart_file(status="paused"))
    activity = spec.load(cart_file(description="new words"))
    activity.refresh_from_db()
    assert activity.status == ActivityStatus.PAUSED


# --- dump: round trips ------------------------------------------------------------------


@pytest.fixture
def everything(contents):
    """An activity that uses every step type and most keys."""
    CouponPool.objects.create(slug="spring", name="Spring codes")
    Segment.objects.create(slug="cart-leavers", name="Cart leavers")
    return spec.load(
        cart_file(
            description="Every step there is",
            status="draft",
            priority=5,
            starts_at="2026-05-01T10:00:00+02:00",
            ends_at="2026-09-01T00:00:00+00:00",
            send_rules={"send_window": {"start": "10:00", "end": "19:00", "no_weekends": True}},
            steps=[
                {
                    "type": "send",
                    "channel": "email",
                    "template": "cart-reminder",
                    "category": "transactional",
                    "expires_after_hours": 12,
                },
                {"type": "wait", "days": 1, "hours": 2, "minutes": 3},
                {"type": "wait_until", "field": "properties.starts_at", "offset_hours": -1, "if_past": "exit"},
                {
                    "type": "wait_for_event",
                    "event": "order_placed",
                    "where": [{"field": "properties.total", "op": "gt", "value": 0}],
                    "timeout_days": 2,
                    "on_event": "exit",
                    "on_timeout": "continue",
                },
                {
                    "type": "branch",
                    "if": [{"field": "country", "op": "eq", "value": "IT"}],
                    "then": [{"type": "issue_coupon", "pool": "spring", "valid_days": 14}],
                    "else": [{"type": "issue_coupon", "prefix": "CART", "amount_off": 5, "valid_days": 7}],
                },
                {"type": "add_to_segment", "segment": "cart-leavers"},
                {"type": "remove_from_segment", "segment": "cart-leavers"},
                {"type": "send", "channel": "sms", "content": "cart-discount"},
                {"type": "exit", "note": "done"},
            ],
        )
    )


def test_dump_loads_back_as_the_same_activity_without_a_new_version(everything):
    dumped = spec.dump(Activity.objects.get(pk=everything.pk))
    again = spec.load(json.loads(json.dumps(dumped)))
    assert again.version == 1
    assert spec.dump(Activity.objects.get(pk=again.pk)) == dumped


def test_dump_loads_into_an_empty_database_as_the_same_activity(everything):
    activity = Activity.objects.get(pk=everything.pk)
    dumped = spec.dump(activity)
    activity.delete()
    copy = spec.load(dumped)
    assert spec.dump(Activity.objects.get(pk=copy.pk)) == dumped
    assert copy.starts_at == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("file_format", list(files.FileFormat))
def test_rendered_files_parse_back_to_the_dump(everything, file_format):
    activity = Activity.objects.get(pk=everything.pk)
    text = files.render(activity, file_format=file_format)
    assert files.parse(text, file_format=file_format) == spec.dump(activity)


def test_dump_leaves_out_empty_keys_but_keeps_steps(contents):
    activity = spec.load({"name": "Bare", "trigger": {"type": "event", "event": "x"}, "steps": [{"type": "exit"}]})
    assert spec.dump(Activity.objects.get(pk=activity.pk)) == {
        "name": "Bare",
        "status": "active",
        "category": "marketing",
        "priority": 0,
        "trigger": {"type": "event", "event": "x"},
        "reentry": {"policy": "once"},
        "steps": [{"type": "exit"}],
    }


# --- YAML -------------------------------------------------------------------------------

CART_YAML = """\
name: Birthday SMS
trigger:
  type: date
  field: date_of_birth
  offset_days: -7
  at: 10:00          # YAML 1.1 would read 600 (base 60); an activity file means the time
target:
  - {field: country, op: in, value: [US, NO, IT]}   # NO is Norway, not false
steps:
  - type: issue_coupon
    percent_off: 15
    prefix: BDAY
  - type: send
    channel: sms
    content: cart-discount
"""


def test_yaml_reads_times_and_country_codes_as_written(contents):
    data = files.parse(CART_YAML, file_format=files.FileFormat.YAML)
    assert data["trigger"]["at"] == "10:00"
    assert data["target"][0]["value"] == ["US", "NO", "IT"]
    activity = spec.load(data)
    assert activity.trigger == {"type": "date", "field": "date_of_birth", "offset_days": -7, "at": "10:00"}
    assert activity.trigger.get("type") == TriggerType.DATE


def test_yaml_keeps_dates_and_leading_zeros_as_text():
    data = files.parse("a: 2026-05-01\nb: 02134\nc: 1.5\nd: yes\ne: true\n", file_format=files.FileFormat.YAML)
    assert data == {"a": "2026-05-01", "b": "02134", "c": 1.5, "d": "yes", "e": True}


def test_a_yaml_syntax_error_names_its_line():
    with pytest.raises(spec.SpecError) as error:
        files.parse("name: x\nsteps:\n  - type: wait\n   hours: 1\n", file_format=files.FileFormat.YAML)
    [problem] = error.value.problems
    assert problem.startswith("line 4, column 4: YAML syntax error")


def test_a_json_syntax_error_names_its_line_and_column():
    with pytest.raises(spec.SpecError) as error:
        files.parse('{"name": "x",\n "steps": [}\n', file_format=files.FileFormat.JSON)
    assert error.value.problems == ["line 2, column 12: JSON syntax error: Expecting value"]


@pytest.mark.parametrize(
    "file_format, text, problem",
    [
        (
            files.FileFormat.JSON,
            '{"steps": [], "steps": []}',
            "JSON: the key 'steps' appears twice in one object; keep one",
        ),
        (
            files.FileFormat.YAML,
            "steps: []\nname: x\nsteps: []\n",
            "line 3: the key 'steps' appears twice in one mapping; keep one",
        ),
    ],
)
def test_a_key_given_twice_is_refused_rather_than_one_silently_dropped(file_format, text, problem):
    with pytest.raises(spec.SpecError) as error:
        files.parse(text, file_format=file_format)
    assert error.value.problems == [problem]


# --- the commands -----------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_json(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_import_activity_creates_from_json_and_says_so(contents, tmp_path):
    path = write_json(tmp_path / "cart.json", cart_file())
    out, _ = run("import_activity", path)
    assert out == f"{path}: Cart reminder: created, version 1\n"
    assert Activity.objects.get().version == 1


def test_import_activity_reports_updated_with_the_new_version_then_unchanged(contents, tmp_path):
    run("import_activity", write_json(tmp_path / "cart.json", cart_file()))
    changed = write_json(tmp_path / "cart2.json", cart_file(goal={"event": "checkout_started"}))
    assert run("import_activity", changed)[0].endswith("Cart reminder: updated, now version 2\n")
    assert run("import_activity", changed)[0].endswith("Cart reminder: unchanged, version 2\n")
    described = write_json(tmp_path / "cart3.json", cart_file(goal={"event": "checkout_started"}, description="hi"))
    assert run("import_activity", described)[0].endswith(
        "Cart reminder: updated (the definition is the same), still version 2\n"
    )


def test_import_activity_reads_yaml_by_its_extension(contents, tmp_path):
    path = tmp_path / "birthday.yml"
    path.write_text(CART_YAML, encoding="utf-8")
    out, _ = run("import_activity", str(path))
    assert out.endswith("Birthday SMS: created, version 1\n")
    assert Activity.objects.get().trigger["at"] == "10:00"


def test_import_activity_reads_json_from_stdin(contents, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(cart_file())))
    out, _ = run("import_activity", "-")
    assert out == "-: Cart reminder: created, version 1\n"


def test_import_activity_refuses_a_bad_file_with_every_problem_and_saves_nothing(contents, tmp_path):
    path = write_json(tmp_path / "bad.json", cart_file(steps=[{"type": "wait"}, {"type": "teleport"}], colour="red"))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"1 of 1 file\(s\) refused; nothing was imported"):
        call_command("import_activity", path, stdout=io.StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0] == f"{path}: unknown key 'colour'"
    assert f"{path}: steps[0]: give a duration in days, hours or minutes" in lines
    assert any(line.startswith(f"{path}: steps[1]: unknown step type 'teleport'") for line in lines)
    assert len(lines) == 3
    assert not Activity.objects.exists()


def test_one_refused_file_among_several_imports_none_of_them(contents, tmp_path):
    good = write_json(tmp_path / "good.json", cart_file())
    bad = write_json(tmp_path / "bad.json", cart_file(name="Other", steps=[]))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"1 of 2 file\(s\) refused"):
        call_command("import_activity", good, bad, stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == f"{bad}: steps: give at least one step\n"
    assert not Activity.objects.exists()


def test_import_activity_names_the_line_of_a_syntax_error(tmp_path):
    path = tmp_path / "cart.yaml"
    path.write_text("name: Cart\nsteps: [\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_activity", str(path), stdout=io.StringIO(), stderr=err)
    assert re.match(rf"{re.escape(str(path))}: line 3, column 1: YAML syntax error", err.getvalue())


@pytest.mark.parametrize(
    "name, problem",
    [
        ("missing.json", "there is no such file"),
        ("cart.txt", "name the file .json, .yaml or .yml so its format is known"),
    ],
)
def test_import_activity_refuses_a_file_it_cannot_read(tmp_path, name, problem):
    path = str(tmp_path / name)
    if name.endswith(".txt"):
        Path(path).write_text("{}", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_activity", path, stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith(f"{path}: {problem}")


def test_export_activity_prints_json_that_imports_back(everything, tmp_path):
    out, _ = run("export_activity", "Cart reminder")
    assert json.loads(out) == spec.dump(Activity.objects.get())
    path = tmp_path / "exported.json"
    path.write_text(out, encoding="utf-8")
    assert run("import_activity", str(path))[0].endswith("Cart reminder: unchanged, version 1\n")


def test_export_activity_writes_yaml_to_the_output_file(everything, tmp_path):
    path = tmp_path / "cart.yaml"
    _, err = run("export_activity", "Cart reminder", "--output", str(path))
    assert err == f"Cart reminder (version 1) written to {path}.\n"
    parsed = files.parse(path.read_text(encoding="utf-8"), file_format=files.FileFormat.YAML)
    assert parsed == spec.dump(Activity.objects.get())


def test_export_activity_format_yaml_to_stdout(everything):
    out, _ = run("export_activity", "Cart reminder", "--format", "yaml")
    assert out.startswith("name: Cart reminder\n")


def test_export_activity_of_an_unknown_name_lists_the_names(everything):
    with pytest.raises(CommandError, match=r"There is no activity named 'Cart'\. Activities: 'Cart reminder'\."):
        call_command("export_activity", "Cart", stdout=io.StringIO())


# --- the README is the reference -----------------------------------------------------


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Activity files\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize("step_type", list(STEPS))
def test_the_readme_documents_every_step_type(step_type):
    assert f"`{step_type}`" in readme_section()


@pytest.mark.parametrize("trigger_type", TriggerType.values)
def test_the_readme_documents_every_trigger_type(trigger_type):
    assert f'"type": "{trigger_type}"' in readme_section()


@pytest.mark.parametrize("key", sorted(spec._KNOWN))
def test_the_readme_documents_every_top_level_key(key):
    assert f"`{key}`" in readme_section()


@pytest.mark.parametrize(
    "key",
    [
        "where",
        "field",
        "offset_days",
        "recurrence",
        "every_months",
        "at",
        "value",
        "direction",
        "days",
        "channel",
        "template",
        "content",
        "category",
        "expires_after_hours",
        "hours",
        "minutes",
        "offset_hours",
        "offset_minutes",
        "if_past",
        "event",
        "timeout_days",
        "timeout_hours",
        "timeout_minutes",
        "on_event",
        "on_timeout",
        "if",
        "then",
        "else",
        "prefix",
        "percent_off",
        "amount_off",
        "valid_days",
        "pool",
        "segment",
        "note",
        "policy",
    ],
)
def test_the_readme_documents_every_key_the_code_reads(key):
    assert f"`{key}`" in readme_section() or f'"{key}":' in readme_section()


def test_the_readme_example_loads(contents):
    section = readme_section()
    example = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    activity = spec.load(json.loads(example))
    assert activity.version == 1


@pytest.mark.parametrize("odd_type", [["send"], {"a": 1}, None, 3])
def test_a_step_or_trigger_type_that_is_not_a_word_is_a_problem_not_a_crash(odd_type):
    problems = spec.definition_problems(
        {
            "category": "marketing",
            "trigger": {"type": odd_type},
            "steps": [{"type": odd_type}],
            "reentry": "once",
        }
    )
    assert any(problem.startswith("trigger.type must be event, date or threshold") for problem in problems)
    assert any("unknown step type" in problem for problem in problems)
