"""A page a role is shown is a page that role may open: crawl the app as each role and find no 403.

The crawler starts at the sidebar and follows every same-origin GET link (`<a href>` and the
`hx-get` panels a page loads), breadth first, to a bounded depth, with the data a real team has:
records of the signed-in rep, of another rep and of no one; a deal, a segment, a source, a note, a
task. A link a role cannot use must not be on its pages at all (issue 19.8).
"""

from collections import deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from accounts.models import Role
from events import services as event_services
from pipeline.models import Deal
from pipeline.services import activities
from segments import services as segment_services
from tests.factories import (
    PASSWORD,
    logs_in,
    make_admin,
    make_company,
    make_contact,
    make_pipeline,
    make_user,
)

# Depth 0 is the sidebar; three hops from it reach every record page and its edit forms.
MAX_DEPTH = 3
# Per page, and overall: bounded, so a list that grows does not make the test grow with it.
MAX_LINKS_PER_PAGE = 80
MAX_PAGES = 600
# Sort and filter links multiply one page by its columns; a few variants of a path say enough.
MAX_QUERIES_PER_PATH = 2
# Leaving the app or its session is not a page to check.
SKIP_PREFIXES = ("/static/", "/logout/", "/login/", "/v1/", "/js/")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.sidebar: list[str] = []
        self._in_sidebar = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and "app-sidebar" in (attrs.get("class") or ""):
            self._in_sidebar = 1
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
            if self._in_sidebar:
                self.sidebar.append(attrs["href"])
        if attrs.get("hx-get"):
            self.hrefs.append(attrs["hx-get"])

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_sidebar = 0


def _parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _same_origin(base: str, href: str) -> str | None:
    if href.startswith(("#", "mailto:", "tel:", "javascript:")):
        return None
    url = urljoin(base, href)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "") or parts.netloc not in ("testserver", ""):
        return None
    if parts.path.startswith(SKIP_PREFIXES):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def crawl(client) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Visit from the sidebar; answer (the sidebar's links, {url: (status, the page linking it)})."""
    home = client.get("/")
    assert home.status_code == 200
    sidebar = [u for u in (_same_origin("/", h) for h in _parse(home.content.decode()).sidebar) if u]
    seen: dict[str, tuple[int, str]] = {}
    queries: dict[str, int] = {}
    queue = deque((url, 0, "the sidebar") for url in sidebar)
    while queue and len(seen) < MAX_PAGES:
        url, depth, referrer = queue.popleft()
        if url in seen:
            continue
        path = url.split("?")[0]
        if "?" in url:
            if queries.get(path, 0) >= MAX_QUERIES_PER_PATH:
                continue
            queries[path] = queries.get(path, 0) + 1
        response = client.get(url)
        seen[url] = (response.status_code, referrer)
        if depth >= MAX_DEPTH or response.status_code != 200:
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        links = [_same_origin(url, h) for h in _parse(response.content.decode()).hrefs]
        for link in [u for u in dict.fromkeys(links) if u and u not in seen][:MAX_LINKS_PER_PAGE]:
            queue.append((link, depth + 1, url))
    return sidebar, seen


@pytest.fixture
def team(db):
    """A small team's data: rita (Sales) is signed in; bob is another rep."""
    rita = make_user(role=Role.SALES, username="rita")
    bob = make_user(role=Role.SALES, username="bob")
    make_user(role=Role.MARKETING, username="mia")
    make_admin(username="ada")
    pipeline = make_pipeline()
    stage = pipeline.stages.first()
    acme = make_company(name="Acme", domain="acme.com")
    make_company(name="Bob's Co", owner=bob)
    mine = make_contact(first_name="Mine", email="mine@acme.com", owner=rita, company=acme)
    theirs = make_contact(first_name="Theirs", email="theirs@example.com", owner=bob)
    make_contact(first_name="Pool", email="pool@example.com")
    Deal.objects.create(pipeline=pipeline, stage=stage, title="Mine deal", owner=rita, contact=mine)
    Deal.objects.create(pipeline=pipeline, stage=stage, title="Their deal", owner=bob, contact=theirs)
    activities.activity_log(actor=bob, kind="note", body="Bob's note", contact=theirs)
    activities.activity_log(actor=rita, kind="note", body="Rita's note", contact=mine)
    activities.task_create(actor=bob, title="Bob's task", contact=theirs)
    activities.task_create(actor=rita, title="Rita's task", contact=mine)
    segment_services.segment_create(actor=None, name="Everyone", definition={})
    segment_services.segment_create(actor=None, name="Hand-picked", kind="static")
    event_services.source_create(actor=None, name="Website")


@pytest.mark.parametrize("username", ["ada", "rita", "mia"], ids=["Admin", "Sales", "Marketing"])
def test_no_link_a_role_is_shown_answers_403(client, team, username):
    assert logs_in(client, username, PASSWORD)
    sidebar, seen = crawl(client)
    # the crawl really walked the app: the sidebar and the record pages behind it
    assert "/contacts/" in sidebar
    assert any(url.startswith("/contacts/") and url[10:11].isdigit() for url in seen), sorted(seen)
    forbidden = {url: referrer for url, (status, referrer) in seen.items() if status == 403}
    assert forbidden == {}, f"{username} is shown links that answer 403 (url: the page that links it)"
