"""Small builders of test data, with sensible defaults a test overrides by keyword."""

from itertools import count

from django.contrib.auth.models import Permission, User

from activities.models import Activity, ActivityStatus, Reentry
from customers.models import Customer
from messaging.models import Category, EmailTemplate, SmsContent

_numbers = count(1)


def customer(**fields) -> Customer:
    n = next(_numbers)
    defaults = {"email": f"customer{n}@example.com", "first_name": f"Ann{n}", "country": "US"}
    return Customer.objects.create(**{**defaults, **fields})


def email_template(slug="welcome", **fields) -> EmailTemplate:
    defaults = {
        "name": slug.title(),
        "subject": "Hello {{ customer.first_name }}",
        "html_body": "<p>Hi {{ customer.first_name }}</p>",
    }
    return EmailTemplate.objects.create(slug=slug, **{**defaults, **fields})


def sms_content(slug="hello-sms", **fields) -> SmsContent:
    defaults = {"name": slug, "text": "Hi {{ customer.first_name }}"}
    return SmsContent.objects.create(slug=slug, **{**defaults, **fields})


def welcome_activity(template=None, **fields) -> Activity:
    template = template or email_template()
    defaults = {
        "name": "Welcome",
        "status": ActivityStatus.ACTIVE,
        "category": Category.TRANSACTIONAL,
        "trigger_event": "customer_registered",
        "reentry": Reentry.ONCE,
        "steps": [{"type": "send", "channel": "email", "template": template.slug}],
    }
    return Activity.objects.create(**{**defaults, **fields})


def staff_with(*codenames, username="staff", password="x") -> User:
    """A staff user with exactly the permissions named by ``codenames`` (and no group)."""
    user = User.objects.create_user(username, password=password, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user
