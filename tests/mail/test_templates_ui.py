"""Settings → Email templates through the pages: create, edit, delete and duplicate, the form's
errors in place, who may change a shared template, the merge-field picker and the preview."""

import html

import pytest
from django.urls import reverse

from mail.models import EmailTemplate
from mail.selectors.templates import template_get_editable, template_may_edit, templates_available
from mail.services.templates import MergeContext, merge_fields_available, template_create, template_render
from tests.factories import make_admin, make_contact, make_user
from tests.factories.pipeline import make_deal

pytestmark = pytest.mark.django_db

HI = "Hi {{ contact.first_name }}"


def _signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def rep():
    return make_user(username="rita", first_name="Rita", last_name="Rep")


@pytest.fixture
def olga():
    return make_user(username="olga")


@pytest.fixture
def admin():
    return make_admin(username="adam")


def _post(client, url, **fields):
    data = {"name": "Intro", "subject": HI, "body": "Hello", **fields}
    return client.post(url, {k: v for k, v in data.items() if v is not None})


def test_a_rep_creates_a_template_and_finds_it_in_the_list(client, rep):
    _signed_in(client, rep)
    form = client.get(reverse("mail:email_template_new"))
    assert form.status_code == 200
    page = form.content.decode()
    assert "plain-text copy" in page  # the body's explanation: simple HTML and a text copy
    for path in merge_fields_available():  # the picker lists the whitelist, nothing else
        assert f'data-merge-field="{path}"' in page
    assert 'data-merge-field="contact.owner' not in page
    assert "js/email_templates.js" in page and "<script>" not in page  # no inline script (CSP)

    response = _post(
        client,
        reverse("mail:email_template_new"),
        name="Follow-up",
        subject="Next steps, {{ contact.first_name }}",
        body='Hi {{ contact.first_name | default: "there" }},\r\nthanks for the call.',
        shared="on",
    )
    assert response.status_code == 302 and response["Location"] == reverse("mail:email_templates")
    template = EmailTemplate.objects.get(name="Follow-up")
    assert (template.owner, template.shared) == (rep, True)
    assert template.subject == "Next steps, {{ contact.first_name }}"
    listing = client.get(response["Location"]).content.decode()
    assert "Template “Follow-up” saved." in listing
    assert "Follow-up" in listing and 'data-testid="shared-badge"' in listing and ">You<" in listing


def test_the_form_shows_errors_in_place_and_refuses_unknown_merge_fields(client, rep):
    _signed_in(client, rep)
    url = reverse("mail:email_template_new")
    empty = _post(client, url, name="", subject="", body="")
    assert empty.status_code == 422
    page = empty.content.decode()
    assert 'data-testid="field-error-name"' in page and 'data-testid="field-error-body"' in page

    unknown = _post(client, url, subject="Hi {{ contact.nickname }}", body="{{ contact.owner.password }}")
    assert unknown.status_code == 422
    page = unknown.content.decode()
    assert "Not a merge field: contact.nickname" in page
    assert "Not a merge field: {{ contact.owner.password }}" in html.unescape(page)
    assert 'value="Hi {{ contact.nickname }}"' in page  # what was typed stays in the form
    assert not EmailTemplate.objects.exists()


def test_the_owner_edits_and_deletes_a_template(client, rep):
    template = template_create(actor=rep, name="Intro", subject=HI, body="Old body")
    _signed_in(client, rep)
    url = reverse("mail:email_template_edit", args=[template.pk])
    form = client.get(url).content.decode()
    assert 'value="Intro"' in form and "Old body" in form

    bad = _post(client, url, body="{{ deal.budget }}")
    assert bad.status_code == 422 and "Not a merge field: deal.budget" in bad.content.decode()
    saved = _post(client, url, name="Intro v2", subject="Hello {{ deal.name }}", body="New body")
    assert saved.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.subject, template.body, template.shared) == (
        "Intro v2",
        "Hello {{ deal.name }}",
        "New body",
        False,
    )

    listing = client.get(reverse("mail:email_templates")).content.decode()
    assert "data-confirm=" in listing  # the delete button asks first
    deleted = client.post(reverse("mail:email_template_delete", args=[template.pk]), follow=True)
    assert "Template “Intro v2” deleted." in deleted.content.decode()
    assert not EmailTemplate.objects.filter(pk=template.pk).exists()


def test_the_list_filters_mine_and_shared_and_hides_others_personal_templates(client, rep, olga):
    template_create(actor=rep, name="Rita personal", subject="S", body="B")
    template_create(actor=rep, name="Rita shared", subject="S", body="B", shared=True)
    template_create(actor=olga, name="Olga personal", subject="S", body="B")
    template_create(actor=olga, name="Olga shared", subject="S", body="B", shared=True)
    _signed_in(client, rep)

    def names(query=""):
        page = client.get(reverse("mail:email_templates") + query).content.decode()
        return [n for n in ("Rita personal", "Rita shared", "Olga personal", "Olga shared") if n in page]

    assert names() == ["Rita personal", "Rita shared", "Olga shared"]
    assert names("?show=mine") == ["Rita personal", "Rita shared"]
    assert names("?show=shared") == ["Rita shared", "Olga shared"]
    assert names("?show=bogus") == ["Rita personal", "Rita shared", "Olga shared"]
    assert "olga" in client.get(reverse("mail:email_templates") + "?show=shared").content.decode()


def test_a_rep_uses_but_cannot_change_someone_elses_shared_template(client, rep, olga):
    shared = template_create(actor=olga, name="Team intro", subject=HI, body="Team body", shared=True)
    personal = template_create(actor=olga, name="Olga only", subject=HI, body="Private")
    _signed_in(client, rep)

    listing = client.get(reverse("mail:email_templates")).content.decode()
    assert reverse("mail:email_template_preview", args=[shared.pk]) in listing
    assert reverse("mail:email_template_edit", args=[shared.pk]) not in listing
    assert client.get(reverse("mail:email_template_edit", args=[shared.pk])).status_code == 403
    assert (
        _post(client, reverse("mail:email_template_edit", args=[shared.pk]), name="Mine").status_code == 403
    )
    assert client.post(reverse("mail:email_template_delete", args=[shared.pk])).status_code == 403
    shared.refresh_from_db()
    assert shared.name == "Team intro"
    # another's personal template is not there at all
    for name in ("mail:email_template_edit", "mail:email_template_preview"):
        assert client.get(reverse(name, args=[personal.pk])).status_code == 404
    assert client.post(reverse("mail:email_template_duplicate", args=[personal.pk])).status_code == 404

    ada = make_contact(first_name="Ada", email="ada@acme.test")
    preview = client.get(
        reverse("mail:email_template_preview", args=[shared.pk]), {"contact": f"Ada (#{ada.pk})"}
    )
    assert preview.status_code == 200 and "Hi Ada" in preview.content.decode()

    copied = client.post(reverse("mail:email_template_duplicate", args=[shared.pk]))
    copy = EmailTemplate.objects.get(name="Copy of Team intro")
    assert copied["Location"] == reverse("mail:email_template_edit", args=[copy.pk])
    assert (copy.owner, copy.shared, copy.subject, copy.body) == (rep, False, HI, "Team body")


def test_an_admin_edits_a_shared_template_but_not_a_personal_one(client, rep, admin):
    shared = template_create(actor=rep, name="Team intro", subject=HI, body="B", shared=True)
    personal = template_create(actor=rep, name="Rita only", subject=HI, body="B")
    _signed_in(client, admin)
    form = client.get(reverse("mail:email_template_edit", args=[shared.pk])).content.decode()
    assert "as an Admin" in form
    assert (
        _post(
            client, reverse("mail:email_template_edit", args=[shared.pk]), name="Team v2", shared="on"
        ).status_code
        == 302
    )
    shared.refresh_from_db()
    assert (shared.name, shared.shared, shared.owner) == ("Team v2", True, rep)
    assert client.get(reverse("mail:email_template_edit", args=[personal.pk])).status_code == 404
    assert client.post(reverse("mail:email_template_delete", args=[shared.pk])).status_code == 302
    assert not EmailTemplate.objects.filter(pk=shared.pk).exists()


def test_the_edit_rule_is_one_function_the_pages_and_services_share(rep, olga, admin):
    shared = template_create(actor=rep, name="T", subject="S", body="B", shared=True)
    personal = template_create(actor=rep, name="P", subject="S", body="B")
    assert template_may_edit(template=shared, user=rep) and template_may_edit(template=shared, user=admin)
    assert not template_may_edit(template=shared, user=olga)
    assert not template_may_edit(template=personal, user=admin)
    assert template_get_editable(user=admin, pk=shared.pk) == shared
    assert list(templates_available(user=olga, scope="mine")) == []
    assert list(templates_available(user=rep, scope="shared")) == [shared]


def test_the_preview_escapes_values_and_keeps_text_line_breaks(client, rep):
    template = template_create(
        actor=rep,
        name="Intro",
        subject="Hello {{ contact.first_name }}",
        body="Hi {{ contact.first_name }},\r\n\r\nabout {{ deal.name }}.\r\n{{ sender.full_name }}",
    )
    hostile = make_contact(first_name="<script>alert(1)</script>", email="x@acme.test")
    deal = make_deal(title="Big <b>deal</b>", contact=hostile)
    _signed_in(client, rep)
    response = client.get(
        reverse("mail:email_template_preview", args=[template.pk]),
        {"contact": f"whoever (#{hostile.pk})", "deal": f"Big (#{deal.pk})"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert (
        "Hi &lt;script&gt;alert(1)&lt;/script&gt;,<br><br>about Big &lt;b&gt;deal&lt;/b&gt;.<br>Rita Rep"
        in page
    )
    assert 'data-testid="preview-subject">Hello &lt;script&gt;' in page
    assert 'data-testid="preview-missing"' not in page
    # the text part keeps the paragraphs, the HTML part renders them
    rendered = template_render(
        template=template, context=MergeContext(contact=hostile, deal=deal, sender=rep)
    )
    assert rendered.body_text == "Hi <script>alert(1)</script>,\n\nabout Big <b>deal</b>.\nRita Rep"


def test_a_body_written_as_html_keeps_its_own_layout(rep):
    template = template_create(actor=rep, name="H", subject="S", body="<p>One</p>\n<p>Two</p>")
    rendered = template_render(template=template, context=MergeContext(sender=rep))
    assert rendered.body_html == "<p>One</p>\n<p>Two</p>" and rendered.body_text == "One\n\nTwo"


def test_the_preview_names_every_missing_field_and_never_shows_a_blank(client, rep):
    template = template_create(
        actor=rep,
        name="Intro",
        subject="About {{ deal.name }}",
        body='Hi {{ contact.first_name }} of {{ company.name | default: "you" }} ({{ contact.title }})',
    )
    nameless = make_contact(first_name="", email="nobody@acme.test")
    _signed_in(client, rep)
    url = reverse("mail:email_template_preview", args=[template.pk])
    page = client.get(url, {"contact": f"nobody@acme.test (#{nameless.pk})"}).content.decode()
    assert 'data-testid="preview-missing"' in page
    for field in ("deal.name", "contact.first_name", "contact.title"):
        assert f"<code>{field}</code>" in page
    assert "company.name</code>" not in page  # it has a default
    assert 'data-testid="preview"' not in page  # no half-filled email is shown

    # no contact picked yet: the contact's fields are named, with what to do
    page = client.get(url).content.decode()
    assert "<code>contact.first_name</code>" in page and "Choose a contact above." in page


def test_the_preview_says_when_the_picked_contact_or_deal_is_not_one(client, rep):
    template = template_create(actor=rep, name="Intro", subject="S", body="B")
    _signed_in(client, rep)
    response = client.get(
        reverse("mail:email_template_preview", args=[template.pk]),
        {"contact": "Ada", "deal": "Big (#999999)"},
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Pick a contact from the list." in page and "Pick a deal from the list." in page
    assert 'value="Ada"' in page


def test_settings_links_to_email_templates(client, rep):
    _signed_in(client, rep)
    page = client.get(reverse("accounts:settings")).content.decode()
    assert reverse("mail:email_templates") in page and "Email templates" in page


def test_the_list_costs_the_same_queries_for_many_templates(client, rep, django_assert_max_num_queries):
    _signed_in(client, rep)
    owners = [rep] + [make_user(username=f"owner{i}") for i in range(3)]
    for i in range(2):
        for owner in owners:
            template_create(actor=owner, name=f"T{i} {owner.username}", subject="S", body="B", shared=True)
    client.get(reverse("mail:email_templates"))  # the first request warms per-process caches
    with django_assert_max_num_queries(4):
        page = client.get(reverse("mail:email_templates")).content.decode()
    assert page.count('data-testid="template-row"') == 8


def test_the_editor_shows_text_as_typed_and_saving_it_again_changes_nothing(client, rep):
    _signed_in(client, rep)
    typed = "Q&A for you, a<b and c > d"
    _post(client, reverse("mail:email_template_new"), body=typed)
    template = EmailTemplate.objects.get()
    assert template.body == typed  # stored as written; sanitised when rendered
    url = reverse("mail:email_template_edit", args=[template.pk])
    form = client.get(url).content.decode()
    assert ">Q&amp;A for you, a&lt;b and c &gt; d</textarea>" in form  # the text as typed, escaped once
    _post(client, url, body=typed)
    template.refresh_from_db()
    assert template.body == typed
