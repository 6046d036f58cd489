"""Settings → Sources pages, and the two public endpoints tracked sites load: /js/cdp.js and the
Segment-compatible settings document."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from events import permissions, selectors, services, tracking
from events.forms import SourceForm
from events.models import Source


def _ensure_can_view(request: HttpRequest) -> None:
    if not permissions.can_view_sources(request.user):
        raise PermissionDenied("You do not have a role that may see sources.")


def _ensure_can_manage(request: HttpRequest) -> None:
    if not permissions.can_manage_sources(request.user):
        raise PermissionDenied("Only Admin and Marketing manage sources.")


@require_GET
def source_list(request: HttpRequest) -> HttpResponse:
    _ensure_can_view(request)
    return render(
        request,
        "events/source_list.html",
        {
            "sources": selectors.source_list_last_day(),
            "can_manage": permissions.can_manage_sources(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
def source_create(request: HttpRequest) -> HttpResponse:
    _ensure_can_manage(request)
    form = SourceForm(request.POST) if request.method == "POST" else SourceForm()
    if request.method == "POST" and form.is_valid():
        source = services.source_save(actor=request.user, source=None, **form.cleaned_data)
        messages.success(request, f"Source “{source.name}” created. Paste its snippet into your site.")
        return redirect("events:source_detail", pk=source.pk)
    status = 400 if form.is_bound else 200
    return render(request, "events/source_form.html", {"form": form, "source": None}, status=status)


@require_GET
def source_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_can_view(request)
    source = get_object_or_404(Source, pk=pk)
    can_manage = permissions.can_manage_sources(request.user)
    host = tracking.public_host(request)
    context = {
        "source": source,
        "can_manage": can_manage,
        "latest_event_at": selectors.source_latest_event_at(source=source),
        "host": host,
    }
    if can_manage:  # the key (and so the snippet) only for those who manage sources
        context["snippet"] = tracking.source_snippet(source, host=host)
    return render(request, "events/source_detail.html", context)


@require_GET
def source_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The "test event received" indicator, polled by the source page every 3 s."""
    _ensure_can_view(request)
    source = get_object_or_404(Source, pk=pk)
    return render(
        request,
        "events/source_detail.html#event-status",
        {"source": source, "latest_event_at": selectors.source_latest_event_at(source=source)},
    )


@require_http_methods(["GET", "POST"])
def source_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_can_manage(request)
    source = get_object_or_404(Source, pk=pk)
    form = SourceForm(request.POST) if request.method == "POST" else SourceForm.for_source(source)
    if request.method == "POST" and form.is_valid():
        source = services.source_save(actor=request.user, source=source, **form.cleaned_data)
        messages.success(request, f"Source “{source.name}” saved.")
        return redirect("events:source_detail", pk=source.pk)
    status = 400 if form.is_bound else 200
    return render(request, "events/source_form.html", {"form": form, "source": source}, status=status)


@require_POST
def source_rotate_key(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_can_manage(request)
    source = get_object_or_404(Source, pk=pk)
    services.source_rotate_write_key(actor=request.user, source=source)
    messages.warning(
        request, "New write key issued. The old key no longer works: update the snippet on your sites."
    )
    return redirect("events:source_detail", pk=source.pk)


# --- public: loaded by tracked sites, no login


@require_http_methods(["GET", "HEAD"])
@login_not_required
def cdp_js(request: HttpRequest) -> HttpResponse:
    """The tracking library. Pasted snippets load the unversioned URL, so it is cached for a day
    (a fix reaches sites within one) and revalidated by ETag; `?v=<version>` is immutable."""
    library = tracking.library()
    if request.GET.get("v") == library.version:
        cache_control = "public, max-age=31536000, immutable"
    else:
        cache_control = "public, max-age=86400, stale-while-revalidate=604800"
    if request.headers.get("If-None-Match", "") in (library.etag, f"W/{library.etag}"):
        response = HttpResponseNotModified()
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(library.gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(library.body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = library.etag
    response["Cache-Control"] = cache_control
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


@require_http_methods(["GET", "HEAD", "OPTIONS"])
@login_not_required
def segment_settings(request: HttpRequest, write_key: str) -> HttpResponse:
    """`/v1/projects/<writeKey>/settings`: what Segment's analytics.js fetches from its CDN, so a
    site can point `cdnURL` at this app and keep its analytics.js unmodified."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
    else:
        source = selectors.source_by_write_key(write_key=write_key)
        if source is None:
            response = JsonResponse(
                {"error": {"code": "not_found", "message": "unknown or disabled write key"}}, status=404
            )
        else:
            response = JsonResponse(
                tracking.segment_settings(write_key=source.write_key, host=tracking.public_host(request))
            )
            # Short: a disabled or rotated key stops being advertised within minutes.
            response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    response["Access-Control-Max-Age"] = "86400"
    return response
