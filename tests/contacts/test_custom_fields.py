import pytest
from django.core.exceptions import ValidationError

from contacts import selectors, services
from contacts.models import CustomField, FieldChange
from tests.factories import make_contact


@pytest.fixture
def fields(db):
    return {
        "score": CustomField.objects.create(
            entity="contact", key="score", label="Score", field_type="number"
        ),
        "renewal": CustomField.objects.create(
            entity="contact", key="renewal", label="Renewal", field_type="date"
        ),
        "plan": CustomField.objects.create(
            entity="contact", key="plan", label="Plan", field_type="choice", choices=["Free", "Pro"]
        ),
        "vip": CustomField.objects.create(entity="contact", key="vip", label="VIP", field_type="boolean"),
        "note": CustomField.objects.create(entity="contact", key="note", label="Note", field_type="text"),
    }


def test_values_are_coerced_to_their_types(fields):
    contact = services.contact_create(
        actor=None,
        email="ada@example.com",
        custom_fields={
            "score": "1,200",
            "renewal": "2027-01-31",
            "plan": "pro",
            "vip": "yes",
            "note": " hi ",
        },
    )
    assert contact.custom_fields == {
        "score": 1200,
        "renewal": "2027-01-31",
        "plan": "Pro",
        "vip": True,
        "note": "hi",
    }


def test_bad_values_and_unknown_keys_are_refused_naming_each(fields):
    with pytest.raises(ValidationError) as caught:
        services.contact_create(
            actor=None, custom_fields={"score": "lots", "renewal": "31/01/2027", "plan": "Gold", "nope": 1}
        )
    messages = caught.value.message_dict["custom_fields"]
    assert any(m.startswith("score:") for m in messages)
    assert any(m.startswith("renewal:") for m in messages)
    assert any(m.startswith("plan:") and "Free, Pro" in m for m in messages)
    assert any(m == "nope: no such custom field" for m in messages)


def test_an_update_merges_and_clears_keys(fields):
    contact = services.contact_create(
        actor=None, first_name="Ada", custom_fields={"score": 5, "plan": "Free"}
    )
    contact = services.contact_update(contact=contact, actor=None, custom_fields={"score": 7, "plan": None})
    contact.refresh_from_db()
    assert contact.custom_fields == {"score": 7}


def test_field_history_records_who_changed_what(fields, sales_user):
    contact = make_contact(email="ada@example.com", owner=sales_user)
    services.contact_update(contact=contact, actor=sales_user, title="CTO", custom_fields={"score": 3})
    services.contact_update(contact=contact, actor=sales_user, title="CTO")  # no change, no row
    services.contact_update(contact=contact, actor=sales_user, title="CEO")
    history = selectors.field_history(entity="contact", object_id=contact.pk)
    # newest first
    assert [(h.field, h.old_value, h.new_value, h.actor_id) for h in history] == [
        ("title", "CTO", "CEO", sales_user.pk),
        ("custom_fields.score", None, 3, sales_user.pk),
        ("title", "", "CTO", sales_user.pk),
    ]
    assert FieldChange.objects.filter(object_id=contact.pk).count() == 3


def test_creating_a_contact_writes_no_history(fields):
    contact = services.contact_create(actor=None, email="new@example.com", title="CTO")
    assert selectors.field_history(entity="contact", object_id=contact.pk) == []
