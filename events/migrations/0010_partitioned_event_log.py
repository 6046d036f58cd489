import sys

import django.db.models.deletion
from django.db import migrations, models


def partition(apps, schema_editor):
    # A fresh install (or any empty event log) gets the partitioned table at once; a populated
    # one is moved online by `manage.py events_partition_migrate` (docs/scaling.md), not inside
    # a migration that would hold the table's lock for the whole copy.
    from events.services.partition_migration import event_log_partition_empty
    from events.services.partitions import event_log_is_partitioned

    if not event_log_partition_empty() and not event_log_is_partitioned():
        sys.stdout.write(
            "\n  events_event has rows and stays unpartitioned for now: run "
            "`manage.py events_partition_migrate` to move it online (docs/scaling.md).\n"
        )


def unpartition(apps, schema_editor):
    from events.services.partition_migration import event_log_unpartition_empty

    event_log_unpartition_empty()


class Migration(migrations.Migration):
    """events_event range-partitioned by received_at, a partition per month
    (events/services/partitions.py). Foreign keys to it lose their database constraint first:
    Postgres accepts a foreign key to a partitioned table only on a unique key that includes the
    partition key, and `id` alone is not one (identity 0007 does the projection's)."""

    dependencies = [("events", "0009_ingest_batch")]

    operations = [
        migrations.AlterField(
            model_name="ingestqueue",
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
        migrations.RunPython(partition, unpartition),
    ]
