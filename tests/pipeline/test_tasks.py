import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from pipeline.models import Task
from pipeline.services import activities
from pipeline.tasks import tasks_send_reminders
from tests.factories import make_contact, make_user


def _task(assignee, *, minutes: float, title: str = "Call Ada", **fields) -> Task:
    return Task.objects.create(
        title=title, assignee=assignee, due_at=timezone.now() + timedelta(minutes=minutes), **fields
    )


@pytest.mark.django_db
def test_reminder_goes_to_the_assignee_for_tasks_due_soon_only(settings):
    # given tasks due in 5, 14, 30 minutes, one done, one already reminded, one long overdue
    settings.TASK_REMINDER_LEAD_MINUTES = 15
    rep = make_user(email="rep@example.com")
    soon = _task(rep, minutes=5, title="Call Ada")
    _task(rep, minutes=14, title="Send quote")
    _task(rep, minutes=30, title="Later")
    _task(rep, minutes=5, title="Done", done=True)
    _task(rep, minutes=5, title="Reminded", reminder_sent_at=timezone.now())
    _task(rep, minutes=-24 * 60, title="Yesterday")
    # when reminders run
    sent = activities.tasks_send_reminders()
    # then one email to the rep lists the two tasks due within 15 minutes
    assert sent == 2
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["rep@example.com"] and message.subject == "2 tasks due soon"
    assert "Call Ada" in message.body and "Send quote" in message.body and "Later" not in message.body
    assert Task.objects.get(pk=soon.pk).reminder_sent_at is not None
    assert Task.objects.get(title="Later").reminder_sent_at is None
    assert Task.objects.get(title="Yesterday").reminder_sent_at is None


@pytest.mark.django_db
def test_lead_time_is_a_setting(settings):
    settings.TASK_REMINDER_LEAD_MINUTES = 60
    rep = make_user(email="rep@example.com")
    _task(rep, minutes=45, title="Board meeting")
    assert activities.tasks_send_reminders() == 1
    assert mail.outbox[0].subject == "Due soon: Board meeting"


@pytest.mark.django_db
def test_each_assignee_gets_their_own_email_and_a_second_run_sends_nothing():
    # given tasks for two reps
    ada, bob = make_user(email="ada@example.com"), make_user(email="bob@example.com")
    _task(ada, minutes=3, title="Ada's call", contact=make_contact())
    _task(bob, minutes=3, title="Bob's call")
    # when reminders run twice
    assert activities.tasks_send_reminders() == 2
    assert activities.tasks_send_reminders() == 0
    # then each got exactly one email about their own task
    by_to = {m.to[0]: m.body for m in mail.outbox}
    assert len(mail.outbox) == 2
    assert "Ada's call" in by_to["ada@example.com"] and "Bob's call" not in by_to["ada@example.com"]


@pytest.mark.django_db
def test_a_failed_send_releases_the_claim_for_the_next_run(monkeypatch):
    rep = make_user(email="rep@example.com")
    task = _task(rep, minutes=3)

    def broken(self, *args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with pytest.raises(OSError):
        activities.tasks_send_reminders()
    assert Task.objects.get(pk=task.pk).reminder_sent_at is None
    monkeypatch.undo()
    assert activities.tasks_send_reminders() == 1 and len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_leaves_alone_a_person_another_run_is_reminding():
    import psycopg

    from tests.conftest import _test_database_url

    # given a rep with three tasks due, whom another run is reminding right now (it holds the
    # rep's reminder lock, as a run between its claim and its commit does)
    rep = make_user(email="held@example.com")
    for i in range(3):
        _task(rep, minutes=5, title=f"Held {i}")
    with psycopg.connect(_test_database_url()) as other_run:
        other_run.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [activities.REMINDER_LOCK_NAMESPACE, rep.pk]
        )
        # when this run comes by, it skips the rep entirely (no second, partial email)
        assert activities.tasks_send_reminders() == 0 and mail.outbox == []
        other_run.rollback()
    # and once the other run is gone (here: without sending), the next run sends one email
    assert activities.tasks_send_reminders() == 3
    assert [m.to for m in mail.outbox] == [["held@example.com"]]


@pytest.mark.django_db(transaction=True)
def test_reminder_sent_once_when_two_runs_race():
    # given 20 tasks due soon across 4 reps
    reps = [make_user(email=f"rep{i}@example.com") for i in range(4)]
    for i in range(20):
        _task(reps[i % 4], minutes=5, title=f"Task {i}")
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(activities.tasks_send_reminders())
        finally:
            connection.close()

    # when two runs start at the same moment
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every task was reminded exactly once, in one email per rep
    assert sum(results) == 20
    titles = [line for m in mail.outbox for line in m.body.splitlines() if "Task " in line]
    assert len(titles) == 20 and len({t.split(" ", 2)[2] for t in titles}) == 20
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in reps)


@pytest.mark.django_db(transaction=True)
def test_a_run_skips_tasks_another_run_has_claimed_and_not_yet_committed():
    # given a task whose reminder another run is sending right now (its row locked, not committed)
    rep = make_user(email="rep@example.com")
    task = _task(rep, minutes=5)
    locked, release = threading.Event(), threading.Event()

    def other_run():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT id FROM pipeline_task WHERE id = %s FOR UPDATE", [task.pk])
                locked.set()
                release.wait(10)
                cursor.execute("UPDATE pipeline_task SET reminder_sent_at = now() WHERE id = %s", [task.pk])
                cursor.execute("COMMIT")
        finally:
            other.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    assert locked.wait(10)
    # when this run starts meanwhile, then it neither waits nor sends
    started = time.monotonic()
    assert activities.tasks_send_reminders() == 0
    assert time.monotonic() - started < 5 and mail.outbox == []
    release.set()
    thread.join()
    # and after the other run committed, nothing is left to send
    assert activities.tasks_send_reminders() == 0


@pytest.mark.django_db(transaction=True)
def test_reminders_run_in_a_real_worker(celery_worker):
    # given a task due in five minutes
    rep = make_user(email="worker-rep@example.com")
    task = _task(rep, minutes=5, title="Worker reminder check")
    # when the beat task runs in the worker
    tasks_send_reminders.delay()
    deadline = time.monotonic() + 20
    while Task.objects.get(pk=task.pk).reminder_sent_at is None and time.monotonic() < deadline:
        time.sleep(0.2)
    # then the task is marked and the worker's (console) mail backend printed the email
    assert Task.objects.get(pk=task.pk).reminder_sent_at is not None
    # (the prefork child's stdout reaches the log when it flushes: seconds late on a loaded box)
    deadline = time.monotonic() + 20
    while "Due soon: Worker reminder check" not in celery_worker.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Due soon: Worker reminder check" in celery_worker.output()
