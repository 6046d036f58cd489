import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from tests.factories import make_admin, make_user
from workspace import can
from workspace.context_processors import navigation


def _render(source: str, user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load can %}" + source).render(Context({"request": request}))


@pytest.mark.django_db
def test_may_shows_its_block_to_the_roles_the_rule_lets_in():
    source = '{% may "segments_manage" %}build{% else %}read-only{% endmay %}'
    assert _render(source, make_user(role="Marketing")) == "build"
    assert _render(source, make_admin()) == "build"
    assert _render(source, make_user(role="Sales")) == "read-only"


def test_a_misspelt_rule_fails_when_the_template_compiles():
    with pytest.raises(TemplateSyntaxError, match="no rule 'segment'"):
        Template('{% load can %}{% may "segment" %}x{% endmay %}')


@pytest.mark.django_db
def test_the_sidebar_lists_only_pages_the_role_may_open():
    request = RequestFactory().get("/contacts/")
    request.user = make_user(role="Sales")
    labels = [item["label"] for item in navigation(request)["nav_items"]]
    assert "Events" not in labels  # the debugger is for Admin and Marketing
    assert {"Contacts", "Pipeline", "Segments", "Sources", "Settings"} <= set(labels)
    request.user = make_user(role="Marketing")
    assert "Events" in [item["label"] for item in navigation(request)["nav_items"]]


def test_no_one_signed_out_may_anything():
    from django.contrib.auth.models import AnonymousUser

    assert not any(can.may(AnonymousUser(), rule) for rule in can.RULES)
    assert not can.may(None, "contacts")


@pytest.mark.django_db
def test_task_checkboxes_a_user_cannot_tick_are_disabled(client):
    from django.utils import timezone

    from pipeline.services import activities
    from tests.factories import make_contact

    rita = make_user(role="Sales", username="rita")
    contact = make_contact(first_name="Ada", owner=rita)
    task = activities.task_create(actor=rita, title="Call Ada", contact=contact, due_at=timezone.now())
    disabled = 'data-testid="task-done" disabled title="Only the assignee, the creator or an Admin'
    # toggling answers 403 for a read-only role, and for another rep: neither is offered the tick
    for username, role in (("mia", "Marketing"), ("bob", "Sales")):
        client.force_login(make_user(role=role, username=username))
        html = client.get(f"/contacts/{contact.pk}/activities/").content.decode()
        assert disabled in html, username
        assert client.post(f"/tasks/{task.pk}/toggle/", {"done": "on"}).status_code == 403
    # her own task, on the record and on Home, she may tick
    client.force_login(rita)
    for url in (f"/contacts/{contact.pk}/activities/", "/"):
        html = client.get(url).content.decode()
        assert 'data-testid="task-done">' in html, url
        assert disabled not in html, url


# The page each page rule stands for (rules for POST-only actions have no page to open).
RULE_PAGES = {
    "contacts": "/contacts/",
    "companies": "/companies/",
    "pipeline": "/pipeline/",
    "tasks": "/tasks/",
    "reports": "/reports/",
    "segments": "/segments/",
    "events": "/events/",
    "sources": "/sources/",
    "contacts_create": "/contacts/new/",
    "contacts_import": "/contacts/import/",
    "contacts_merge": "/contacts/duplicates/",
    "custom_fields": "/settings/custom-fields/",
    "identity_merges": "/identity/merges/",
    "pipeline_configure": "/settings/pipelines/",
    "segments_manage": "/segments/new/",
    "scoring_manage": "/settings/scoring/",
    "predictions": "/settings/predictions/",
    "predictions_manage": "/settings/predictions/new/",
    "sources_manage": "/sources/new/",
    "identity_settings": "/settings/identity/",
    "erasures": "/settings/erasures/",
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Admin", "Sales", "Marketing", None])
def test_every_page_rule_answers_as_the_page_itself_does(client, role):
    from django.contrib.auth import get_user_model

    user = make_user(role=role) if role else get_user_model().objects.create_user("nobody", password="x")
    client.force_login(user)
    disagree = {}
    for rule, path in RULE_PAGES.items():
        status = client.get(path).status_code
        assert status in (200, 403), (path, status)
        if can.may(user, rule) != (status == 200):
            disagree[rule] = (can.may(user, rule), status)
    assert disagree == {}, f"{role}: workspace.can says (may, but the page answered)"
