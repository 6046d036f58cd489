import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken, token_digest


@pytest.mark.django_db
def test_api_rejects_a_request_without_a_token(client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_api_accepts_a_valid_token(client, sales_user, keyword):
    _, raw = services.api_token_create(user=sales_user)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"{keyword} {raw}")
    assert response.status_code == 200
    assert response.json() == {
        "id": sales_user.pk,
        "username": "sales-user",
        "email": "",
        "name": "",
        "roles": ["Sales"],
        "auth": "token",
    }


@pytest.mark.django_db
def test_tokens_are_stored_hashed_and_can_be_revoked(client, sales_user):
    token, raw = services.api_token_create(user=sales_user)
    assert raw not in {token.digest, token.prefix} and token.digest == token_digest(raw)
    assert not ApiToken.objects.filter(digest=raw).exists()
    services.api_token_revoke(token=token)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked token."


@pytest.mark.django_db
def test_a_wrong_token_is_401(client, sales_user):
    services.api_token_create(user=sales_user)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer cdp_not-a-real-token")
    assert response.status_code == 401


@pytest.mark.django_db
def test_a_deactivated_users_token_stops_working(client, sales_user):
    _, raw = services.api_token_create(user=sales_user)
    sales_user.is_active = False
    sales_user.save()
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401


@pytest.mark.django_db
def test_the_browser_session_also_authenticates_the_api(client, sales_user):
    client.force_login(sales_user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["auth"] == "session"


@pytest.mark.django_db
def test_create_api_token_prints_only_a_working_token(client, sales_user):
    out = io.StringIO()
    call_command("create_api_token", "--username", "sales-user", stdout=out)
    raw = out.getvalue().strip()
    assert "\n" not in raw and raw.startswith("cdp_")
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").json()["username"] == "sales-user"


@pytest.mark.django_db
def test_api_root_and_schema(client, sales_user):
    _, raw = services.api_token_create(user=sales_user)
    auth = {"HTTP_AUTHORIZATION": f"Token {raw}"}
    root = client.get("/api/v1/", **auth).json()
    assert root["resources"]["me"].endswith("/api/v1/me/")
    schema = client.get("/api/schema/?format=json", **auth)
    assert schema.status_code == 200
    spec = schema.json()
    assert "/api/v1/me/" in spec["paths"]
    assert "tokenAuth" in spec["components"]["securitySchemes"]


@pytest.mark.django_db
def test_api_docs_page_uses_local_assets(client, sales_user):
    client.force_login(sales_user)
    html = client.get(reverse("api-docs")).content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
    # its start-up script is a separate file: the Content-Security-Policy allows no inline script
    assert "<script>" not in html
    script = client.get(reverse("api-docs") + "?script=")
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


@pytest.mark.django_db
def test_settings_page_creates_a_token_shown_once(client, sales_user):
    client.force_login(sales_user)
    html = client.post(reverse("accounts:token_create"), {"name": "Zapier"}).content.decode()
    token = ApiToken.objects.get(user=sales_user, name="Zapier")
    raw = html.split('data-testid="new-token">')[1].split("<")[0]
    assert token_digest(raw) == token.digest
    assert raw not in client.get(reverse("accounts:settings")).content.decode()


@pytest.mark.django_db
def test_a_user_cannot_revoke_someone_elses_token(client, sales_user, marketing_user):
    token, _ = services.api_token_create(user=marketing_user)
    client.force_login(sales_user)
    assert client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
