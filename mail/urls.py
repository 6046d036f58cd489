from django.urls import path

from mail.views import compose, mailboxes, messages, tracking, triage
from mail.views import templates as template_views

app_name = "mail"

# Settings → Email (mailboxes, sync health, never-log list), the Unmatched inbox, templates,
# compose, message and attachment views. The public tracking paths (open pixel, click redirect)
# are in `tracking_urlpatterns`, included before the login-only pages (cdp_crm/urls.py).
urlpatterns: list = [
    # the Unmatched inbox: the owner's mail nothing could be linked to
    path("mail/unmatched/", triage.unmatched, name="unmatched"),
    path("mail/unmatched/<int:pk>/link/", triage.unmatched_link, name="unmatched_link"),
    path(
        "mail/unmatched/<int:pk>/create-contact/",
        triage.unmatched_create_contact,
        name="unmatched_create_contact",
    ),
    path("mail/unmatched/<int:pk>/ignore/", triage.unmatched_ignore, name="unmatched_ignore"),
    # a thread's messages the user may open (what a timeline's email links to), and attachments
    path("mail/threads/<int:pk>/", messages.thread, name="thread"),
    path("mail/attachments/<int:pk>/", messages.attachment, name="attachment"),
    # compose and reply (from a contact, a deal or a thread), scheduled sends
    path("mail/compose/", compose.compose, name="compose"),
    path("mail/sends/<int:pk>/cancel/", compose.send_cancel, name="send_cancel"),
    # Settings → Email: connected mailboxes and their sync health
    path("settings/email/", mailboxes.mailboxes, name="mailboxes"),
    path("settings/email/mailboxes/new/", mailboxes.mailbox_new, name="mailbox_new"),
    path("settings/email/mailboxes/<int:pk>/", mailboxes.mailbox_detail, name="mailbox_detail"),
    path("settings/email/mailboxes/<int:pk>/edit/", mailboxes.mailbox_edit, name="mailbox_edit"),
    path("settings/email/mailboxes/<int:pk>/folders/", mailboxes.mailbox_folders, name="mailbox_folders"),
    path("settings/email/mailboxes/<int:pk>/start/", mailboxes.mailbox_start, name="mailbox_start"),
    path("settings/email/mailboxes/<int:pk>/retry/", mailboxes.mailbox_retry, name="mailbox_retry"),
    path("settings/email/mailboxes/<int:pk>/test/", mailboxes.mailbox_test, name="mailbox_test"),
    path("settings/email/mailboxes/<int:pk>/pause/", mailboxes.mailbox_pause, name="mailbox_pause"),
    path("settings/email/mailboxes/<int:pk>/delete/", mailboxes.mailbox_delete, name="mailbox_delete"),
    # Settings → Email → never log
    path("settings/email/never-log/", triage.never_log, name="never_log"),
    path("settings/email/never-log/add/", triage.never_log_add, name="never_log_add"),
    path(
        "settings/email/never-log/add-for-everyone/",
        triage.never_log_add_workspace,
        name="never_log_add_workspace",
    ),
    path("settings/email/never-log/<int:pk>/remove/", triage.never_log_remove, name="never_log_remove"),
    # Settings → Email templates: mine and the shared ones, the merge-field picker, a preview
    path("settings/email/templates/", template_views.email_templates, name="email_templates"),
    path("settings/email/templates/new/", template_views.email_template_new, name="email_template_new"),
    path(
        "settings/email/templates/<int:pk>/edit/",
        template_views.email_template_edit,
        name="email_template_edit",
    ),
    path(
        "settings/email/templates/<int:pk>/delete/",
        template_views.email_template_delete,
        name="email_template_delete",
    ),
    path(
        "settings/email/templates/<int:pk>/duplicate/",
        template_views.email_template_duplicate,
        name="email_template_duplicate",
    ),
    path(
        "settings/email/templates/<int:pk>/preview/",
        template_views.email_template_preview,
        name="email_template_preview",
    ),
]

tracking_urlpatterns: list = [
    # an open pixel and a click redirect of a tracked send (mail.services.tracking)
    path("t/o/<slug:token>.gif", tracking.open_pixel, name="open"),
    path("t/c/<slug:token>/<int:position>", tracking.click, name="click"),
]
