"""CSV import pages: upload, map and preview, progress (polled by htmx), rejected rows."""

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import permissions
from contacts.models import DedupeMode, ImportJob, ImportStatus
from contacts.services import importing
from core.csv import stream_csv
from core.errors import Forbidden, NotFound


class UploadForm(forms.Form):
    entity = forms.ChoiceField(
        choices=[("contact", "Contacts"), ("company", "Companies")],
        initial="contact",
        label="Import",
        required=False,
    )
    file = forms.FileField(label="CSV file")


def _ensure_can_import(request: HttpRequest) -> None:
    if not permissions.can_import(request.user):
        raise PermissionDenied("Your role may not import contacts or companies.")


def _job(request: HttpRequest, pk: int) -> ImportJob:
    _ensure_can_import(request)
    try:
        return importing.import_job_get(user=request.user, job_id=pk)
    except NotFound:
        raise Http404("No such import.") from None


def _mapping_from(request: HttpRequest, job: ImportJob) -> dict[str, str]:
    return {str(i): request.POST.get(f"col_{i}", "") for i in range(len(job.headers))}


@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    _ensure_can_import(request)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if request.method == "POST" and length > importing.MAX_UPLOAD_BYTES + 64 * 1024:
        # Refused before Django spools the body to a temporary file.
        return HttpResponse(
            f"The file is larger than {importing.MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", status=413
        )
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = importing.import_upload(
                    actor=request.user,
                    uploaded=form.cleaned_data["file"],
                    entity=form.cleaned_data["entity"] or "contact",
                )
            except importing.ImportRefused as exc:
                form.add_error("file", exc.message)
            except Forbidden as exc:
                raise PermissionDenied(exc.message) from None
            else:
                return redirect("contacts_tools:import_mapping", pk=job.pk)
        status = 400
    jobs = importing.import_jobs_visible(user=request.user)[:20]
    context = {"form": form, "jobs": jobs, "max_mb": importing.MAX_UPLOAD_BYTES // (1024 * 1024)}
    return render(request, "contacts/import_upload.html", context, status=status)


def _mapping_context(job: ImportJob, mapping: dict[str, str], **extra) -> dict:
    columns = [(i, header, mapping.get(str(i), "")) for i, header in enumerate(job.headers)]
    return {
        "job": job,
        "columns": columns,
        "targets": importing.targets(entity=job.entity),
        "dedupe_choices": DedupeMode.choices,
        **extra,
    }


def _preview_context(job: ImportJob, mapping: dict[str, str]) -> dict:
    try:
        return {"preview_rows": importing.preview(job=job, mapping=mapping), "preview_error": None}
    except importing.ImportRefused as exc:
        return {"preview_rows": [], "preview_error": exc.message}


@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """Map columns to fields and start. Starting twice (a double click) just shows the progress."""
    job = _job(request, pk)
    if job.status != ImportStatus.DRAFT:
        return redirect("contacts_tools:import_progress", pk=job.pk)
    if request.method == "POST":
        mapping = _mapping_from(request, job)
        dedupe = request.POST.get("dedupe", DedupeMode.UPDATE)
        create_companies = request.POST.get("create_companies") == "on"
        try:
            importing.import_start(
                job=job, actor=request.user, mapping=mapping, dedupe=dedupe, create_companies=create_companies
            )
        except importing.ImportRefused as exc:
            job.dedupe, job.create_companies = dedupe, create_companies
            context = _mapping_context(
                job, mapping, start_error=exc.message, **_preview_context(job, mapping)
            )
            return render(request, "contacts/import_mapping.html", context, status=400)
        return redirect("contacts_tools:import_progress", pk=job.pk)
    context = _mapping_context(job, job.mapping, **_preview_context(job, job.mapping))
    return render(request, "contacts/import_mapping.html", context)


@require_POST
def import_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The preview table for the mapping being edited (htmx swaps it in on every change)."""
    job = _job(request, pk)
    mapping = _mapping_from(request, job)
    job.create_companies = request.POST.get("create_companies") == "on"
    job.dedupe = request.POST.get("dedupe", DedupeMode.UPDATE)
    context = _mapping_context(job, mapping, **_preview_context(job, mapping))
    return render(request, "contacts/import_mapping.html#import-preview", context)


@require_GET
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    template = "contacts/import_progress.html"
    if request.htmx:
        template += "#import-status"  # the poll swaps only the status block
    return render(request, template, {"job": job})


@require_GET
def import_errors_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    job = _job(request, pk)
    header, rows = importing.error_rows(job=job)
    return stream_csv(filename=f"import-{job.pk}-rejected-rows.csv", header=header, rows=rows)
