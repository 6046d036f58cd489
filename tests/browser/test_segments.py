import pytest

from segments import services
from segments.models import Segment
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_user
from tests.segments.helpers import members
from tests.segments.helpers import page as page_view

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_a_segment_with_a_live_count_then_see_why_on_the_contact(page, live_server):
    # given a marketer and two contacts who looked at pricing, one of them a VIP
    make_user(role="Marketing", username="mia")
    ada = make_contact(email="ada@x.io", first_name="Ada", tags=["vip"])
    bob = make_contact(email="bob@x.io", first_name="Bob")
    for contact in (ada, bob):
        page_view(contact, "/pricing")
    log_in(page, live_server, "mia")
    page.goto(live_server.url + "/segments/new/")
    page.fill("#id_name", "Pricing VIPs")
    # when she adds a page condition and types the path, the count follows
    page.click("[data-testid=add-page]")
    page.fill("[name='r.0.where_value']", "/pricing")
    page.wait_for_selector("[data-testid=preview-count]:text-is('2')")
    # and a nested group with a tag condition narrows it
    page.click("[data-node=r] > div > [data-testid=add-group]")
    page.click("[data-node='r.1'] [data-testid=add-tag]")
    page.fill("[name='r.1.0.value']", "vip")
    page.wait_for_selector("[data-testid=preview-count]:text-is('1')")
    page.click("[data-testid=save-segment]")
    # then the segment page shows it and the worker-free recompute fills it
    page.wait_for_selector("[data-testid=segment-title]:text-is('Pricing VIPs')")
    segment = Segment.objects.get(name="Pricing VIPs")
    services.segment_refresh(segment=segment)
    assert members(segment) == {ada.pk}
    # and Ada's page lists the segment with a tick for each condition
    page.goto(live_server.url + ada.get_absolute_url())
    page.wait_for_selector("[data-testid=contact-segments] summary:has-text('Pricing VIPs')")
    page.click("[data-testid=contact-segments] summary")
    assert page.locator("[data-testid=why] [aria-label=holds]").count() == 2
