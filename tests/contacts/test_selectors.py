import pytest

from contacts import selectors
from core.errors import Forbidden, NotFound
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def names(contacts) -> list[str]:
    return sorted(c.first_name for c in contacts)


def test_contact_list_shows_live_identified_contacts_newest_first(sales_user):
    # given identified people, an anonymous visitor and a merged tombstone
    ada = make_contact(first_name="Ada")
    grace = make_contact(first_name="Grace")
    make_contact(first_name="Anon", is_identified=False)
    make_contact(first_name="Old", merged_into=ada)
    # when the default list is read
    contacts = list(selectors.contact_list(user=sales_user, filters={}))
    # then only live, identified people are in it, the newest first
    assert contacts == [grace, ada]
    # and anonymous visitors are there on request, tombstones never
    everyone = selectors.contact_list(user=sales_user, filters={"include_anonymous": True})
    assert names(everyone) == ["Ada", "Anon", "Grace"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ada", ["Ada"]),
        ("LOVELACE", ["Ada"]),
        ("@acme.com", ["Wile"]),
        ("555-01", ["Grace"]),
        ("Acme", ["Wile"]),
        ("  ", ["Ada", "Grace", "Wile"]),
    ],
)
def test_contact_list_searches_name_email_phone_and_company(sales_user, q, expected):
    make_company(name="Acme Inc", domain="acme.com")
    make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    make_contact(first_name="Grace", phone="+1 555-0100")
    make_contact(first_name="Wile", email="wile@acme.com")
    assert names(selectors.contact_list(user=sales_user, filters={"q": q})) == expected


def test_contact_list_filters_by_normalised_email(sales_user):
    make_contact(first_name="Ada", email="ada@example.com")
    make_contact(first_name="Grace", email="grace@example.com")
    found = selectors.contact_list(user=sales_user, filters={"email": " ADA@example.com"})
    assert names(found) == ["Ada"]
    assert not selectors.contact_list(user=sales_user, filters={"email": ""}).exists()


def test_contact_list_filters_by_owner(sales_user):
    other = make_user(role="Sales")
    make_contact(first_name="Mine", owner=sales_user)
    make_contact(first_name="Theirs", owner=other)
    make_contact(first_name="Pool")

    def owned(owner):
        return names(selectors.contact_list(user=sales_user, filters={"owner": owner}))

    assert owned("me") == ["Mine"]
    assert owned("none") == ["Pool"]
    assert owned(other.pk) == ["Theirs"]


def test_contact_list_filters_by_tag_stage_and_company(sales_user):
    acme = make_company(name="Acme", domain="acme.com")
    make_contact(first_name="Ada", tags=["vip", "beta"], lifecycle_stage="customer")
    make_contact(first_name="Grace", tags=["beta"], lifecycle_stage="lead")
    make_contact(first_name="Wile", email="wile@acme.com")

    def listed(**filters):
        return names(selectors.contact_list(user=sales_user, filters=filters))

    assert listed(tag=" VIP") == ["Ada"]
    assert listed(tag="beta") == ["Ada", "Grace"]
    assert listed(lifecycle_stage="lead") == ["Grace", "Wile"]
    assert listed(company=acme.pk) == ["Wile"]
    assert listed(tag="beta", lifecycle_stage="lead") == ["Grace"]


def test_a_user_without_a_role_reads_nothing(db):
    nobody = make_user(role="Sales")
    nobody.groups.clear()
    nobody.__dict__.pop("_cdp_roles", None)
    with pytest.raises(Forbidden):
        selectors.contact_list(user=nobody, filters={})
    with pytest.raises(Forbidden):
        selectors.company_list(user=nobody, filters={})


def test_contact_surviving_follows_the_merge_chain():
    # given a contact merged twice
    survivor = make_contact(first_name="Survivor")
    middle = make_contact(first_name="Middle", merged_into=survivor)
    oldest = make_contact(first_name="Oldest", merged_into=middle)
    # then both tombstones lead to the survivor, and a live contact leads to itself
    assert selectors.contact_surviving(contact=oldest) == survivor
    assert selectors.contact_surviving(contact=middle) == survivor
    assert selectors.contact_surviving(contact=survivor) == survivor


def test_a_merge_cycle_is_not_followed_forever():
    a = make_contact(first_name="A")
    b = make_contact(first_name="B", merged_into=a)
    type(a).objects.filter(pk=a.pk).update(merged_into=b)
    a.refresh_from_db()
    with pytest.raises(NotFound, match="does not end"):
        selectors.contact_surviving(contact=a)


def test_contact_get_of_a_missing_contact_is_not_found(sales_user):
    with pytest.raises(NotFound):
        selectors.contact_get(user=sales_user, contact_id=999_999)


def test_company_list_counts_live_contacts_and_filters(sales_user):
    # given two companies, one with two live contacts and a tombstone
    acme = make_company(name="Acme", domain="acme.com", owner=sales_user)
    make_company(name="Initech", domain="initech.com")
    survivor = make_contact(email="wile@acme.com")
    make_contact(email="road@acme.com")
    make_contact(email="old@acme.com", merged_into=survivor)
    # when the companies are listed
    companies = list(selectors.company_list(user=sales_user, filters={}))
    # then they come by name, each with its number of live contacts
    assert [(c.name, c.contact_count) for c in companies] == [("Acme", 2), ("Initech", 0)]

    def listed(**filters):
        return [c.name for c in selectors.company_list(user=sales_user, filters=filters)]

    assert listed(q="INIT") == ["Initech"]
    assert listed(q="acme.co") == ["Acme"]
    assert listed(domain="https://www.acme.com/") == ["Acme"]
    assert listed(owner="me") == ["Acme"]
    assert listed(owner="none") == ["Initech"]
    assert selectors.company_get(user=sales_user, company_id=acme.pk).contact_count == 2
