import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The projection's foreign key to events_event goes before the event log is partitioned
    (events 0010): Postgres accepts no foreign key to `id` alone on a partitioned table."""

    dependencies = [
        ("events", "0009_ingest_batch"),
        ("identity", "0006_contact_event_bot_index"),
    ]
    run_before = [("events", "0010_partitioned_event_log")]

    operations = [
        migrations.AlterField(
            model_name="contactevent",
            name="event",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="+",
                serialize=False,
                to="events.event",
            ),
        ),
    ]
