"""The pages that span every app: the home page and the app shell's global search."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from pipeline import permissions as pipeline_permissions
from workspace import selectors


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    page = selectors.home(user=request.user)
    for task in page.tasks:  # the rows' checkbox and edit controls, as on My Day
        task.editable = pipeline_permissions.can_change_task(request.user, task)
    return render(
        request,
        "home.html",
        {
            "home": page,
            "stats": page.stats,
            "now": timezone.now(),
            "deal_links": pipeline_permissions.can_read(request.user),  # task rows link their deal
        },
    )


SEARCH_LIMIT = 5


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """The app shell's search box (Cmd/Ctrl-K, `/`): contacts, companies and deals as you type."""
    # A NUL cannot be in any stored text (Postgres refuses it in a query parameter too).
    q = (request.GET.get("q") or "").replace("\x00", "").strip()[:200]
    results = selectors.global_search(user=request.user, q=q, limit=SEARCH_LIMIT) if q else None
    template = "search.html#search-results" if request.htmx else "search.html"
    return render(request, template, {"q": q, "results": results})
