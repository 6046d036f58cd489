"""One index write less per stored event on each ingest table (docs/benchmarks.md, Ingestion).

The foreign keys to Source had single-column indexes that a composite index leading with
source_id already covers; the dedup table's received_at btree (used only by the hourly expiry)
becomes a BRIN index. The state operations are what Django would generate; the database
operations only drop indexes, because Django's AlterField would also drop and re-add each foreign
key constraint, re-validating every row of the event table under lock.
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_drop_queue_enqueued_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="events.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="eventdedup",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="events.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="rejectedevent",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="events.source",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql="""
                    DROP INDEX IF EXISTS events_event_source_id_8865a32a;
                    DROP INDEX IF EXISTS events_eventdedup_source_id_be4f6cbb;
                    DROP INDEX IF EXISTS events_rejectedevent_source_id_a301e1f7;
                    """,
                    reverse_sql="""
                    CREATE INDEX IF NOT EXISTS events_event_source_id_8865a32a
                        ON events_event (source_id);
                    CREATE INDEX IF NOT EXISTS events_eventdedup_source_id_be4f6cbb
                        ON events_eventdedup (source_id);
                    CREATE INDEX IF NOT EXISTS events_rejectedevent_source_id_a301e1f7
                        ON events_rejectedevent (source_id);
                    """,
                ),
            ],
        ),
        migrations.RemoveIndex(
            model_name="eventdedup",
            name="event_dedup_received",
        ),
        migrations.AddIndex(
            model_name="eventdedup",
            index=django.contrib.postgres.indexes.BrinIndex(
                fields=["received_at"], name="event_dedup_received_brin"
            ),
        ),
    ]
