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


class Notification(models.Model):
    """An in-app message for one user (the navbar bell); emailed too when the user opted in."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    # A path inside the app (the deal, the contact); emails prefix it with CDP_PUBLIC_HOST.
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Set by the email task in the transaction that sends it: a redelivered task sends nothing.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_time"),
            # The bell counts unread rows on every page: a partial index keeps that count small.
            models.Index(
                fields=["user"], condition=models.Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class UserPreferences(models.Model):
    """Per-user settings; a user without a row has the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Off by default: in-app notifications always; email only for those who ask for it.
    email_notifications = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class RecentView(models.Model):
    """A record a user opened (contact, company or deal), for the home page's "Recently viewed".
    Kept by kind and id rather than a foreign key: accounts knows no domain app, and a record
    deleted since simply drops out of the list when it is read. Capped per user on write."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    object_id = models.BigIntegerField()
    viewed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "object_id"], name="recent_view_unique")
        ]
        indexes = [models.Index(fields=["user", "-viewed_at"], name="recent_view_user_time")]

    def __str__(self) -> str:
        return f"{self.user_id} viewed {self.kind} {self.object_id}"
