import pytest

from contacts.models import Contact, ContactMerge
from contacts.services import merging
from tests.browser.test_contacts import log_in
from tests.factories import make_admin, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_finds_a_merge_from_settings_and_splits_it(page, live_server):
    # given two records an Admin merged
    admin = make_admin(username="ines")
    kept = make_contact(first_name="Ada", email="ada@example.com")
    gone = make_contact(first_name="Ada L.", email="ada.l@example.com")
    merging.contact_merge(winner=kept, loser=gone, field_choices={}, actor=admin)
    log_in(page, live_server, "ines")
    # when she opens the merge log from Settings and the merge's details
    page.goto(live_server.url + "/settings/")
    page.click("#identity >> text=Merge log")
    page.wait_for_selector("[data-testid=merge-row]")
    assert "Ada L." in page.inner_text("#merge-table")
    page.click("[data-testid=merge-row] >> text=Details")
    # and splits it
    page.click("[data-testid=split-button]")
    # then the page says so and the merged record is its own contact again
    page.wait_for_selector("text=is its own person again")
    assert page.inner_text("[data-testid=merge-state]") == "split"
    assert Contact.objects.get(pk=gone.pk).merged_into_id is None
    assert ContactMerge.objects.get().split_by == admin
