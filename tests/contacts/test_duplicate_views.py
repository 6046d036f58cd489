import pytest
from django.urls import reverse

from contacts.models import Contact, ContactMerge
from pipeline.models import Deal, Pipeline, Stage
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def twins(db):
    acme = make_company(name="Acme")
    first = make_contact(first_name="Ada", last_name="King", email="ada@acme.com", company=acme)
    second = make_contact(
        first_name="Ada", last_name="King", email="ada.king@gmail.com", company=acme, title="CEO"
    )
    return first, second


def test_finder_lists_groups_with_reasons_and_merge_links(admin_client, twins, django_assert_max_num_queries):
    first, second = twins
    for i in range(5):  # more groups must not mean more queries
        make_contact(first_name=f"P{i}", phone=f"555-000-00{i}0")
        make_contact(first_name=f"Q{i}", phone=f"555-000-00{i}0")
    with django_assert_max_num_queries(8):
        html = admin_client.get(reverse("contacts_tools:duplicates")).content.decode()
    assert html.count('data-testid="duplicate-group"') == 6
    assert "same name at the same company" in html
    assert f"?winner={first.pk}&amp;loser={second.pk}" in html


def test_merge_page_offers_a_choice_only_where_values_differ(admin_client, twins):
    first, second = twins
    html = admin_client.get(
        reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk}
    ).content.decode()
    assert 'name="choice:email"' in html and 'name="choice:title"' in html
    assert 'name="choice:first_name"' not in html and "Ada (same)" in html
    # the winner has no title, so the loser's is preselected
    assert 'name="choice:title" value="loser" checked' in html


def test_posting_the_merge_moves_the_deal_and_redirects(admin_client, admin_user, twins):
    first, second = twins
    pipeline = Pipeline.objects.create(name="Sales")
    deal = Deal.objects.create(
        title="Big",
        pipeline=pipeline,
        stage=Stage.objects.create(pipeline=pipeline, name="New"),
        contact=second,
    )
    page = admin_client.get(reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk})
    assert "deals: 1" in page.content.decode()
    response = admin_client.post(
        reverse("contacts_tools:merge"),
        {"winner": first.pk, "loser": second.pk, "choice:email": "loser", "choice:title": "loser"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("contacts_tools:duplicates")
    first.refresh_from_db()
    assert (first.email, first.title) == ("ada.king@gmail.com", "CEO")
    assert Deal.objects.get(pk=deal.pk).contact_id == first.pk
    assert Contact.objects.get(pk=second.pk).merged_into_id == first.pk
    assert ContactMerge.objects.get().actor_id == admin_user.pk
    # and the finder no longer lists the pair
    html = admin_client.get(reverse("contacts_tools:duplicates")).content.decode()
    assert 'data-testid="no-duplicates"' in html


def test_an_invalid_choice_is_shown_in_place(admin_client, twins):
    first, second = twins
    response = admin_client.post(
        reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk, "choice:email": "both"}
    )
    assert response.status_code == 400 and "choose winner or loser" in response.content.decode()
    assert Contact.objects.get(pk=second.pk).merged_into_id is None


def test_sales_may_not_merge_another_reps_record(client, sales_user, twins):
    first, second = twins
    Contact.objects.filter(pk=second.pk).update(owner=make_user(role="Sales"))
    client.force_login(sales_user)
    html = client.get(reverse("contacts_tools:duplicates")).content.decode()
    assert "another owner's record" in html and "Compare and merge" not in html
    assert (
        client.get(reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk}).status_code
        == 403
    )
    response = client.post(reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk})
    assert response.status_code == 403 and Contact.objects.get(pk=second.pk).merged_into_id is None


def test_marketing_gets_403(client, marketing_user, twins):
    first, second = twins
    client.force_login(marketing_user)
    assert client.get(reverse("contacts_tools:duplicates")).status_code == 403
    assert (
        client.post(reverse("contacts_tools:merge"), {"winner": first.pk, "loser": second.pk}).status_code
        == 403
    )


def test_missing_or_identical_pair_is_404(admin_client, twins):
    first, _ = twins
    assert (
        admin_client.get(reverse("contacts_tools:merge"), {"winner": first.pk, "loser": first.pk}).status_code
        == 404
    )
    assert admin_client.get(reverse("contacts_tools:merge"), {"winner": first.pk}).status_code == 404
