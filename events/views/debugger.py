"""The live events debugger (the Events page): what arrives, what was rejected and why, what the
worker gave up on. Admin and Marketing read it; only Admin re-queues dead-lettered events."""

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from events import selectors, services
from events.models import Event, EventType, Source
from events.permissions import can_retry_events as can_retry
from events.permissions import can_view_events as can_view
from events.services.queue import MAX_ATTEMPTS

PAGE_SIZE = 50


def _ensure_can_view(request: HttpRequest) -> None:
    if not can_view(request.user):
        raise PermissionDenied("Only Admin and Marketing see incoming events.")


class EventFilterForm(forms.Form):
    type = forms.ChoiceField(choices=[("", "All types"), *EventType.choices], required=False)
    name = forms.CharField(required=False, max_length=200, label="Event name contains")
    source = forms.ModelChoiceField(queryset=Source.objects.all(), required=False, empty_label="All sources")
    person = forms.CharField(required=False, max_length=200, label="Anonymous or user id")
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def filters(self) -> selectors.EventFilters:
        # Valid fields apply and an invalid one is ignored (and shown as invalid): one bad value in
        # a hand-edited URL must not turn the poll into a full-list response.
        self.is_valid()
        data = self.cleaned_data
        source = data.get("source")
        return selectors.EventFilters(
            type=data.get("type") or "",
            name=(data.get("name") or "").strip(),
            source_id=source.pk if source else None,
            person=(data.get("person") or "").strip(),
        )

    def cursor(self) -> int | None:
        """The poll's `after` id: only events stored after it are wanted."""
        self.is_valid()
        return self.cleaned_data.get("after")

    def query_string(self) -> str:
        """The active filters as a query string, for the poll URL (never the `after` cursor)."""
        params = self.data.copy()
        params.pop("after", None)
        return params.urlencode()


def pretty_json(value) -> str:
    # A plain string: the template escapes it like any other value (event data is untrusted).
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _event_row(event: Event) -> dict:
    message = {
        "type": event.type,
        "event": event.event or None,
        "messageId": event.message_id,
        "anonymousId": event.anonymous_id or None,
        "userId": event.user_id or None,
        "groupId": event.group_id or None,
        "previousId": event.previous_id or None,
        "properties": event.properties,
        "traits": event.traits,
        "context": event.context,
        "timestamp": _iso(event.timestamp),
        "originalTimestamp": _iso(event.original_timestamp),
        "sentAt": _iso(event.sent_at),
        "receivedAt": _iso(event.received_at),
        "isBot": event.is_bot,
    }
    return {"event": event, "json": pretty_json({k: v for k, v in message.items() if v is not None})}


def _per_minute(*, source_id: int | None) -> dict:
    counts = selectors.event_counts_per_minute(now=timezone.now(), source_id=source_id)
    total = sum(n for _, n in counts)
    peak_minute, peak = max(counts, key=lambda item: item[1])
    return {
        "rows": counts,
        "total": total,
        "peak": peak,
        "peak_minute": peak_minute,
        "chart": {
            "labels": [timezone.localtime(m).strftime("%H:%M") for m, _ in counts],
            "counts": [n for _, n in counts],
        },
    }


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    _ensure_can_view(request)
    form = EventFilterForm(request.GET)
    filters = form.filters()
    after = form.cursor()
    events = selectors.event_debug_list(filters=filters, after_id=after, limit=PAGE_SIZE)
    context = {
        "form": form,
        "rows": [_event_row(e) for e in events],
        "newest_id": events[0].pk if events else (after or 0),
        "filter_qs": form.query_string(),
        "tab": "events",
    }
    if request.htmx and after is not None:
        # The poll: only rows newer than the newest shown, prepended by the page. Nothing new is
        # a 204, which htmx leaves alone (no swap, no re-render).
        if not events:
            return HttpResponse(status=204)
        context["oob"] = True  # the poller travels out of band, carrying the new cursor
        return render(request, "events/debugger.html#new-rows", context)
    if request.htmx:
        return render(request, "events/debugger.html#event-list", context)
    context["per_minute"] = _per_minute(source_id=filters.source_id)
    context["dead_count"] = selectors.dead_letter_count()
    return render(request, "events/debugger.html", context)


@require_GET
def rejected_list(request: HttpRequest) -> HttpResponse:
    _ensure_can_view(request)
    form = EventFilterForm(request.GET)
    filters = form.filters()
    rejected = selectors.rejected_event_list(source_id=filters.source_id, limit=PAGE_SIZE)
    context = {
        "form": form,
        "rejected": [{"row": r, "json": pretty_json(r.payload)} for r in rejected],
        "tab": "rejected",
        "dead_count": selectors.dead_letter_count(),
    }
    return render(request, "events/debugger_rejected.html", context)


@require_GET
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    _ensure_can_view(request)
    rows = selectors.dead_letter_list()
    context = {
        "rows": [{"row": r, "json": _event_row(r.event)["json"]} for r in rows],
        "tab": "dead",
        "dead_count": selectors.dead_letter_count(),
        "can_retry": can_retry(request.user),
        "max_attempts": MAX_ATTEMPTS,
    }
    return render(request, "events/debugger_dead.html", context)


@require_POST
def dead_letter_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """`pk` is the dead-lettered event's id (the queue row's primary key)."""
    if not can_retry(request.user):
        raise PermissionDenied("Only Admins re-queue dead-lettered events.")
    if services.ingest_queue_retry(event_id=pk):
        messages.success(request, f"Event {pk} is queued again with a fresh attempt count.")
    else:
        messages.info(request, f"Event {pk} is not dead-lettered any more; nothing to retry.")
    return redirect("events:dead_letters")
