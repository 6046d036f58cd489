"""Covering indexes for segment conditions on the daily rollups (identity_dailyactivity).

Kept in segments (their reader) as SQL, so identity's model state is untouched. Both include
contact_id and count, so a condition is answered from the index alone (no table visits):

- (kind, key, day) with `varchar_pattern_ops`: an event name or a path prefix
  (`key LIKE '/pricing%'`) seeks the index whatever the database collation. It covers what
  identity's `daily_activity_key_day` (kind, key, day) does, which could be dropped.
- (kind, day): a windowed condition with a filter no index can seek (`key LIKE '%/pricing%'`)
  scans only the window's days. Measured at 1.9M rows: 215 ms -> 40 ms for a 7-day window.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_segments"),
        ("identity", "0002_default_blocked_values"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS segments_daily_activity_key_prefix ON identity_dailyactivity "
            "(kind varchar_pattern_ops, key varchar_pattern_ops, day) INCLUDE (contact_id, count)",
            "DROP INDEX IF EXISTS segments_daily_activity_key_prefix",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS segments_daily_activity_window ON identity_dailyactivity "
            "(kind, day) INCLUDE (key, contact_id, count)",
            "DROP INDEX IF EXISTS segments_daily_activity_window",
        ),
    ]
