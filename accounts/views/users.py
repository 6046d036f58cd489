from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import ApiTokenForm, NotificationPreferencesForm, UserCreateForm, UserRoleForm
from accounts.models import ApiToken, Role
from accounts.permissions import ensure_admin
from accounts.roles import is_admin, primary_role
from accounts.selectors import user_preferences_get
from core.errors import Conflict, domain_errors

MANAGE_USERS = "Only Admins manage users."


def _settings_context(request: HttpRequest, **extra) -> dict:
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "token_form": extra.pop("token_form", None) or ApiTokenForm(),
        "is_admin": is_admin(request.user),
        "roles": Role.values,
        "notification_form": NotificationPreferencesForm(
            initial={"email_notifications": user_preferences_get(user=request.user).email_notifications}
        ),
    }
    if context["is_admin"]:
        users = get_user_model().objects.order_by("username").prefetch_related("groups")
        context["users"] = [(user, primary_role(user)) for user in users]
        context["user_form"] = extra.pop("user_form", None) or UserCreateForm()
    context.update(extra)
    return context


@require_http_methods(["GET"])
def settings_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/settings.html", _settings_context(request))


@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return render(
            request, "accounts/settings.html", _settings_context(request, token_form=form), status=400
        )
    token, raw = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
    # Shown once in this response and never again: only the digest is stored.
    return render(
        request, "accounts/settings.html", _settings_context(request, new_token=raw, new_token_obj=token)
    )


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Scoped to the requesting user: another user's token id is a 404, not a revoke.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:settings")


@require_POST
@domain_errors
def user_create(request: HttpRequest) -> HttpResponse:
    ensure_admin(request.user, message=MANAGE_USERS)
    form = UserCreateForm(request.POST)
    if not form.is_valid():
        return render(
            request, "accounts/settings.html", _settings_context(request, user_form=form), status=400
        )
    data = form.cleaned_data
    try:
        user = services.user_create(
            username=data["username"],
            password=data["password"],
            role=data["role"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
        )
    except ValidationError as exc:
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
        return render(
            request, "accounts/settings.html", _settings_context(request, user_form=form), status=400
        )
    messages.success(request, f"User {user.get_username()} created as {data['role']}.")
    return redirect("accounts:settings")


@require_POST
@domain_errors
def user_set_role(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=MANAGE_USERS)
    user = get_object_or_404(get_user_model(), pk=pk)
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("accounts:settings")
    if user == request.user and form.cleaned_data["role"] != Role.ADMIN:
        messages.error(request, "You cannot remove your own Admin role.")
        return redirect("accounts:settings")
    services.user_set_role(user=user, role=form.cleaned_data["role"])
    messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']}.")
    return redirect("accounts:settings")


@require_POST
@domain_errors
def user_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate (`active=0`) or reactivate (`active=1`) a user from the users table."""
    ensure_admin(request.user, message=MANAGE_USERS)
    user = get_object_or_404(get_user_model(), pk=pk)
    active = request.POST.get("active") == "1"
    try:
        user = services.user_set_active(user=user, active=active, actor=request.user)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect("accounts:settings")
    state = "reactivated" if active else "deactivated: signed out everywhere, API tokens revoked"
    messages.success(request, f"{user.get_username()} {state}.")
    return redirect("accounts:settings")
