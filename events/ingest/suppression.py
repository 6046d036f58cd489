"""The suppression check at ingestion: whether a message carries an identifier of an erased person.

The list itself (its digests, the per-process cache, adding to it and the drop counter) is
`events.services.suppression`; this is the per-message part the endpoint calls for every message:
with an empty list (the usual case) one cached-tuple check, else a hash per identifier.
"""

from collections.abc import Iterable

from events.services import identifiers
from events.services.suppression import suppressed_hashes, value_hash


def _message_values(message: dict) -> Iterable[object]:
    """Every identifier a message carries, in the form identity stitching stores it (the list
    holds the erased person's stored identifiers): ids as sent, emails, phone numbers in E.164
    and external ids as "type:id"."""
    for key in ("anonymousId", "userId", "user_id", "previousId"):
        if message.get(key) not in (None, ""):
            yield message[key]
    context = message.get("context") or {}
    for traits in (message.get("traits"), context.get("traits")):
        if isinstance(traits, dict):
            if traits.get("email"):
                yield traits["email"]
            if traits.get("phone") and (phone := identifiers.phone_e164(traits["phone"])):
                yield phone
    yield from identifiers.external_ids(context)


def is_suppressed(*, message: dict) -> bool:
    """Whether the message carries an identifier on the suppression list."""
    hashes = suppressed_hashes()
    if not hashes or not isinstance(message, dict):
        return False
    try:
        return any(value_hash(value) in hashes for value in _message_values(message))
    except (TypeError, AttributeError):  # a malformed context: validation rejects it later
        return False
