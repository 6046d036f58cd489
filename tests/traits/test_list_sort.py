"""The contact list sorted by a trait column pages through the index-driven ranges
(core.pagination.keyset_page_split) in exactly the order of the coalesced sort key, both ways."""

import itertools

import pytest
from django.utils import timezone

from contacts import selectors as contact_selectors
from tests.factories import make_contact, make_user
from tests.traits.helpers import make_trait
from traits import selectors
from traits.models import TraitValue

pytestmark = pytest.mark.django_db

# Per contact: (count, sum, text); None is "no row". Ties, zeros, negatives, "" and gaps on purpose.
ROWS = [
    (3, 5.0, "b"),
    (None, None, None),
    (0, -2.0, ""),
    (3, 0.0, "a"),
    (1, None, "b"),
    (None, -2.0, None),
    (7, 5.0, "c"),
    (None, 1.5, "a"),
    (0, None, ""),
]


@pytest.fixture
def world():
    count, total, text = make_trait("visits", "count"), make_trait("spent", "sum"), make_trait("plan", "last")
    now = timezone.now()
    contacts = []
    for i, values in enumerate(ROWS):
        contact = make_contact(first_name=f"C{i}")
        contacts.append(contact)
        for trait, value in zip((count, total, text), values, strict=True):
            if value is None:
                continue
            field = "text" if trait is text else "number"
            TraitValue.objects.create(trait=trait, contact=contact, computed_at=now, **{field: value})
    # a row with no number at all sorts like no row
    TraitValue.objects.create(trait=total, contact=contacts[1], computed_at=now, number=None)
    return contacts


def _expected(contacts, index: int, *, missing, descending: bool) -> list[int]:
    keyed = [
        (missing if row[index] is None else row[index], c.pk) for c, row in zip(contacts, ROWS, strict=True)
    ]
    return [pk for _, pk in sorted(keyed, reverse=descending)]


def _walk(user, sort: str, size: int) -> tuple[list[int], list[int]]:
    columns = selectors.contact_list_columns()
    forward, pages, cursor = [], [], None
    for _ in range(20):
        page = contact_selectors.contact_page(
            user=user, filters={}, sort=sort, cursor=cursor, size=size, columns=columns
        )
        pages.append(page)
        forward += [c.pk for c in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    # and back from the last page with its prev cursors
    backward, page = [c.pk for c in pages[-1].rows], pages[-1]
    for _ in range(20):
        if not page.prev_cursor:
            break
        page = contact_selectors.contact_page(
            user=user, filters={}, sort=sort, cursor=page.prev_cursor, size=size, columns=columns
        )
        backward = [c.pk for c in page.rows] + backward
    return forward, backward


@pytest.mark.parametrize(
    ("key", "index", "missing"), [("trait_visits", 0, 0), ("trait_spent", 1, -1e300), ("trait_plan", 2, "")]
)
@pytest.mark.parametrize(("descending", "size"), list(itertools.product((True, False), (1, 2, 4))))
def test_pages_follow_the_coalesced_order_forward_and_back(world, key, index, missing, descending, size):
    user = make_user(username="s")
    sort = f"-{key}" if descending else key
    forward, backward = _walk(user, sort, size)
    expected = _expected(world, index, missing=missing, descending=descending)
    assert forward == expected
    assert backward == expected


def test_a_filter_on_the_trait_narrows_the_ranges(world):
    user = make_user(username="s")
    columns = selectors.contact_list_columns()
    column = next(c for c in columns if c.key == "trait_visits")
    page = contact_selectors.contact_page(
        user=user, filters={}, sort="-trait_visits", cursor=None, size=50, columns=columns
    )
    assert [int(c.trait_visits) for c in page.rows] == [7, 3, 3, 1, 0, 0, 0, 0, 0]
    assert column.split is not None and column.split.missing == 0.0
