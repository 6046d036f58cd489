from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # The projection is the largest identity table: build the index without blocking the
    # stitching worker's inserts.
    atomic = False

    dependencies = [
        ("identity", "0005_split_rules"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="contactevent",
            index=models.Index(
                condition=models.Q(("is_bot", True)), fields=["contact"], name="contact_event_bots"
            ),
        ),
    ]
