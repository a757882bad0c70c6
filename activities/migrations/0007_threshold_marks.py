import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0006_clock_schedules"),
        ("customers", "0004_consent_source_unsubscribe"),
    ]

    operations = [
        migrations.CreateModel(
            name="ThresholdMark",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("above", models.BooleanField(help_text="At or above the line when last seen.")),
                (
                    "crossings",
                    models.PositiveIntegerField(
                        default=0, help_text="Crossings in the trigger's direction so far; each is one occurrence."
                    ),
                ),
                ("updated_at", models.DateTimeField(help_text="When the customer was seen reaching this side.")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="threshold_marks",
                        to="activities.activity",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.customer"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("activity", "customer"), name="one_threshold_mark_per_customer")
                ],
            },
        ),
    ]
