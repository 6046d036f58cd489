"""Keyset ("seek") pagination for HTML lists: a page costs the same at row 50 and at row 99,950.

OFFSET makes Postgres read and throw away every row before the page; a cursor holding the sort
value and the primary key of the page's edge row lets the index start right there. The sort key
must be NOT NULL (wrap nullable columns in Coalesce) so `<` and `=` order every row.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Expression, F, Q, QuerySet, Value


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    prev_cursor: str | None


def encode_cursor(value: Any, pk: int, direction: str) -> str:
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    raw = json.dumps([value, pk, direction], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int, str] | None:
    """The (value, pk, direction) in a cursor, or None for one that is not ours (start over)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk, direction = json.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["dt"])
        if not isinstance(pk, int) or direction not in ("next", "prev"):
            return None
        if not isinstance(value, str | int | float | datetime):
            return None
        return value, pk, direction
    except (ValueError, TypeError, KeyError, binascii.Error, json.JSONDecodeError):
        return None


def keyset_page(
    queryset: QuerySet, *, key: Expression | F, descending: bool, cursor: str | None, size: int
) -> KeysetPage:
    qs = queryset.annotate(sort_key=key)
    decoded = decode_cursor(cursor) if cursor else None
    forward = decoded is None or decoded[2] == "next"
    if decoded is not None:
        value, pk, _ = decoded
        # The first conjunct is a plain range on the sort key, which an index on it can seek to;
        # the second breaks ties on the key by primary key.
        if forward != descending:
            qs = qs.filter(Q(sort_key__gte=value), Q(sort_key__gt=value) | Q(pk__gt=pk))
        else:
            qs = qs.filter(Q(sort_key__lte=value), Q(sort_key__lt=value) | Q(pk__lt=pk))
    scan_descending = descending if forward else not descending
    order = ("-sort_key", "-pk") if scan_descending else ("sort_key", "pk")
    # Two steps ("deferred join"): find the page's keys with a narrow query, then load those rows.
    # Sorting on a joined column (company name) otherwise drags every wide joined row through the
    # sort: 165 ms -> 45 ms at 100k contacts (docs/benchmarks.md).
    keys = list(qs.select_related(None).order_by(*order).values_list("pk", "sort_key")[: size + 1])
    return _page_of_keys(queryset, keys, size=size, forward=forward, decoded=decoded is not None)


@dataclass(frozen=True)
class SplitKey:
    """A sort key read from a joined table where its row holds one, and the constant `missing`
    for every other row (no joined row, or one holding `missing` itself).

    `keyset_page` would sort on Coalesce(value, missing) over a LEFT JOIN: no index holds that
    expression, so every page hash-joins the whole table with the joined rows and sorts them all
    for the top 51 (the contact list sorted by a computed trait: 265-307 ms at 100k contacts).
    `keyset_page_split` instead walks three ranges in order: rows whose value is above `missing`
    (an inner join on the value, which the joined table's (…, value, row) index returns in order),
    the rows at `missing` by primary key (`missing_q`, an anti-join: NOT EXISTS a value other than
    `missing`), and those below it. The pages are the same as keyset_page's on the coalesced key.
    """

    value: Expression | F  # the joined value (NOT NULL in the first and last ranges)
    missing: Any
    missing_q: Q  # the rows whose key is `missing`


def keyset_page_split(
    queryset: QuerySet, *, key: SplitKey, descending: bool, cursor: str | None, size: int
) -> KeysetPage:
    decoded = decode_cursor(cursor) if cursor else None
    forward = decoded is None or decoded[2] == "next"
    scan_descending = descending if forward else not descending
    missing = key.missing
    ranges = ["above", "at", "below"] if scan_descending else ["below", "at", "above"]
    where = None
    if decoded is not None:
        value, pk, _ = decoded
        try:
            where = "above" if value > missing else "below" if value < missing else "at"
        except TypeError:  # a cursor of another sort (a number for a text key): start over
            decoded, where = None, None
            forward, scan_descending = True, descending
            ranges = ["above", "at", "below"] if descending else ["below", "at", "above"]
        else:
            ranges = ranges[ranges.index(where) :]
    keys: list[tuple] = []
    for name in ranges:
        if name == "at":
            qs = queryset.filter(key.missing_q).annotate(sort_key=Value(missing))
            order: tuple[str, ...] = ("-pk",) if scan_descending else ("pk",)
            if name == where:
                qs = qs.filter(pk__lt=pk) if scan_descending else qs.filter(pk__gt=pk)
        else:
            qs = queryset.annotate(sort_key=key.value)
            qs = qs.filter(sort_key__gt=missing) if name == "above" else qs.filter(sort_key__lt=missing)
            order = ("-sort_key", "-pk") if scan_descending else ("sort_key", "pk")
            if name == where and scan_descending:
                qs = qs.filter(Q(sort_key__lte=value), Q(sort_key__lt=value) | Q(pk__lt=pk))
            elif name == where:
                qs = qs.filter(Q(sort_key__gte=value), Q(sort_key__gt=value) | Q(pk__gt=pk))
        need = size + 1 - len(keys)
        keys += qs.select_related(None).order_by(*order).values_list("pk", "sort_key")[:need]
        if len(keys) > size:
            break
    return _page_of_keys(queryset, keys, size=size, forward=forward, decoded=decoded is not None)


def _page_of_keys(queryset: QuerySet, keys: list, *, size: int, forward: bool, decoded: bool) -> KeysetPage:
    """The page's rows for the (pk, sort key) pairs a scan found (`size` + 1 of them when more
    follow), in display order, with the cursors either side."""
    more = len(keys) > size
    keys = keys[:size]
    if not forward:
        keys.reverse()
    by_pk = {row.pk: row for row in queryset.filter(pk__in=[pk for pk, _ in keys])}
    rows = []
    for pk, sort_key in keys:
        if pk in by_pk:  # deleted between the two queries: leave it out
            by_pk[pk].sort_key = sort_key
            rows.append(by_pk[pk])
    has_next = more if forward else True
    has_prev = decoded if forward else more
    return KeysetPage(
        rows=rows,
        next_cursor=encode_cursor(rows[-1].sort_key, rows[-1].pk, "next") if rows and has_next else None,
        prev_cursor=encode_cursor(rows[0].sort_key, rows[0].pk, "prev") if rows and has_prev else None,
    )
