"""Scores where other apps show or use them: the contact list's sortable column, segment
conditions (`score`), the drain's derived-data hook."""

import re

import pytest

from contacts.models import ListColumns
from scoring import services
from segments import services as segment_services
from segments.definition import compiler
from tests.factories import make_contact, profile_update, stored_page
from tests.scoring.helpers import make_model
from tests.segments.helpers import matches, members, one

pytestmark = pytest.mark.django_db

PRICING = [{"label": "Pricing", "kind": "page", "path": "/pricing", "points": 10}]


def scored(views: dict[str, int]):
    model = make_model(name="Enterprise", engagement=PRICING)
    contacts = {}
    for name, n in views.items():
        contacts[name] = make_contact(first_name=name)
        for _ in range(n):
            stored_page(contacts[name], "/pricing")
    services.scores_refresh(contact_ids=[c.pk for c in contacts.values()])
    return model, contacts


def names(response) -> list[str]:
    return re.findall(r'data-column="name"[^>]*>\s*<a href="[^"]+">([^<]+)</a>', response.content.decode())


def test_the_contact_list_shows_and_sorts_by_score(sales_client, sales_user, django_assert_max_num_queries):
    model, _ = scored({"Ada": 3, "Bob": 0, "Cy": 7, "Di": 1})
    key = f"score_{model.pk}"
    ListColumns.objects.create(user=sales_user, entity="contact", columns=["name", key])
    html = sales_client.get("/contacts/").content.decode()
    assert "Enterprise score" in html
    assert re.findall(rf'data-column="{key}">([^<]*)</td>', html).count("70") == 1
    by_score = sales_client.get(f"/contacts/?sort=-{key}")
    assert [n.split()[0] for n in names(by_score)] == ["Cy", "Ada", "Di", "Bob"]
    filtered = sales_client.get(f"/contacts/?col_{key}=20&sort=-{key}")
    assert [n.split()[0] for n in names(filtered)] == ["Cy", "Ada"]


def test_a_segment_on_a_score(django_capture_on_commit_callbacks):
    model, c = scored({"Ada": 3, "Bob": 0, "Cy": 7})
    at_least_30 = one({"type": "score", "model": model.pk, "op": "gte", "value": 30})
    below_30 = one({"type": "score", "model": model.pk, "op": "lt", "value": 30})
    assert matches(at_least_30) == {c["Ada"].pk, c["Cy"].pk}
    assert matches(below_30) == {c["Bob"].pk}  # Bob has no row: a score of 0
    tree = compiler.parse(at_least_30)
    assert compiler.describe(tree.children[0]) == "Lead score “Enterprise” ≥ 30"
    with pytest.raises(compiler.DefinitionError):
        compiler.parse(one({"type": "score", "model": model.pk, "op": "gte", "value": "30"}))


def test_a_segment_on_a_score_sees_the_score_the_same_events_gave(admin_user):
    # given a segment of people scoring at least 20, and a person scoring 10
    model, c = scored({"Ada": 1})
    segment = segment_services.segment_create(
        actor=admin_user,
        name="Hot",
        definition=one({"type": "score", "model": model.pk, "op": "gte", "value": 20}),
    )
    segment_services.segment_refresh(segment=segment)
    assert members(segment) == set()
    # when another pricing view arrives and the drain runs
    stored_page(c["Ada"], "/pricing")
    profile_update(c["Ada"])
    segment_services.profile_updates_process()
    # then the score was refreshed before the segment looked: Ada is in
    assert members(segment) == {c["Ada"].pk}
