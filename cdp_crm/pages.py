from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def not_built_yet(request: HttpRequest, *, title: str, issue: int, summary: str) -> HttpResponse:
    """The honest state of a section whose feature issue has not landed: no fake data."""
    return render(request, "not_built_yet.html", {"title": title, "issue": issue, "summary": summary})
