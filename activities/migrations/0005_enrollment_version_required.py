import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0004_freeze_first_versions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="enrollment",
            name="version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="enrollments", to="activities.activityversion"
            ),
        ),
    ]
