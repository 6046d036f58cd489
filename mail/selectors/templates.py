"""The email templates a user may pick: their own and the shared ones."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from accounts.roles import is_admin
from core.errors import Forbidden, NotFound
from mail.models import EmailTemplate

SCOPES = ("all", "mine", "shared")


def templates_available(*, user: AbstractBaseUser, scope: str = "all") -> QuerySet[EmailTemplate]:
    """The user's own templates and the shared ones; scope "mine" or "shared" narrows to one side
    (a shared template of the user's own is in both)."""
    templates = EmailTemplate.objects.filter(Q(shared=True) | Q(owner_id=user.pk))
    if scope == "mine":
        templates = templates.filter(owner_id=user.pk)
    elif scope == "shared":
        templates = templates.filter(shared=True)
    return templates.select_related("owner").order_by("name", "pk")


def template_get(*, user: AbstractBaseUser, pk: int) -> EmailTemplate:
    """A template the user may use; another user's personal template is a 404 (it is private)."""
    template = templates_available(user=user).filter(pk=pk).first()
    if template is None:
        raise NotFound("No such template.")
    return template


def template_may_edit(*, template: EmailTemplate, user: AbstractBaseUser) -> bool:
    """Its owner edits a template; an Admin edits a shared one too (a personal one is private)."""
    return template.owner_id == user.pk or (template.shared and is_admin(user))


def template_get_editable(*, user: AbstractBaseUser, pk: int) -> EmailTemplate:
    """A template the user may edit or delete: another's personal one is a 404, a shared one the
    user may use but not edit a 403 (asked before any input is read)."""
    template = template_get(user=user, pk=pk)
    if not template_may_edit(template=template, user=user):
        raise Forbidden("Only the template's owner (or an Admin, for a shared template) may edit it.")
    return template
