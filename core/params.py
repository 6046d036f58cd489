"""Ids and offsets read from request parameters.

`str.isdigit()` then `int()` is not enough: "²".isdigit() is True and int("²") raises, 5,000 digits
exceed Python's int-parsing limit (ValueError), and 20 digits parse but overflow Postgres' bigint
(DataError). Each was a 500 on a page or API filter; an out-of-range id names nothing, like a
missing one.
"""

import re

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits; 18 of them always fit a bigint


def parse_id(value: object) -> int | None:
    """A non-negative integer that fits a bigint, or None."""
    text = value if isinstance(value, str) else ""
    return int(text) if _ID.fullmatch(text) else None
