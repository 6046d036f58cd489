import hashlib

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    """The three role groups, created by a migration. Superusers count as Admin."""

    ADMIN = "Admin"
    SALES = "Sales"
    MARKETING = "Marketing"


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is stored: a database leak leaks no tokens."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="API token")
    digest = models.CharField(max_length=64, unique=True)
    # The first characters, kept so a user can tell their tokens apart in a list.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
