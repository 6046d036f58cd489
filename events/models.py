import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


class SourceKind(models.TextChoices):
    WEB = "web", "Website"
    SERVER = "server", "Server"
    MOBILE = "mobile", "Mobile app"


class Source(models.Model):
    """Where events come from. The write key is public (it ships in the page), so it only writes."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.WEB)
    write_key = models.CharField(max_length=64, unique=True, default=new_write_key)
    enabled = models.BooleanField(default=True)
    # Empty: any origin may send (write keys are public anyway); otherwise only these, for CORS.
    allowed_origins = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
