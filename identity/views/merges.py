"""The merge log pages: every merge (manual or automatic), its detail, and the Admin's split."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import is_admin
from core.errors import Conflict, domain_errors
from core.params import parse_id
from identity import selectors
from identity.services import merging

PAGE_SIZE = 50


@require_GET
@domain_errors
def merge_list(request: HttpRequest) -> HttpResponse:
    contact_id = parse_id(request.GET.get("contact"))
    merges = selectors.merge_list(user=request.user, contact_id=contact_id)
    page = Paginator(merges, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "identity/merge_list.html",
        {"page": page, "contact_id": contact_id, "can_split": is_admin(request.user)},
    )


@require_GET
@domain_errors
def merge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    merge = selectors.merge_get(user=request.user, merge_id=pk)
    moved = sorted(merge.moved.items())
    return render(
        request,
        "identity/merge_detail.html",
        {"merge": merge, "moved": moved, "can_split": is_admin(request.user)},
    )


@require_POST
@domain_errors
def merge_split(request: HttpRequest, pk: int) -> HttpResponse:
    merge = selectors.merge_get(user=request.user, merge_id=pk)
    try:
        merging.merge_split(merge=merge, actor=request.user)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Split: contact #{merge.loser_id} is its own person again.")
    return redirect("identity:merge_detail", pk=pk)
