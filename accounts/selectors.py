"""Reads: the user's notification preferences, their notifications and unread count (the bell),
and the records they opened recently (the home page)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from accounts.models import Notification, RecentView, UserPreferences

# The bell shows "99+" beyond this: counting further costs time and tells the user nothing.
UNREAD_COUNT_CAP = 100


def user_preferences_get(*, user: AbstractBaseUser) -> UserPreferences:
    """The user's preferences, or the defaults (unsaved) when they never changed any."""
    return UserPreferences.objects.filter(user=user).first() or UserPreferences(user=user)


def notification_list(*, user: AbstractBaseUser) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")


def notification_unread_count(*, user: AbstractBaseUser) -> int:
    """Unread notifications, counted up to UNREAD_COUNT_CAP."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    return len(unread.values_list("pk", flat=True)[:UNREAD_COUNT_CAP])


def recent_view_list(*, user: AbstractBaseUser, limit: int = 10) -> list[RecentView]:
    """The user's most recently opened records, newest first."""
    return list(RecentView.objects.filter(user=user).order_by("-viewed_at", "-pk")[:limit])
