"""Property test: the realtime path (refreshes of the contacts each change touches, in partial
batches, as the drain sees them) leaves the same values as a full recompute, over random event
sequences: out-of-order timestamps, ties, the same contact refreshed again, merges, splits, events
deleted (erasure, retention), contacts changing company, and the clock moving on (window expiry)."""

import datetime as dt
import itertools

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from events.models import Event
from identity.models import ContactEvent
from tests.factories import make_company, make_contact
from tests.factories.events import event_source
from tests.traits.helpers import all_values, make_trait
from traits import services
from traits.models import CompanyTraitValue, TraitValue
from traits.services import computing

pytestmark = pytest.mark.django_db

PEOPLE = 4
_seq = itertools.count(1)

event_op = st.tuples(
    st.just("event"),
    st.integers(0, PEOPLE - 1),
    st.sampled_from(["Order Completed", "Viewed"]),
    # days ago: inserted in any order, ties on the same day and hour; mostly inside the windows
    st.one_of(st.integers(0, 3), st.integers(0, 40)),
    st.sampled_from([0, 6]),
    st.sampled_from([None, 1, 2.5, 10, "x"]),
    st.sampled_from(["a", "b", "c"]),
)
operations = st.lists(
    st.one_of(
        event_op,
        event_op,
        st.tuples(st.just("merge"), st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("split"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
        st.tuples(st.just("company"), st.integers(0, PEOPLE - 1), st.integers(0, 2)),
        st.tuples(st.just("drain"), st.integers(1, 3)),
        st.tuples(st.just("tick"), st.integers(0, 3), st.sampled_from([1, 7, 17])),
        st.tuples(st.just("tick"), st.integers(0, 1), st.sampled_from([7, 17])),
    ),
    max_size=30,
)


def _traits() -> None:
    orders = dict(event_type="track", event_name="Order Completed")
    make_trait("orders", "count", **orders)
    make_trait("orders_7d", "count", window_days=7, **orders)
    make_trait("views_1d", "count", window_days=1, event_name="Viewed")
    make_trait("min_2d", "min", property="total", window_days=2)
    revenue = make_trait("revenue", "sum", property="total", **orders)
    make_trait("avg_30d", "avg", property="total", window_days=30)
    make_trait(
        "top", "max", property="total", conditions=[{"property": "sku", "operator": "neq", "value": "c"}]
    )
    make_trait("first_sku", "first", property="sku")
    make_trait("last_sku_10d", "last", property="sku", window_days=10)
    make_trait("common_sku", "most_frequent", property="sku", **orders)
    make_trait("skus", "unique_list", property="sku", window_days=20)
    make_trait("sku_count", "unique_count", property="sku")
    make_trait("account_revenue", "account_sum", source=revenue)
    make_trait("buyers", "account_count", source=revenue)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_incremental_equals_recompute(monkeypatch, ops):
    clock = [dt.datetime(2026, 6, 15, 9, 30, tzinfo=dt.UTC)]
    monkeypatch.setattr(computing.timezone, "now", lambda: clock[0])
    with transaction.atomic():
        _traits()
        companies = [make_company(name=f"Co {i}") for i in range(3)]
        people = [make_contact(first_name=f"P{i}", company=companies[i % 3]) for i in range(PEOPLE)]
        ids = [p.pk for p in people]
        events: list[tuple[int, int]] = []  # (event id, the contact it was first stored on)
        pending: set[int] = set()

        def live(i: int) -> bool:
            return not Contact.objects.filter(pk=ids[i], merged_into__isnull=False).exists()

        for op in ops:
            kind = op[0]
            if kind == "event":
                _, who, name, days, hours, total, sku = op
                if not live(who):
                    continue  # the worker stores events on live contacts
                at = clock[0] - dt.timedelta(days=days, hours=hours)
                props = {"sku": sku} if total is None else {"sku": sku, "total": total}
                event = Event.objects.create(
                    source=event_source(), message_id=f"h{next(_seq)}", type="track", event=name,
                    anonymous_id=f"a{who}", properties=props, timestamp=at, received_at=at,
                )  # fmt: skip
                ContactEvent.objects.create(
                    event=event, contact_id=ids[who], type="track", name=name, timestamp=at, received_at=at
                )
                events.append((event.pk, ids[who]))
                pending.add(ids[who])
            elif kind == "merge":
                _, w, loser = op
                if w == loser or not live(w) or not live(loser):
                    continue
                ContactEvent.objects.filter(contact_id=ids[loser]).update(contact_id=ids[w])
                Contact.objects.filter(pk=ids[loser]).update(merged_into_id=ids[w])
                pending |= {ids[w], ids[loser]}
            elif kind == "split":
                loser = ids[op[1]]
                winner = Contact.objects.filter(pk=loser).values_list("merged_into_id", flat=True).first()
                if winner is None:
                    continue
                back = [e for e, origin in events if origin == loser]
                ContactEvent.objects.filter(event_id__in=back).update(contact_id=loser)
                Contact.objects.filter(pk=loser).update(merged_into=None)
                pending |= {winner, loser}
            elif kind == "delete":
                if op[1] >= len(events):
                    continue
                event_id, _ = events.pop(op[1])
                row = ContactEvent.objects.get(event_id=event_id)
                pending.add(row.contact_id)
                row.delete()
                Event.objects.filter(pk=event_id).delete()
            elif kind == "company":
                Contact.objects.filter(pk=ids[op[1]]).update(company=companies[op[2]])
                pending.add(ids[op[1]])
            elif kind == "drain":
                batch = sorted(pending)[: op[1]]
                services.traits_refresh_contacts(contact_ids=batch)
                # the same contact refreshed twice changes nothing the second time
                assert services.traits_refresh_contacts(contact_ids=batch) == set()
                pending -= set(batch)
            else:  # tick: time passes; the beat sweep refreshes what expired
                services.traits_refresh_contacts(contact_ids=sorted(pending))
                pending.clear()
                clock[0] += dt.timedelta(days=op[1], hours=op[2])
                while services.traits_windows_expire():
                    pass
                # what the sweep left is what a recompute now gives
                assert services.traits_recompute() == set()
        services.traits_refresh_contacts(contact_ids=sorted(pending))
        while services.traits_windows_expire():
            pass
        incremental = all_values()
        # a full recompute over the incremental state changes nothing ...
        assert services.traits_recompute() == set()
        assert all_values() == incremental
        # ... and from nothing gives the same values
        TraitValue.objects.all().delete()
        CompanyTraitValue.objects.all().delete()
        services.traits_recompute()
        assert all_values() == incremental
        transaction.set_rollback(True)
