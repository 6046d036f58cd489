"""`normalise`'s shortcuts answer as the full checks do: what is accepted and the reason given for
a refusal do not depend on which path an event took (no database)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.ingest import parse

NOW = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)


def _event(**fields) -> dict:
    return {"type": "track", "event": "Viewed", "userId": "u-1", "messageId": "m-1", **fields}


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def _walked(raw: dict) -> parse.Message | parse.Rejection:
    """The answer with every object walked (the path before the shortcut)."""
    try:
        return parse._normalise(raw, received_at=NOW, batch_sent_at=None, shape_checked=False)
    except ValueError as exc:
        return parse.Rejection(str(exc), raw)


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        # properties is depth 0: 16 nested objects with a scalar inside is the deepest allowed
        ("properties", _nested(16, 1), True),
        ("properties", _nested(17, 1), False),
        ("properties", _nested(16, {}), True),  # an empty object at depth 16 holds nothing deeper
        ("context", _nested(16, [1]), False),
        ("context", _nested(15, [1]), True),
        ("traits", {f"k{i}": i for i in range(parse.MAX_KEYS_PER_OBJECT)}, True),
        ("traits", {f"k{i}": i for i in range(parse.MAX_KEYS_PER_OBJECT + 1)}, False),
        ("properties", {"inner": {f"k{i}": "a:b" for i in range(parse.MAX_KEYS_PER_OBJECT + 1)}}, False),
        # colons and brackets inside strings count against the shortcut, never against the event
        ("properties", {"text": "{[:" * 400}, True),
    ],
)
def test_the_shape_limits_at_their_edges(field, value, accepted):
    raw = _event(**{field: value})
    result = parse.normalise(raw, received_at=NOW)
    assert isinstance(result, parse.Message) is accepted
    assert result == _walked(raw)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(alphabet="ab:{[ ", max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    properties=_json_values,
    context=_json_values,
    user_id=st.one_of(
        st.none(), st.integers(), st.text(max_size=8), st.sampled_from([" null ", "NaN", "-1"])
    ),
    timestamp=st.one_of(
        st.none(),
        st.sampled_from(["2026-01-01T12:00:00Z", " 2026-01-01T12:00:00Z ", "2026-01-01", "20260101T120000Z"]),
        st.text(max_size=12),
    ),
)
def test_any_event_gets_the_answer_the_full_checks_give(properties, context, user_id, timestamp):
    raw = _event(
        properties=properties, context=context, userId=user_id, anonymousId="a-1", timestamp=timestamp
    )
    assert parse.normalise(raw, received_at=NOW) == _walked(raw)
