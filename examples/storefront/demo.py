"""Demo data: an admin, a few customers and products, and the example activities
(activities/examples/) with the e-mail templates and SMS contents they send.

Loading it twice changes nothing but the admin's password: what exists already, edited
or not, is left as it is.
"""

import json
import secrets
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

import activities
from activities import spec
from activities.models import Activity
from customers.models import Customer
from messaging.models import EmailTemplate, SmsContent

from .models import Product

ADMIN_USERNAME = "admin"

PRODUCTS = [
    ("Espresso beans, 1 kg", "espresso-beans", "Dark roast from a small roastery.", "24.90"),
    ("Moka pot", "moka-pot", "Six cups, aluminium, the classic.", "34.00"),
    ("Milk frother", "milk-frother", "Hand-held, two speeds.", "19.50"),
    ("Ceramic cups (set of 4)", "ceramic-cups", "Hand-glazed, dishwasher safe.", "29.00"),
]

CUSTOMERS = [
    # external_id, first name, e-mail, phone, country, language, time zone
    ("demo-1", "Alice", "alice@example.com", "+12125550100", "US", "en", "America/New_York"),
    ("demo-2", "Bruno", "bruno@example.com", "+393331234567", "IT", "it", "Europe/Rome"),
    ("demo-3", "Chloé", "chloe@example.com", "+33612345678", "FR", "fr", "Europe/Paris"),
    ("demo-4", "Daniel", "daniel@example.com", "+61412345678", "AU", "en", "Australia/Sydney"),
    ("demo-5", "Eva", "eva@example.com", "+4915123456789", "DE", "de", "Europe/Berlin"),
]

EXAMPLES_DIR = Path(activities.__file__).resolve().parent / "examples"

WELCOME_HTML = """<h1>Welcome, {{ customer.first_name|default:"friend" }}!</h1>
<p>Thanks for creating an account at the Example shop.</p>
<p>Your first espresso is on us: have a look at <a href="http://localhost:8000/">what's new</a>.</p>
"""

#: Marketing e-mail ends with the way out (the List-Unsubscribe header carries it too).
_UNSUBSCRIBE = '<p><small><a href="{{ unsubscribe_url }}">Unsubscribe</a> from these e-mails.</small></p>\n'

#: The e-mail templates the example activities send: slug, name, subject, HTML body.
EMAIL_TEMPLATES = [
    ("welcome", "Welcome", "Welcome to the Example shop, {{ customer.first_name }}", WELCOME_HTML),
    (
        "welcome-series-thanks",
        "Welcome series 1: thanks for the first order",
        "Thank you for your first order, {{ customer.first_name }}",
        '<p>Hi {{ customer.first_name|default:"there" }},</p>\n'
        "<p>Thank you for your first order at {{ site.name }}. We are packing it now.</p>\n" + _UNSUBSCRIBE,
    ),
    (
        "welcome-series-tips",
        "Welcome series 2: brewing tips (day 2)",
        "Three tips for a better espresso",
        "<p>Grind just before brewing, weigh your dose, and warm the cup.</p>\n"
        '<p>More on <a href="{{ site.url }}/">our site</a>.</p>\n' + _UNSUBSCRIBE,
    ),
    (
        "welcome-series-range",
        "Welcome series 3: the range (day 5)",
        "What goes well with your coffee",
        '<p>{{ customer.first_name|default:"Hello" }}, have a look at our cups, pots and frothers: '
        '<a href="{{ site.url }}/">the shop</a>.</p>\n' + _UNSUBSCRIBE,
    ),
    (
        "welcome-series-survey",
        "Welcome series 4: survey (day 10)",
        "Two minutes to tell us how we did?",
        '<p>How was your first order, {{ customer.first_name|default:"friend" }}?</p>\n'
        '<p><a href="{{ site.url }}/survey/first-order/">Answer our three-question survey</a>.</p>\n' + _UNSUBSCRIBE,
    ),
    (
        "cart-reminder",
        "Cart reminder",
        "You left something in your cart",
        '<p>Hi {{ customer.first_name|default:"there" }}, your cart is waiting for you: '
        '<a href="{{ site.url }}/cart/">finish your order</a>.</p>\n' + _UNSUBSCRIBE,
    ),
    (
        "cart-discount",
        "Cart reminder with a coupon",
        "10 % off your cart: {{ coupon.code }}",
        "<p>Still thinking it over? Use the code <strong>{{ coupon.code }}</strong> for "
        "{{ coupon.percent_off|floatformat }} % off your cart.</p>\n"
        '<p><a href="{{ site.url }}/cart/">Back to your cart</a></p>\n' + _UNSUBSCRIBE,
    ),
    (
        "car-delivery-welcome",
        "Car delivered",
        "Enjoy your new {{ customer.attributes.car_model }}",
        '<p>{{ customer.first_name|default:"Hello" }}, we hope your first day with your '
        "{{ customer.attributes.car_model }} went well. Your handbook and service plan are in your account.</p>\n",
    ),
    (
        "car-service-reminder",
        "Car service reminder",
        "Time to service your {{ customer.attributes.car_model }}",
        "<p>Your {{ customer.attributes.car_model }} is due for its six-monthly service. "
        '<a href="{{ site.url }}/service/">Book a slot</a>.</p>\n' + _UNSUBSCRIBE,
    ),
    (
        "car-new-car",
        "Three years with your car",
        "Three years with your {{ customer.attributes.car_model }}",
        "<p>Three years ago you drove off in your {{ customer.attributes.car_model }}. "
        'Curious what its successor can do? <a href="{{ site.url }}/test-drive/">Book a test drive</a>.</p>\n'
        + _UNSUBSCRIBE,
    ),
]

#: The SMS contents the example activities send: slug, name, text (one GSM-7 part when rendered).
SMS_CONTENTS = [
    (
        "birthday-promo",
        "Birthday promo code",
        "Happy birthday soon, {{ customer.first_name }}! 15% off with code {{ coupon.code }} "
        "for two weeks. Reply STOP to opt out",
    ),
    (
        "loyalty-reward",
        "Loyalty reward",
        "{{ customer.first_name }}, you passed 1,000 points! Your reward waits in your account. Reply STOP to opt out",
    ),
    (
        "webinar-reminder",
        "Webinar reminder",
        'Reminder: {{ event.title|default:"your webinar" }} starts in one hour. {{ event.join_url }}',
    ),
]


def load(*, admin_password: str | None = None) -> str:
    """Load the demo data and return the admin's (new) password."""
    admin_password = admin_password or secrets.token_urlsafe(12)
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username=ADMIN_USERNAME, defaults={"email": "admin@example.com"})
    admin.is_staff = admin.is_superuser = True
    admin.set_password(admin_password)
    admin.save()

    for name, slug, description, price in PRODUCTS:
        Product.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "price": Decimal(price)}
        )
    for external_id, first_name, email, phone, country, language, zone in CUSTOMERS:
        Customer.objects.get_or_create(
            external_id=external_id,
            defaults={
                "first_name": first_name,
                "email": email,
                "phone": phone,
                "country": country,
                "language": language,
                "timezone": zone,
            },
        )
    load_examples()
    return admin_password


def example_files() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.json"))


def create_example_content() -> None:
    """The e-mail templates and SMS contents the example activities refer to (by slug)."""
    for slug, name, subject, html_body in EMAIL_TEMPLATES:
        EmailTemplate.objects.get_or_create(
            slug=slug, defaults={"name": name, "subject": subject, "html_body": html_body}
        )
    for slug, name, text in SMS_CONTENTS:
        SmsContent.objects.get_or_create(slug=slug, defaults={"name": name, "text": text})


@transaction.atomic
def load_examples() -> list[Activity]:
    """Load every activity file in activities/examples/ that is not loaded yet (by name).

    An activity of the same name is left alone, so that a marketer's edits (or a pause)
    survive the next ``manage.py demo``.
    """
    create_example_content()
    loaded = []
    for path in example_files():
        data = json.loads(path.read_text())
        if not Activity.objects.filter(name=data.get("name")).exists():
            loaded.append(spec.load(data))
    return loaded
