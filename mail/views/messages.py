"""A thread's messages (what a timeline's email links to) and attachment downloads. Both answer
404 for mail the user may not open (mail.selectors.messages): private mail does not reveal that
it exists."""

import re
import unicodedata

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from core.errors import domain_errors
from mail.html import html_sanitise
from mail.quoting import body_fold
from mail.selectors import messages as selectors

# A stored content type is sent back only when it reads as one ("type/subtype", no parameters);
# anything else downloads as bytes.
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


@require_GET
@domain_errors
def thread(request: HttpRequest, pk: int) -> HttpResponse:
    messages = selectors.thread_messages(user=request.user, thread_id=pk)
    for message in messages:
        # Text is escaped by the template (autoescape); HTML was sanitised when stored and is
        # sanitised again here, so no path shows unsanitised HTML (mail.html); no image loads.
        message.folded = body_fold(message.text_body) if message.text_body else None
        html = "" if message.text_body else html_sanitise(message.html_body, images=False)
        message.safe_html = mark_safe(html)
    return render(request, "mail/thread.html", {"thread": messages[0].thread, "thread_messages": messages})


def _download_name(filename: str) -> str:
    """The sender's filename, fit for a Content-Disposition header: no path, no control
    characters (a header cannot carry a newline), never empty. FileResponse quotes it (and adds
    the RFC 5987 filename* form for non-ASCII names)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:200] or "attachment"


@require_GET
@domain_errors
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    found = selectors.attachment_get(user=request.user, pk=pk)
    content_type = found.content_type if _CONTENT_TYPE.match(found.content_type or "") else ""
    response = FileResponse(
        found.file.open("rb"),
        as_attachment=True,
        filename=_download_name(found.filename),
        content_type=content_type or "application/octet-stream",
    )
    # Never rendered in the app's origin: downloaded, and not sniffed into HTML or script.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
