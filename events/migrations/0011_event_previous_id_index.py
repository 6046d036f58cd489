from django.db import migrations, models

# IF NOT EXISTS: a fresh install's 0010 creates the partitioned event log from
# events.services.partitions._INDEXES, which lists this index too.
CREATE = "CREATE INDEX IF NOT EXISTS event_previous_id ON events_event (previous_id) WHERE NOT previous_id::text = ''"


class Migration(migrations.Migration):
    """Erasure sweeps the event log by identifier: anonymous_id, user_id or previous_id. The first
    two had partial indexes; previous_id (set on alias events only) had none, so the OR read every
    row of every partition (14 s of a 50k-event erasure at 20M events). A partial index keeps only
    the alias events' rows."""

    dependencies = [("events", "0010_partitioned_event_log")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(CREATE, reverse_sql="DROP INDEX IF EXISTS event_previous_id")
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(
                        condition=models.Q(("previous_id", ""), _negated=True),
                        fields=["previous_id"],
                        name="event_previous_id",
                    ),
                )
            ],
        )
    ]
