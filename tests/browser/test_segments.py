import os

import pytest

from segments import services
from segments.models import Segment
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_user, stored_page
from tests.segments.helpers import members

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOT_DIR")  # set to look at the pages as a person would


def test_build_a_segment_with_a_live_count_then_see_why_on_the_contact(page, live_server):
    # given a marketer and two contacts who looked at pricing, one of them a VIP
    make_user(role="Marketing", username="mia")
    ada = make_contact(email="ada@x.io", first_name="Ada", tags=["vip"])
    bob = make_contact(email="bob@x.io", first_name="Bob")
    for contact in (ada, bob):
        stored_page(contact, "/pricing")
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
    page.locator("[name='r.1.0.value']").select_option("vip")  # a picker of the tags in use
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


def test_rules_before_a_name_with_a_picker_of_real_values(page, live_server):
    # given a marketer, two VIP leads, a VIP customer and a lead without the tag
    make_user(role="Marketing", username="mia")
    ada = make_contact(email="ada@x.io", lifecycle_stage="lead", tags=["vip"])
    bob = make_contact(email="bob@x.io", lifecycle_stage="lead", tags=["vip"])
    make_contact(email="cy@x.io", lifecycle_stage="customer", tags=["vip"])
    make_contact(email="di@x.io", lifecycle_stage="lead")
    log_in(page, live_server, "mia")
    page.goto(live_server.url + "/segments/new/")
    # when she adds a field condition before typing any name
    page.click("[data-testid=add-field]")
    page.wait_for_selector("[name='r.0.field']")
    # and picks the lifecycle stage: its value becomes a select of the stages by their labels
    page.select_option("[name='r.0.field']", "lifecycle_stage")
    value = page.locator("select[name='r.0.value']")
    value.wait_for()
    labels = value.locator("option").all_inner_texts()
    assert labels == ["Choose…", "Visitor", "Subscriber", "Lead", "Opportunity", "Customer", "Other"]
    assert page.locator("[name='r.0.operator'] option:checked").inner_text() == "is"
    value.select_option(label="Lead")
    page.wait_for_selector("[data-testid=preview-count]:text-is('3')")
    # and a tag condition picked from the tags in use, and "never did Order Completed" in words
    page.click("[data-node=r] > div > [data-testid=add-tag]")
    page.locator("select[name='r.1.value']").select_option("vip")
    page.wait_for_selector("[data-testid=preview-count]:text-is('2')")
    page.click("[data-node=r] > div > [data-testid=add-event]")
    page.fill("[name='r.2.name']", "Order Completed")
    page.locator("[name='r.2.count_operator']").select_option(label="exactly")
    page.fill("[name='r.2.count_value']", "0")
    page.wait_for_selector("[data-testid=preview-count]:text-is('2')")
    assert "gte" not in page.inner_text("[data-testid=builder]")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/segment-builder.png", full_page=True)
    # then, named and saved, the segment holds the two VIP leads
    page.fill("#id_name", "VIP leads")
    page.click("[data-testid=save-segment]")
    page.wait_for_selector("[data-testid=segment-title]:text-is('VIP leads')")
    segment = Segment.objects.get(name="VIP leads")
    assert segment.definition["conditions"][0] == {
        "type": "field",
        "field": "lifecycle_stage",
        "operator": "eq",
        "value": "lead",
    }
    services.segment_refresh(segment=segment)
    assert members(segment) == {ada.pk, bob.pk}
    page.reload()
    assert page.inner_text("[data-testid=members-link]").strip() == "2 members"
    assert "Lifecycle stage is Lead" in page.inner_text("[data-testid=conditions]")
