"""The public endpoints tracked sites load: /js/cdp.js and Segment's settings document."""

import gzip

import pytest

from events import services, tracking

# The library ships in every page of every tracked site.
MAX_GZIPPED_BYTES = 8 * 1024


def test_library_is_public_minified_and_small(client, db):
    # when a browser without a session fetches the library, accepting gzip
    response = client.get("/js/cdp.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    # then it gets JavaScript, gzipped, under the size budget, cacheable with an ETag
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Content-Encoding"] == "gzip"
    assert len(response.content) < MAX_GZIPPED_BYTES
    body = gzip.decompress(response.content).decode()
    source = tracking.LIBRARY_PATH.read_text()
    assert len(body) < len(source) * 0.8  # minified: comments and indentation gone
    assert body.startswith("/*! cdp.js") and 'name:"cdp.js"' in body
    assert "ajs_anonymous_id" in body and "/v1/b" in body
    assert response["ETag"].startswith('"') and "max-age=86400" in response["Cache-Control"]
    assert "Accept-Encoding" in response["Vary"]


def test_library_without_gzip_and_revalidation(client, db):
    plain = client.get("/js/cdp.js")
    assert "Content-Encoding" not in plain and plain.content.startswith(b"/*! cdp.js")
    assert plain.content == tracking.library().body
    # a browser revalidating with the ETag gets 304 and no body
    again = client.get("/js/cdp.js", headers={"If-None-Match": plain["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == plain["ETag"]
    # a stale ETag gets the body
    assert client.get("/js/cdp.js", headers={"If-None-Match": '"old"'}).status_code == 200


def test_versioned_library_url_is_immutable(client, db):
    version = tracking.library().version
    response = client.get(f"/js/cdp.js?v={version}")
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"


def test_settings_document_points_segment_analytics_js_at_this_app(client, db):
    # given a source
    source = services.source_create(actor=None, name="Shop")
    # when Segment's analytics.js fetches its settings from this app (as cdnURL)
    response = client.get(
        f"/v1/projects/{source.write_key}/settings",
        headers={"Origin": "https://shop.example"},
        HTTP_HOST="localhost:8000",
    )
    # then it is told to send events to this app's /v1 API, with the source's key
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    doc = response.json()
    assert doc["integrations"] == {
        "Segment.io": {
            "apiKey": source.write_key,
            "apiHost": "localhost:8000/v1",
            "protocol": "http",
            "unbundledIntegrations": [],
            "addBundledMetadata": True,
            "maybeBundledConfigIds": {},
            "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
        }
    }
    assert doc["plan"]["track"]["__default"]["enabled"] is True
    assert doc["edgeFunction"] == {} and doc["remotePlugins"] == []
    assert doc["metrics"]["sampleRate"] == 0  # no metrics sent to Segment's servers


def test_settings_document_uses_the_public_host_setting(client, db, settings):
    settings.CDP_PUBLIC_HOST = "https://crm.example.com/tracking"
    source = services.source_create(actor=None, name="Shop")
    segment = client.get(f"/v1/projects/{source.write_key}/settings").json()["integrations"]["Segment.io"]
    assert (segment["apiHost"], segment["protocol"]) == ("crm.example.com/tracking/v1", "https")


@pytest.mark.parametrize("enabled", [True, False])
def test_settings_for_an_unknown_or_disabled_key_is_a_json_404(client, db, enabled):
    source = services.source_create(actor=None, name="Shop", enabled=enabled)
    key = "no-such-key" if enabled else source.write_key
    response = client.get(f"/v1/projects/{key}/settings")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "unknown or disabled write key"}}
    assert response["Access-Control-Allow-Origin"] == "*"


def test_settings_preflight(client, db):
    response = client.options("/v1/projects/k/settings", headers={"Origin": "https://shop.example"})
    assert response.status_code == 204 and "GET" in response["Access-Control-Allow-Methods"]
