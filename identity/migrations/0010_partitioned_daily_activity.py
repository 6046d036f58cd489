from django.db import migrations


def partition(apps, schema_editor):
    from events.services.partitions import DAY_KEY, copartitioned_convert

    with schema_editor.connection.cursor() as cursor:
        copartitioned_convert(cursor, table="identity_dailyactivity", key="id", partition_key=DAY_KEY)


class Migration(migrations.Migration):
    """The daily rollups are partitioned by `day` with the event log's months (as dates), so a
    month drop by retention empties the month of days with TRUNCATE and re-derives only the
    rows that other months' events still count in, instead of deleting or rebuilding a row per
    (person, day) (identity.services.event_months; docs/scaling.md, "Partitioned event log").
    The database's primary key becomes (id, day); Django keeps `id`. The conversion copies the
    table in this migration's transaction, holding its lock (as 0008 does for the projection)."""

    dependencies = [("identity", "0009_hot_rule_score")]

    operations = [migrations.RunPython(partition, migrations.RunPython.noop)]
