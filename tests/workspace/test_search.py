import pytest

from pipeline.models import Deal, Pipeline, Stage
from tests.factories import make_company, make_contact

pytestmark = pytest.mark.django_db


def test_global_search_finds_contacts_companies_and_deals(admin_client):
    acme = make_company(name="Acme Rockets", domain="acme.com")
    ada = make_contact(first_name="Ada", last_name="Acmeson", email="ada@example.com")
    make_contact(first_name="Grace")
    stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo")
    Deal.objects.create(title="Acme launch", pipeline=stage.pipeline, stage=stage, contact=ada)
    response = admin_client.get("/search/?q=acme", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert f'href="/contacts/{ada.pk}/"' in html and f'href="/companies/{acme.pk}/"' in html
    assert "Acme launch" in html and "Grace" not in html
    # every result is a keyboard-navigable option
    assert html.count('role="option"') == 3


def test_global_search_full_page_and_empty_results(admin_client):
    html = admin_client.get("/search/?q=zzz").content.decode()
    assert "<html" in html and 'data-testid="search-empty"' in html


def test_the_app_shell_has_the_search_box(admin_client):
    html = admin_client.get("/").content.decode()
    assert 'id="global-search"' in html and 'hx-trigger="input changed delay:200ms, search"' in html
    assert "js/app.js" in html


def test_global_search_limits_each_kind(admin_client, django_assert_max_num_queries):
    for i in range(8):
        make_contact(first_name=f"Zed{i}")
    with django_assert_max_num_queries(8):
        html = admin_client.get("/search/?q=zed", HTTP_HX_REQUEST="true").content.decode()
    assert html.count('role="option"') == 5
