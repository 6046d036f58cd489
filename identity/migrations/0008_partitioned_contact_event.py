from django.db import migrations, models


def partition(apps, schema_editor):
    from events.services.partitions import copartitioned_convert

    with schema_editor.connection.cursor() as cursor:
        copartitioned_convert(cursor, table="identity_contactevent", key="event_id")


class Migration(migrations.Migration):
    """The event projection gets its event's received_at and is partitioned by it with the event
    log's months, so retention drops a month of both tables together (docs/scaling.md,
    "Partitioned event log"). The conversion copies the table in this migration's transaction,
    holding its lock: see events.services.partitions.copartitioned_convert for large tables."""

    dependencies = [
        ("events", "0010_partitioned_event_log"),
        ("identity", "0007_partitioned_event_log"),
    ]

    operations = [
        migrations.AddField(
            model_name="contactevent",
            name="received_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(
            """
            UPDATE identity_contactevent ce SET received_at = e.received_at
            FROM events_event e WHERE e.id = ce.event_id;
            UPDATE identity_contactevent SET received_at = timestamp WHERE received_at IS NULL;
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="contactevent",
            name="received_at",
            field=models.DateTimeField(),
        ),
        migrations.RunPython(partition, migrations.RunPython.noop),
    ]
