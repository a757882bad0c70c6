"""Demo data: an admin, a few customers and products, the welcome e-mail and its activity.

Loading it twice changes nothing but the admin's password.
"""

import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model

from activities.models import Activity, ActivityStatus, Reentry
from customers.models import Customer
from messaging.models import Category, EmailTemplate

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

WELCOME_HTML = """<h1>Welcome, {{ customer.first_name|default:"friend" }}!</h1>
<p>Thanks for creating an account at the Example shop.</p>
<p>Your first espresso is on us: have a look at <a href="http://localhost:8000/">what's new</a>.</p>
"""


def load(*, admin_password: str | None = None) -> str:
    """Load the demo data and return the admin's (new) password."""
    admin_password = admin_password or secrets.token_urlsafe(12)
    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": "admin@example.com"}
    )
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
            defaults={"first_name": first_name, "email": email, "phone": phone,
                      "country": country, "language": language, "timezone": zone},
        )

    EmailTemplate.objects.get_or_create(
        slug="welcome",
        defaults={"name": "Welcome", "subject": "Welcome to the Example shop, {{ customer.first_name }}",
                  "html_body": WELCOME_HTML},
    )
    # A welcome after registration is a service message the customer asked for by
    # registering: transactional, sent once per customer ever.
    Activity.objects.get_or_create(
        name="Welcome e-mail",
        defaults={
            "description": "Greets every new customer once, right after registration.",
            "status": ActivityStatus.ACTIVE,
            "category": Category.TRANSACTIONAL,
            "trigger_event": "customer_registered",
            "reentry": Reentry.ONCE,
            "steps": [{"type": "send", "channel": "email", "template": "welcome"}],
        },
    )
    return admin_password
