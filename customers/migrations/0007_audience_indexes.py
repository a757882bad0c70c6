"""Indexes the audience estimate reads (activities/audience.py; measured in bench/audience.py).

The latest consent record of a customer's channel is read from the index alone, in
the order the ledger's own ordering asks (``-recorded_at, -id``: no sort per
customer); customers are counted by country and age, with their addresses, without
reading their rows.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_event_customer_name_time_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="consentrecord", name="consent_latest"),
        migrations.AddIndex(
            model_name="consentrecord",
            index=models.Index(
                fields=["customer", "channel", "-recorded_at", "-id"], include=("action",), name="consent_latest"
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["country", "date_of_birth"], include=("id", "phone", "email"), name="customer_country_birth"
            ),
        ),
    ]
