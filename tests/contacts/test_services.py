import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from contacts import services
from contacts.models import Company, Contact
from core.errors import Conflict, Forbidden, NotFound
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def test_contact_email_is_trimmed_and_lower_cased(sales_user):
    # when a rep types an email with capitals and spaces
    contact = services.contact_create(actor=sales_user, email="  Ada@Example.COM ", first_name=" Ada ")
    # then it is stored in its canonical form, and the creator owns the contact
    contact.refresh_from_db()
    assert contact.email == "ada@example.com"
    assert contact.first_name == "Ada"
    assert contact.owner == sales_user


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_email_is_stored_as_null(blank):
    contact = make_contact(first_name="Ada", email=blank)
    contact.refresh_from_db()
    assert contact.email is None


def test_two_contacts_without_email_do_not_clash():
    make_contact(first_name="A", email="")
    make_contact(first_name="B", email=None)
    assert Contact.objects.filter(email__isnull=True).count() == 2


def test_an_invalid_email_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as exc:
        make_contact(email="not-an-email", lifecycle_stage="nonsense")
    # every bad field is named, not just the first
    assert set(exc.value.message_dict) == {"email", "lifecycle_stage"}
    assert not Contact.objects.exists()


def test_a_duplicate_email_among_live_contacts_is_a_conflict():
    # given a contact with an email
    first = make_contact(email="ada@example.com")
    # when another is created with the same email in another case
    with pytest.raises(Conflict) as exc:
        make_contact(email="ADA@example.com ")
    # then it is refused with a message that names the existing contact
    assert exc.value.fields == {"email": [exc.value.message]}
    assert f"contact {first.pk}" in exc.value.message
    assert exc.value.code == "duplicate_email"


def test_a_merged_contact_does_not_hold_its_email():
    # given a tombstone that carried the email
    survivor = make_contact(first_name="Survivor")
    make_contact(email="ada@example.com", merged_into=survivor)
    # when a new contact takes that email, then that is fine
    assert make_contact(email="ada@example.com").email == "ada@example.com"


def test_updating_to_a_taken_email_is_a_conflict():
    make_contact(email="ada@example.com")
    other = make_contact(email="grace@example.com")
    with pytest.raises(Conflict):
        services.contact_update(contact=other, actor=None, email="Ada@example.com")
    other.refresh_from_db()
    assert other.email == "grace@example.com"


def test_the_database_constraint_is_reported_as_a_conflict(monkeypatch):
    # given the pre-check misses a concurrent insert (simulated by turning the check off)
    make_contact(email="ada@example.com")
    unchecked = Contact.objects.get_queryset
    monkeypatch.setattr(Contact.objects, "alias", lambda **kw: unchecked().alias(**kw).none())
    # when the row reaches the unique index
    with pytest.raises(Conflict) as exc:
        make_contact(email="ada@example.com")
    # then the IntegrityError becomes a Conflict, and the transaction is still usable
    assert exc.value.code == "duplicate_email"
    assert Contact.objects.count() == 1


def test_other_integrity_errors_are_not_disguised_as_conflicts(monkeypatch):
    contact = make_contact(email="ada@example.com")

    def broken_save(*args, **kwargs):
        raise IntegrityError("something else")

    monkeypatch.setattr(Contact, "save", broken_save)
    with pytest.raises(IntegrityError):
        services.contact_update(contact=contact, actor=None, email="grace@example.com")


def test_a_new_contact_joins_the_company_of_its_email_domain():
    # given a company with a domain
    acme = make_company(name="Acme", domain="acme.com")
    # when a contact is created with an email at that domain and no company
    contact = make_contact(email="wile@ACME.com")
    # then the contact is linked to the company
    assert contact.company == acme


def test_an_explicit_company_wins_over_the_email_domain():
    make_company(name="Acme", domain="acme.com")
    other = make_company(name="Other")
    assert make_contact(email="wile@acme.com", company=other).company == other
    assert make_contact(email="road@acme.com", company=None).company is None


def test_an_email_at_an_unknown_domain_links_no_company():
    make_company(name="Acme", domain="acme.com")
    assert make_contact(email="ada@gmail.com").company is None


def test_tags_are_normalised():
    contact = make_contact(first_name="Ada", tags=[" VIP", "vip", "Beta ", "", "alpha"])
    assert contact.tags == ["alpha", "beta", "vip"]


def test_a_tag_over_50_characters_is_refused():
    with pytest.raises(ValidationError) as exc:
        make_contact(first_name="Ada", tags=["x" * 51])
    assert "tags" in exc.value.message_dict
    assert make_contact(first_name="Ada", tags=["x" * 50]).tags == ["x" * 50]


def test_too_long_text_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as exc:
        make_contact(first_name="x" * 101)
    assert "first_name" in exc.value.message_dict


def test_update_writes_only_the_columns_that_changed():
    contact = make_contact(first_name="Ada", lifecycle_stage="lead")
    # when one field changes, then only it (and updated_at) is written
    with CaptureQueriesContext(connection) as queries:
        services.contact_update(contact=contact, actor=None, first_name="Ada", lifecycle_stage="customer")
    [update] = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
    assert '"lifecycle_stage"' in update and '"first_name"' not in update
    # and an update that changes nothing writes nothing
    with CaptureQueriesContext(connection) as queries:
        services.contact_update(contact=contact, actor=None, lifecycle_stage="customer")
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]


def test_unknown_or_read_only_fields_are_a_programming_error():
    with pytest.raises(TypeError, match="merged_into"):
        services.contact_create(actor=None, merged_into=None)


def test_updating_a_merged_contact_is_refused():
    survivor = make_contact(first_name="Survivor")
    tombstone = make_contact(first_name="Old", merged_into=survivor)
    with pytest.raises(Conflict, match=f"merged into contact {survivor.pk}"):
        services.contact_update(contact=tombstone, actor=None, first_name="New")


def test_updating_a_deleted_contact_is_not_found():
    contact = make_contact(first_name="Ada")
    Contact.objects.filter(pk=contact.pk).delete()
    with pytest.raises(NotFound):
        services.contact_update(contact=contact, actor=None, first_name="Grace")


def test_deleting_a_contact_deletes_the_tombstones_merged_into_it():
    # given a survivor with a chain of tombstones, which SET_NULL would otherwise bring back to life
    survivor = make_contact(email="ada@example.com")
    middle = make_contact(email="ada@old.example", merged_into=survivor)
    make_contact(email="ada@older.example", merged_into=middle)
    bystander = make_contact(email="grace@example.com")
    # when the survivor is deleted
    services.contact_delete(contact=survivor, actor=None)
    # then the whole person is gone, and only the bystander is left
    assert list(Contact.objects.values_list("pk", flat=True)) == [bystander.pk]
    # and deleting again is harmless
    services.contact_delete(contact=survivor, actor=None)


# --- companies


@pytest.mark.parametrize(
    "typed",
    [
        "acme.com",
        "ACME.com",
        "www.acme.com",
        "https://www.Acme.com/about?x=1#top",
        "http://acme.com:8080",
        "//acme.com/",
        "acme.com.",
        " acme.com ",
    ],
)
def test_company_domain_is_normalised(typed):
    assert make_company(name="Acme", domain=typed).domain == "acme.com"


@pytest.mark.parametrize("typed", ["acme", "not a domain", "-acme.com", "acme..com", "http://"])
def test_an_invalid_domain_is_refused(typed):
    if typed == "http://":  # nothing left after normalising: no domain, which is allowed
        assert make_company(name="Acme", domain=typed).domain is None
        return
    with pytest.raises(ValidationError) as exc:
        make_company(name="Acme", domain=typed)
    assert "domain" in exc.value.message_dict


def test_an_international_domain_is_stored_as_punycode():
    assert make_company(name="Bücher", domain="bücher.de").domain == "xn--bcher-kva.de"


def test_a_duplicate_domain_is_a_conflict():
    acme = make_company(name="Acme", domain="acme.com")
    with pytest.raises(Conflict) as exc:
        make_company(name="Acme again", domain="https://www.acme.com")
    assert exc.value.code == "duplicate_domain"
    assert f"company {acme.pk}" in exc.value.message
    assert exc.value.fields == {"domain": [exc.value.message]}


def test_a_company_needs_a_name():
    with pytest.raises(ValidationError) as exc:
        services.company_create(actor=None, name="  ", domain="acme.com")
    assert "name" in exc.value.message_dict


def test_company_update_and_delete_keep_the_contacts():
    acme = make_company(name="Acme", domain="acme.com")
    contact = make_contact(email="wile@acme.com")
    services.company_update(company=acme, actor=None, name="Acme Corp", domain="acme.org")
    acme.refresh_from_db()
    assert (acme.name, acme.domain) == ("Acme Corp", "acme.org")
    services.company_delete(company=acme, actor=None)
    contact.refresh_from_db()
    assert contact.company is None
    assert not Company.objects.exists()


# --- permissions


def test_sales_may_change_own_and_unowned_records_but_not_another_reps(sales_user):
    other_rep = make_user(role="Sales")
    own = make_contact(first_name="Own", owner=sales_user)
    unowned = make_contact(first_name="Pool")
    theirs = make_contact(first_name="Theirs", owner=other_rep)
    services.contact_update(contact=own, actor=sales_user, title="CTO")
    # an unowned record is the shared pool: a rep may work it and claim it
    services.contact_update(contact=unowned, actor=sales_user, owner=sales_user)
    with pytest.raises(Forbidden, match="another owner"):
        services.contact_update(contact=theirs, actor=sales_user, title="CTO")
    with pytest.raises(Forbidden):
        services.contact_delete(contact=theirs, actor=sales_user)
    assert Contact.objects.get(pk=theirs.pk).title == ""


def test_marketing_changes_nothing(marketing_user):
    contact = make_contact(first_name="Ada")
    company = make_company(name="Acme")
    with pytest.raises(Forbidden):
        services.contact_create(actor=marketing_user, first_name="Grace")
    with pytest.raises(Forbidden):
        services.contact_update(contact=contact, actor=marketing_user, title="CTO")
    with pytest.raises(Forbidden):
        services.company_create(actor=marketing_user, name="Initech")
    with pytest.raises(Forbidden):
        services.company_delete(company=company, actor=marketing_user)


def test_admin_changes_records_other_people_own(admin_user, sales_user):
    contact = make_contact(first_name="Ada", owner=sales_user)
    company = make_company(name="Acme", owner=sales_user)
    services.contact_update(contact=contact, actor=admin_user, title="CTO")
    services.company_update(company=company, actor=admin_user, industry="Anvils")
    services.contact_delete(contact=contact, actor=admin_user)
    assert not Contact.objects.exists()


def test_a_user_without_a_role_may_not_create(db):
    nobody = make_user(role="Sales")
    nobody.groups.clear()
    nobody.__dict__.pop("_cdp_roles", None)
    with pytest.raises(Forbidden):
        services.company_create(actor=nobody, name="Acme")


def test_a_refused_row_leaves_the_callers_transaction_usable():
    # given a caller that catches the conflict inside its own transaction
    make_contact(email="a@example.com")
    with transaction.atomic():
        with pytest.raises(Conflict):
            make_contact(email="a@example.com")
        # then it can go on using the database
        make_contact(email="b@example.com")
    assert Contact.objects.count() == 2
