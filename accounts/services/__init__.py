"""Writes: users and API tokens (users), notifications, recently viewed records (recent).
Other apps import `from accounts import services` or a topic module
(`from accounts.services import notifications`)."""

from accounts.services.notifications import (
    notification_create,
    notification_email_send,
    notification_mark_all_read,
    notification_mark_read,
    notifications_delete_matching,
    user_preferences_update,
)
from accounts.services.recent import recent_view_record
from accounts.services.users import (
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
    user_create,
    user_sessions_delete,
    user_set_active,
    user_set_role,
)

__all__ = [
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "notification_create",
    "notification_email_send",
    "notification_mark_all_read",
    "notification_mark_read",
    "notifications_delete_matching",
    "recent_view_record",
    "user_create",
    "user_preferences_update",
    "user_sessions_delete",
    "user_set_active",
    "user_set_role",
]
