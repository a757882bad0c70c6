"""Customer.local_zone: the one zone date triggers group customers by, filled for existing rows."""

import zoneinfo
from collections import defaultdict

from django.db import migrations, models

from customers.models import local_zone_for

CHUNK = 5000


def fill_local_zones(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    # A zone set by hand wins; without a phone the country alone decides: both in bulk.
    known = sorted(zoneinfo.available_timezones())
    Customer.objects.filter(timezone__in=known).update(local_zone=models.F("timezone"))
    rest = Customer.objects.exclude(timezone__in=known)
    without_phone = rest.filter(phone="")
    for country in without_phone.values_list("country", flat=True).distinct().order_by():
        without_phone.filter(country=country).update(local_zone=local_zone_for(country=country))
    # Phone numbers are looked up one by one (phonenumbers' data), written one UPDATE per zone a chunk.
    with_phone = rest.exclude(phone="").order_by("pk")
    last_pk = 0
    while True:
        rows = list(with_phone.filter(pk__gt=last_pk).values_list("pk", "phone", "country")[:CHUNK])
        if not rows:
            break
        pks_by_zone = defaultdict(list)
        for pk, phone, country in rows:
            pks_by_zone[local_zone_for(phone=phone, country=country)].append(pk)
        for zone, pks in pks_by_zone.items():
            Customer.objects.filter(pk__in=pks).update(local_zone=zone)
        last_pk = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_consent_source_unsubscribe"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="local_zone",
            field=models.CharField(
                blank=True,
                db_index=True,
                editable=False,
                max_length=64,
                help_text="The zone date triggers use: derived on save from the zone, phone and country; "
                "empty for the site default.",
            ),
        ),
        migrations.RunPython(fill_local_zones, migrations.RunPython.noop, elidable=True),
    ]
