from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from cdp_crm import health


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    ok, report = health.health_report()
    return JsonResponse(report, status=200 if ok else 503)


@csrf_exempt
@login_not_required
def bench_ok(request: HttpRequest) -> HttpResponse:
    """The floor for bench/ingest.py: the full middleware stack and a 200, no work. Routed only
    when BENCH_URLS is on."""
    return HttpResponse(b'{"success":true}', content_type="application/json")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the REST API answers JSON even for a path no route matches (`/api/v1/deals/x/`),
    as its schema promises; pages get the usual 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the branded page, with a way back to the form (the referring page, when it
    is ours), instead of Django's bare "Forbidden (403) CSRF verification failed"."""
    referer = request.META.get("HTTP_REFERER", "")
    back = referer if url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}) else ""
    return render(request, "403_csrf.html", {"reason": reason, "back_url": back}, status=403)
