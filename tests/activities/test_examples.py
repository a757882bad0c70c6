"""The example programs in activities/examples/ are valid activity files, load and export
unchanged, and the demo loads them with the templates and SMS contents they send."""

import json

import pytest

from activities import spec
from activities.models import Activity
from examples.storefront import demo
from messaging import rendering, sms
from messaging.models import EmailTemplate, SmsContent

pytestmark = pytest.mark.django_db

EXAMPLES = demo.example_files()


def read(path):
    return json.loads(path.read_text())


def test_the_examples_include_every_program_of_the_activities_issue():
    assert {path.stem for path in EXAMPLES} >= {
        "welcome",
        "welcome-series",
        "cart-abandonment",
        "birthday",
        "car-delivery-welcome",
        "car-service-reminder",
        "car-new-car-prompt",
        "loyalty-reward",
        "webinar-reminder",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_each_example_file_has_no_problems(path):
    demo.create_example_content()
    assert spec.problems_in(read(path)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_each_example_file_exports_as_written_and_loads_back_unchanged(path):
    demo.create_example_content()
    activity = spec.load(read(path))
    exported = spec.dump(activity)
    assert exported == read(path)

    again = spec.load(json.loads(json.dumps(exported)))
    assert again.pk == activity.pk
    assert again.version == activity.version == 1  # nothing changed, so no new version
    assert spec.dump(again) == exported


def test_without_their_templates_the_examples_name_what_is_missing():
    problems = spec.problems_in(read(demo.EXAMPLES_DIR / "cart-abandonment.json"))
    assert problems == [
        "steps[1]: there is no e-mail template 'cart-reminder'",
        "steps[4]: there is no e-mail template 'cart-discount'",
    ]


@pytest.mark.parametrize("slug", [slug for slug, *_ in demo.EMAIL_TEMPLATES])
def test_each_example_email_template_uses_only_known_variables(slug):
    _, _, subject, html_body = next(row for row in demo.EMAIL_TEMPLATES if row[0] == slug)
    assert rendering.template_problems(subject) == []
    assert rendering.template_problems(html_body) == []


@pytest.mark.parametrize("slug", [slug for slug, *_ in demo.SMS_CONTENTS])
def test_each_example_sms_uses_only_known_variables_and_fits_one_part(slug):
    _, _, text = next(row for row in demo.SMS_CONTENTS if row[0] == slug)
    assert rendering.template_problems(text) == []
    with_long_values = rendering.render_sms(
        SmsContent(text=text),
        {
            "customer": {"first_name": "Maximiliane"},
            "coupon": {"code": "BDAY-ABCDEFGH"},
            "event": {"title": "Espresso at home", "join_url": "https://example.com/w/8f3k2"},
        },
    )
    assert sms.segment(with_long_values).segments == 1


def test_the_demo_loads_every_example_once_and_leaves_edited_ones_alone():
    demo.load(admin_password="x")
    assert set(Activity.objects.values_list("name", flat=True)) == {read(path)["name"] for path in EXAMPLES}
    assert EmailTemplate.objects.count() == len(demo.EMAIL_TEMPLATES)
    assert SmsContent.objects.count() == len(demo.SMS_CONTENTS)

    cart = Activity.objects.get(name="Cart abandonment")
    cart.steps = [{"type": "wait", "hours": 2}, *cart.steps[1:]]
    cart.save()
    demo.load(admin_password="x")

    cart.refresh_from_db()
    assert cart.steps[0] == {"type": "wait", "hours": 2}
    assert cart.version == 2
    assert Activity.objects.count() == len(EXAMPLES)
