"""Text that Postgres can store: no NUL character, no lone surrogate.

Postgres refuses both (in text columns and inside jsonb) with a DataError, which surfaces as a 500
(or fails a whole import batch) instead of a message about the value. Python strings can hold
either: JSON's "\\u0000" and "\\ud800" escapes decode to them, and so do CSV cells.
"""

import re

from django.core.exceptions import ValidationError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def ensure_storable_text(text: str) -> str:
    """`text` unchanged, or a ValidationError naming what Postgres would refuse."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return text
    if match.group() == "\x00":
        raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
    raise ValidationError(
        f"Surrogate characters are not allowed: U+{ord(match.group()):X}.",
        code="surrogate_characters_not_allowed",
    )


def storable(text: str) -> str:
    """`text` with what Postgres would refuse replaced by U+FFFD: for recording untrusted input as
    it came (a CSV header, a rejected row), where refusing is not an option."""
    return _UNSTORABLE.sub("\ufffd", text)
