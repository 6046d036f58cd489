import pytest

from accounts import selectors
from accounts.models import Notification
from accounts.services import notifications
from tests.factories import make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rita():
    return make_user(role="Sales", username="rita", email="rita@example.com")


def _notify(user, title="Hot deal: Acme", **extra):
    return notifications.notification_create(user=user, title=title, url="/deals/1/", **extra)


def test_every_page_has_a_bell_that_loads_the_unread_count(client, rita):
    client.force_login(rita)
    page = client.get("/").content.decode()
    assert 'hx-get="/notifications/bell/" hx-trigger="load"' in page and 'href="/notifications/"' in page
    assert 'data-testid="unread-count"' not in client.get("/notifications/bell/").content.decode()
    _notify(rita)
    _notify(rita, title="Second")
    _notify(make_user(username="other"))  # someone else's
    bell = client.get("/notifications/bell/").content.decode()
    assert 'data-testid="unread-count">2<' in bell


def test_notifications_page_lists_escaped_newest_first_and_marks_read(client, rita):
    client.force_login(rita)
    first = _notify(rita, title="<script>alert(1)</script>", body="body <b>x</b>")
    second = _notify(rita, title="Newer")
    html = client.get("/notifications/").content.decode()
    assert html.index("Newer") < html.index("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert "<script>alert(1)" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count('data-testid="notification-unread"') == 2
    # marking one read answers the list with the bell out of band
    response = client.post(f"/notifications/{first.pk}/read/", **HTMX)
    body = response.content.decode()
    assert body.count('data-testid="notification-unread"') == 1
    assert 'hx-swap-oob="true"' in body and 'data-testid="unread-count">1<' in body
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.read_at is not None and second.read_at is None
    # and all, without htmx: back to the page
    assert client.post("/notifications/read-all/").status_code == 302
    assert not Notification.objects.filter(user=rita, read_at__isnull=True).exists()


def test_a_user_cannot_mark_someone_elses_notification(client, rita):
    theirs = _notify(make_user(username="other"))
    client.force_login(rita)
    client.post(f"/notifications/{theirs.pk}/read/")
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_email_preference_in_settings(client, rita, django_capture_on_commit_callbacks):
    client.force_login(rita)
    settings_page = client.get("/settings/").content.decode()
    assert 'data-testid="notification-preferences"' in settings_page
    assert 'name="email_notifications" id="id_email_notifications">' in settings_page  # off by default
    client.post("/settings/notifications/", {"email_notifications": "on"})
    assert selectors.user_preferences_get(user=rita).email_notifications
    assert 'id="id_email_notifications" checked' in client.get("/settings/").content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        _notify(rita)
    assert len(callbacks) == 1
    client.post("/settings/notifications/", {})
    assert not selectors.user_preferences_get(user=rita).email_notifications
    with django_capture_on_commit_callbacks() as callbacks:
        _notify(rita)
    assert callbacks == []


def test_email_task_sends_once_and_skips_opted_out_or_deleted(rita, mailoutbox):
    notifications.user_preferences_update(user=rita, email_notifications=True)
    note = _notify(rita, body="Ada viewed pricing")
    assert notifications.notification_email_send(notification_id=note.pk)
    assert not notifications.notification_email_send(notification_id=note.pk)
    assert len(mailoutbox) == 1 and "Ada viewed pricing" in mailoutbox[0].body
    notifications.user_preferences_update(user=rita, email_notifications=False)
    later = _notify(rita)
    assert not notifications.notification_email_send(notification_id=later.pk)
    assert not notifications.notification_email_send(notification_id=999999)
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_emails_an_opted_in_user(celery_worker, rita):
    import time

    notifications.user_preferences_update(user=rita, email_notifications=True)
    note = _notify(rita)  # autocommit: the task is sent on commit, at once
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note.refresh_from_db()
        if note.emailed_at is not None:
            break
        time.sleep(0.1)
    assert note.emailed_at is not None, celery_worker.output()[-2000:]


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(client, rita):
    note = _notify(rita)
    client.force_login(rita)
    response = client.post(f"/notifications/{note.pk}/open/")
    assert response.status_code == 302 and response["Location"] == "/deals/1/"
    note.refresh_from_db()
    assert note.read_at is not None
    offsite = notifications.notification_create(user=rita, title="x", url="https://evil.example/")
    assert client.post(f"/notifications/{offsite.pk}/open/")["Location"] == "/notifications/"
    theirs = _notify(make_user(username="other"))
    assert client.post(f"/notifications/{theirs.pk}/open/").status_code == 404
    assert client.get(f"/notifications/{note.pk}/open/").status_code == 405
