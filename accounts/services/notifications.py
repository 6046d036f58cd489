"""In-app notifications (the navbar bell) and their optional email copy.

Any app creates them through `notification_create`; accounts imports no domain app, so callers
pass a ready title, body and URL. Email leaves on commit, through a Celery task that stamps
`emailed_at` in the transaction that sends, so a redelivered task sends nothing twice.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Notification, UserPreferences
from accounts.selectors import user_preferences_get
from accounts.tasks import notification_email_send as notification_email_send_task


@transaction.atomic
def user_preferences_update(*, user: AbstractBaseUser, email_notifications: bool) -> UserPreferences:
    prefs, _ = UserPreferences.objects.update_or_create(
        user=user, defaults={"email_notifications": email_notifications}
    )
    return prefs


@transaction.atomic
def notification_create(*, user: AbstractBaseUser, title: str, body: str = "", url: str = "") -> Notification:
    """Notify a user in the app, and by email (after commit) if they opted in and have an address."""
    notification = Notification.objects.create(user=user, title=title[:200], body=body, url=url[:500])
    if user.email and user.is_active and user_preferences_get(user=user).email_notifications:
        transaction.on_commit(lambda: notification_email_send_task.delay(notification.pk))
    return notification


def notification_mark_read(*, user: AbstractBaseUser, notification_id: int) -> bool:
    """Mark one of the user's notifications read; False when it is not theirs or already read."""
    updated = Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return bool(updated)


def notification_mark_all_read(*, user: AbstractBaseUser) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification at most once. The row is locked and stamped in the transaction that
    sends: a concurrent or redelivered run waits, then finds it stamped. A failed send rolls the
    stamp back and the task's retry sends it. Returns whether an email went out."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.emailed_at is not None:
            return False  # deleted since, or already sent
        user = notification.user
        if not (user.email and user.is_active and user_preferences_get(user=user).email_notifications):
            return False  # opted out (or lost the address) after it was queued
        lines = [notification.body] if notification.body else []
        if notification.url:
            lines.append(f"{settings.CDP_PUBLIC_HOST}{notification.url}")
        EmailMessage(subject=notification.title, body="\n\n".join(lines), to=[user.email]).send()
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True


@transaction.atomic
def notifications_delete_matching(
    *, urls: list[str], texts: list[str], linked_urls: list[str] = (), linked_texts: list[str] = ()
) -> int:
    """Notifications linking to one of `urls`, or mentioning one of `texts` in their title or body,
    or linking to one of `linked_urls` while mentioning one of `linked_texts` (a name is only
    specific enough next to a link to the person's deal). Used by privacy's erasure."""

    def mentions(values) -> Q:
        found = Q(pk__in=[])
        for text in values:
            if text:
                found |= Q(title__icontains=text) | Q(body__icontains=text)
        return found

    match = Q(url__in=urls) | mentions(texts)
    if linked_urls:
        match |= Q(url__in=linked_urls) & mentions(linked_texts)
    deleted, _ = Notification.objects.filter(match).delete()
    return deleted
