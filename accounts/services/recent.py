"""Recently viewed records: the detail pages of contacts, companies and deals call
`recent_view_record`; the home page reads `accounts.selectors.recent_view_list` and resolves the
ids through the apps that own the records (accounts imports none of them)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from accounts.models import RecentView

# Enough for a working day's back-and-forth; the home page shows the newest few.
RECENT_VIEWS_PER_USER = 20


def recent_view_record(*, user: AbstractBaseUser, kind: str, object_id: int) -> None:
    """Stamp `user` opening a record, keeping only their newest RECENT_VIEWS_PER_USER. One
    statement on every detail page: the upsert moves a reopened record to the top (concurrent
    opens meet on the unique row), and the trim in the same statement, which sees the rows as
    they were before it, keeps the newest cap - 1 of the user's other records."""
    if not user.is_authenticated:
        return
    table = connection.ops.quote_name(RecentView._meta.db_table)
    statement = f"""
        WITH upsert AS (
            INSERT INTO {table} (user_id, kind, object_id, viewed_at) VALUES (%s, %s, %s, %s)
            ON CONFLICT (user_id, kind, object_id) DO UPDATE SET viewed_at = EXCLUDED.viewed_at
            RETURNING id
        )
        DELETE FROM {table} WHERE id IN (
            SELECT id FROM {table}
            WHERE user_id = %s AND NOT (kind = %s AND object_id = %s)
            ORDER BY viewed_at DESC, id DESC OFFSET %s
        )
    """  # the table name is our model's; every value is a parameter
    params = [user.pk, kind, object_id, timezone.now(), user.pk, kind, object_id, RECENT_VIEWS_PER_USER - 1]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
