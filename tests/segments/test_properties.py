"""Property tests: incremental (per contact) and full recompute agree; hostile definitions never
reach the database as errors."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from segments import services
from segments.definition import compiler
from segments.models import MembershipChange, Segment
from tests.factories import make_contact, stored_page, stored_track
from tests.segments.helpers import members

pytestmark = pytest.mark.django_db

PATHS = ["/pricing", "/pricing/teams", "/docs", "/"]
EVENTS = ["Order Completed", "Signed Up"]

count_test = st.fixed_dictionaries(
    {"operator": st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]), "value": st.integers(0, 3)}
)
window = st.one_of(
    st.just({}),
    st.integers(1, 12).map(lambda d: {"within_days": d}),
    st.tuples(st.integers(0, 12), st.integers(0, 12)).map(
        lambda t: {"between": {"start_days_ago": max(t), "end_days_ago": min(t)}}
    ),
)
page_leaf = st.builds(
    lambda op, path, count, win: {
        "type": "page",
        "where": [{"property": "path", "operator": op, "value": path}],
        "count": count,
        **win,
    },
    st.sampled_from(["eq", "contains", "starts_with", "neq"]),
    st.sampled_from(PATHS),
    count_test,
    window,
)
event_leaf = st.builds(
    lambda name, where, count, win: {"type": "event", "name": name, "where": where, "count": count, **win},
    st.sampled_from(EVENTS),
    st.one_of(
        st.just([]),
        st.integers(0, 300).map(lambda n: [{"property": "revenue", "operator": "gt", "value": n}]),
    ),
    count_test,
    window,
)
trait_leaf = st.one_of(
    st.builds(
        lambda op, v: {"type": "trait", "trait": "plan", "operator": op, "value": v},
        st.sampled_from(["eq", "neq", "contains"]),
        st.sampled_from(["pro", "free", "r"]),
    ),
    st.builds(
        lambda op, v: {"type": "trait", "trait": "seats", "operator": op, "value": v},
        st.sampled_from(["gt", "lt", "gte"]),
        st.integers(0, 20),
    ),
    st.sampled_from(["is_set", "is_not_set"]).map(
        lambda op: {"type": "trait", "trait": "plan", "operator": op}
    ),
)
other_leaf = st.one_of(
    st.sampled_from(["has", "not_has"]).map(lambda op: {"type": "tag", "operator": op, "value": "vip"}),
    st.sampled_from(["@acme.com", "@x.io"]).map(
        lambda v: {"type": "field", "field": "email", "operator": "ends_with", "value": v}
    ),
)
leaf = st.one_of(page_leaf, event_leaf, trait_leaf, other_leaf)
definitions = st.recursive(
    leaf,
    lambda children: st.builds(
        lambda op, conditions: {"op": op, "conditions": conditions},
        st.sampled_from(["and", "or"]),
        st.lists(children, max_size=3),
    ),
    max_leaves=6,
).map(lambda node: node if "op" in node else {"op": "and", "conditions": [node]})

person = st.fixed_dictionaries(
    {
        "domain": st.sampled_from(["acme.com", "x.io"]),
        "traits": st.fixed_dictionaries(
            {}, optional={"plan": st.sampled_from(["pro", "free"]), "seats": st.integers(0, 20)}
        ),
        "vip": st.booleans(),
        "pages": st.lists(st.tuples(st.sampled_from(PATHS), st.integers(0, 14)), max_size=5),
        "events": st.lists(
            st.tuples(st.sampled_from(EVENTS), st.integers(0, 14), st.integers(0, 400)), max_size=4
        ),
    }
)


def _build(people: list[dict]) -> list[int]:
    ids = []
    for i, p in enumerate(people):
        contact = make_contact(email=f"p{i}@{p['domain']}", tags=["vip"] if p["vip"] else [])
        Contact.objects.filter(pk=contact.pk).update(traits=p["traits"])
        for path, days in p["pages"]:
            stored_page(contact, path, days_ago=days)
        for name, days, revenue in p["events"]:
            stored_track(contact, name, days_ago=days, properties={"revenue": revenue})
        ids.append(contact.pk)
    return ids


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(definition=definitions, people=st.lists(person, min_size=1, max_size=6), chunk=st.integers(1, 3))
def test_incremental_and_full_recompute_agree(definition, people, chunk):
    with transaction.atomic():
        ids = _build(people)
        segment = services.segment_create(actor=None, name="p", definition=definition)
        # incremental: contacts in chunks, as the realtime path sees them
        for start in range(0, len(ids), chunk):
            services.segments_evaluate_contacts(contact_ids=ids[start : start + chunk])
        incremental = members(segment)
        changes_before = MembershipChange.objects.filter(segment=segment).count()
        # full: the same answer, and so no further change
        services.segment_refresh(segment=segment)
        assert members(segment) == incremental
        assert MembershipChange.objects.filter(segment=segment).count() == changes_before
        segment.refresh_from_db()
        assert segment.member_count == len(incremental)
        transaction.set_rollback(True)


# ---- hostile definitions --------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["\x00", "'; DROP TABLE x; --", "%", "_", "\\", "1e400", "2026-13-45", "0", "-1", "[]", "{}"]
        + ["²", "١٢", "①"]  # str.isdigit() is true of each; int() refuses two, reads "١٢" as 12
    ),
    st.text(min_size=490, max_size=520),
)
hostile_scalar = st.one_of(
    hostile_text,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
hostile_json = st.recursive(
    hostile_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)
OPS = sorted(compiler.ALL_OPS | {"has", "not_has", "in", "not_in", "xor", ""})
TYPES = ["page", "screen", "event", "field", "trait", "tag", "deal", "segment", "x"]
FIELDS = [*compiler.CONTACT_FIELDS, "custom.tier", "password", ""]
near_leaf = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={
        "name": hostile_text,
        "field": st.one_of(st.sampled_from(FIELDS), hostile_text),
        "trait": hostile_text,
        "operator": st.sampled_from(OPS),
        "value": hostile_json,
        "segment_id": st.one_of(st.integers(), hostile_scalar),
        "within_days": hostile_scalar,
        "between": hostile_json,
        "count": st.fixed_dictionaries({"operator": st.sampled_from(OPS), "value": hostile_scalar}),
        "where": st.lists(
            st.fixed_dictionaries(
                {
                    "property": st.one_of(
                        st.sampled_from(["path", "name", "revenue", "status", "amount"]), hostile_text
                    ),
                    "field": st.sampled_from(list(compiler.DEAL_FIELDS)),
                    "operator": st.sampled_from(OPS),
                    "value": hostile_json,
                }
            ),
            max_size=3,
        ),
    },
)
hostile_definitions = st.one_of(
    hostile_json,
    definitions,  # valid ones run against the fixture's ill-typed data
    st.recursive(
        near_leaf,
        lambda children: st.fixed_dictionaries(
            {"op": st.sampled_from(["and", "or", "not"]), "conditions": st.lists(children, max_size=4)}
        ),
        max_leaves=8,
    ),
)


@pytest.fixture
def fuzz_data():
    contact = make_contact(email="f@x.io")
    Contact.objects.filter(pk=contact.pk).update(
        traits={"plan": ["x"], "seats": "many", "n": 1e300, "d": "2026-13-45", "o": {"a": 1}}
    )
    stored_page(contact, "/pricing", properties={"revenue": "lots", "amount": [1]})
    stored_track(contact, "Order Completed", properties={"revenue": 1e308})
    return contact


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=hostile_definitions)
def test_hostile_definitions_are_refused_or_run_never_failing_in_sql(fuzz_data, definition):
    try:
        tree = compiler.parse(definition)
    except compiler.DefinitionError as exc:
        assert exc.path.startswith(("definition", "kind"))
        return
    ctx = compiler.Context(today=timezone.now().date() - dt.timedelta(days=0))
    with transaction.atomic():  # a SQL error would raise here and fail the test
        compiler.matching_contacts(tree, ctx).count()
        compiler.leaf_flags(tree, ctx, contact_id=fuzz_data.pk)


def test_segment_ids_in_hostile_definitions_are_checked():
    with pytest.raises(compiler.DefinitionError):
        services.segment_create(
            actor=None,
            name="x",
            definition={"op": "and", "conditions": [{"type": "segment", "segment_id": 2**40}]},
        )
    assert not Segment.objects.exists()
