"""The email templates a user may pick: their own and the shared ones."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from core.errors import NotFound
from mail.models import EmailTemplate


def templates_available(*, user: AbstractBaseUser) -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.filter(Q(shared=True) | Q(owner_id=user.pk)).order_by("name", "pk")


def template_get(*, user: AbstractBaseUser, pk: int) -> EmailTemplate:
    """A template the user may use; another user's personal template is a 404 (it is private)."""
    template = templates_available(user=user).filter(pk=pk).first()
    if template is None:
        raise NotFound("No such template.")
    return template
