"""Merge fields and templates: a whitelisted renderer that names what is missing, escapes values in
HTML, and never runs template code written by a user."""

import pytest
from django.utils import timezone

from core.errors import DomainError, Forbidden, NotFound
from mail.selectors.templates import template_get, templates_available
from mail.services.templates import (
    MergeContext,
    MergeFieldMissing,
    MergeFieldUnknown,
    merge_fields_available,
    merge_render,
    template_create,
    template_delete,
    template_render,
    template_update,
)
from tests.factories import make_admin, make_company, make_contact, make_deal, make_user
from tests.traits.helpers import make_trait
from traits.models import TraitValue

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep():
    return make_user(username="rita", email="rita@ourco.test", first_name="Rita", last_name="Rep")


def test_fields_of_every_record_are_filled(rep):
    acme = make_company(name="Acme")
    ada = make_contact(email="ada@acme.test", first_name="Ada", last_name="Lovelace", company=acme)
    deal = make_deal(title="Pilot", contact=ada)
    context = MergeContext(contact=ada, deal=deal, sender=rep)
    text = "Hi {{ contact.first_name }} of {{company.name}}, about {{ deal.name }}. {{ sender.full_name }}"
    assert merge_render(text=text, context=context) == "Hi Ada of Acme, about Pilot. Rita Rep"


def test_a_default_stands_in_for_an_empty_value(rep):
    ada = make_contact(email="ada@acme.test", first_name="")
    text = "Hi {{ contact.first_name | default: \"there\" }}, {{ contact.last_name|default:'friend' }}"
    assert merge_render(text=text, context=MergeContext(contact=ada)) == "Hi there, friend"


def test_a_missing_value_without_a_default_is_an_error_naming_every_field(rep):
    ada = make_contact(email="ada@acme.test", first_name="", title="")
    with pytest.raises(MergeFieldMissing) as missing:
        merge_render(
            text="{{ contact.first_name }}, {{ contact.title }} at {{ company.name }}"
            " ({{ contact.first_name }})",
            context=MergeContext(contact=ada, sender=rep),
        )
    assert missing.value.missing == ["contact.first_name", "contact.title", "company.name"]
    assert (
        "contact.first_name" in str(missing.value) and missing.value.data["missing"] == missing.value.missing
    )


def test_unknown_fields_and_template_code_are_refused_not_run(rep):
    ada = make_contact(email="ada@acme.test", first_name="Ada")
    for text in (
        "{{ contact.owner }}",
        "{{ contact.first_name.upper }}",
        "{{ contact.__class__ }}",
        "{% load static %}{{ settings.SECRET_KEY }}",
    ):
        with pytest.raises(MergeFieldUnknown):
            merge_render(text=text, context=MergeContext(contact=ada))
    # Django template tags are just text: nothing executes them
    assert merge_render(text="{% now 'Y' %} {{ contact.first_name }}", context=MergeContext(contact=ada)) == (
        "{% now 'Y' %} Ada"
    )
    assert (
        "contact.first_name" in merge_fields_available() and "contact.owner" not in merge_fields_available()
    )


def test_values_are_escaped_in_html_and_kept_on_one_line_in_a_subject(rep):
    ada = make_contact(
        email="ada@acme.test", first_name='<img src=x onerror="alert(1)">', last_name="A\r\nBcc: x"
    )
    context = MergeContext(contact=ada)
    html = merge_render(text="<p>Hi {{ contact.first_name }}</p>", context=context, html=True)
    assert html == "<p>Hi &lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>"
    assert merge_render(text="For {{ contact.last_name }}", context=context, header=True) == "For A Bcc: x"


def test_a_template_renders_subject_html_and_text_and_reports_missing_fields_together(rep):
    ada = make_contact(email="ada@acme.test", first_name="<b>Ada</b>")
    template = template_create(
        actor=rep,
        name="Intro",
        subject="Hello {{ contact.first_name }}",
        body='<p>Hi {{ contact.first_name }}, see <a href="https://acme.example">this</a>.</p><script>x()</script>',
    )
    assert template.body.endswith("<script>x()</script>")  # stored as written, cleaned when rendered
    rendered = template_render(template=template, context=MergeContext(contact=ada, sender=rep))
    assert rendered.subject == "Hello <b>Ada</b>"
    link = '<a href="https://acme.example" rel="noopener noreferrer nofollow">this</a>'
    assert rendered.body_html == f"<p>Hi &lt;b&gt;Ada&lt;/b&gt;, see {link}.</p>"
    assert rendered.body_text == "Hi <b>Ada</b>, see this (https://acme.example)."
    nobody = make_contact(email="x@acme.test", first_name="")
    other = template_create(
        actor=rep, name="Deal", subject="{{ deal.name }}", body="Hi {{ contact.first_name }}"
    )
    with pytest.raises(MergeFieldMissing) as missing:
        template_render(template=other, context=MergeContext(contact=nobody))
    assert missing.value.missing == ["deal.name", "contact.first_name"]


def test_computed_traits_are_merge_fields_through_the_settings_hook(rep):
    ada = make_contact(email="ada@acme.test")
    orders = make_trait("orders", "count")
    TraitValue.objects.create(trait=orders, contact=ada, number=3, computed_at=timezone.now())
    make_trait("plan", "last", property="plan")
    context = MergeContext(contact=ada)
    assert merge_render(text="{{ trait.orders }} orders", context=context) == "3 orders"
    assert merge_render(text='{{ trait.plan | default: "free" }}', context=context) == "free"
    with pytest.raises(MergeFieldMissing, match=r"trait\.plan"):
        merge_render(text="{{ trait.plan }}", context=context)


def test_template_validation_names_the_unknown_field(rep):
    with pytest.raises(DomainError) as bad:
        template_create(actor=rep, name="X", subject="Hi {{ contact.nickname }}", body="{{ deal.name }}")
    assert bad.value.fields == {"subject": "Not a merge field: contact.nickname"}
    with pytest.raises(DomainError) as empty:
        template_create(actor=rep, name=" ", subject="", body="")
    assert set(empty.value.fields) == {"name", "subject", "body"}


def test_personal_templates_are_their_owners_and_shared_ones_editable_by_owner_or_admin(rep):
    olga = make_user(username="olga")
    admin = make_admin(username="adam")
    mine = template_create(actor=rep, name="Mine", subject="S", body="B")
    shared = template_create(actor=rep, name="Team", subject="S", body="B", shared=True)

    assert list(templates_available(user=olga)) == [shared]
    with pytest.raises(NotFound):
        template_get(user=olga, pk=mine.pk)
    with pytest.raises(Forbidden):
        template_update(template=shared, actor=olga, name="Mine now", subject="S", body="B")
    with pytest.raises(Forbidden):
        template_update(template=mine, actor=admin, name="X", subject="S", body="B")  # personal: owner only
    assert (
        template_update(template=shared, actor=admin, name="Team v2", subject="S", body="B").name == "Team v2"
    )
    assert template_update(template=mine, actor=rep, name="Mine v2", subject="S2", body="B").subject == "S2"
    with pytest.raises(Forbidden):
        template_delete(template=shared, actor=olga)
    template_delete(template=shared, actor=admin)
    assert list(templates_available(user=rep)) == [mine]
