"""Row locks, taken one way.

Every service that locks more than one row of a table takes the locks in primary-key order, so two
transactions that lock overlapping sets wait for each other instead of deadlocking (each would
otherwise hold a row the other wants next). `lock_rows` is that rule in one place.
"""

from django.db.models import Model, QuerySet


def lock_rows[M: Model](
    queryset: QuerySet[M], *, of_self: bool = False, no_key: bool = False, skip_locked: bool = False
) -> QuerySet[M]:
    """`queryset` locked FOR UPDATE (inside the caller's transaction) in primary-key order; slice
    it, `.first()` it or `.values_list()` it as any queryset.

    - `of_self`: lock only this model's rows (FOR UPDATE OF), not those of the tables a
      `select_related` joins in; without a join it makes no difference.
    - `no_key`: FOR NO KEY UPDATE, for writes that leave the key others reference alone, so a
      foreign-key check (KEY SHARE) on the row neither waits for them nor makes them wait.
    - `skip_locked`: leave out rows another transaction holds (queue claims: workers never wait).

    The defaults are Django's `select_for_update()`'s: a call site reads as the lock it takes."""
    of = ("self",) if of_self else ()
    return queryset.select_for_update(of=of, no_key=no_key, skip_locked=skip_locked).order_by("pk")
