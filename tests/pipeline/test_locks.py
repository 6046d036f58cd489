"""Row locks of deal writes, seen from a second database connection (a second thread)."""

import threading
from collections.abc import Callable

import pytest
from django.db import OperationalError, connection, transaction

from pipeline import services
from pipeline.models import Deal, Stage
from tests.factories import make_admin, make_pipeline, make_user, stages_of

pytestmark = pytest.mark.django_db(transaction=True)


class Holding:
    """Run `work` in a transaction on another thread's connection and keep it open (its locks
    held) until the `with` block ends."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work
        self.ready = threading.Event()
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.work()
                self.ready.set()
                self.release.wait(30)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.ready.set()
            connection.close()

    def __enter__(self) -> "Holding":
        self.thread.start()
        assert self.ready.wait(30), "the other connection never got its locks"
        assert self.errors == [], self.errors
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)
        assert self.errors == [], self.errors


def _locked_elsewhere(model, pk: int) -> bool:
    """Whether another transaction holds a lock on the row that FOR UPDATE must wait for."""
    try:
        with transaction.atomic():
            model.objects.select_for_update(nowait=True).get(pk=pk)
    except OperationalError:  # lock_not_available
        return True
    return False


def test_a_deal_move_locks_the_deal_and_not_its_stage():
    rep = make_user(role="Sales")
    stage = stages_of(make_pipeline())[0]
    acme = services.deal_create(actor=rep, title="Acme", stage=stage)
    globex = services.deal_create(actor=rep, title="Globex", stage=stage)
    # while a rep's drag inside the column is in its transaction
    with Holding(lambda: services.deal_move(deal=acme, to_stage=stage, actor=rep, after=globex)):
        # the deal is locked, and its stage's row can still be locked by anyone else
        assert _locked_elsewhere(Deal, acme.pk)
        assert not _locked_elsewhere(Stage, stage.pk)
    assert Deal.objects.get(pk=acme.pk).position > Deal.objects.get(pk=globex.pk).position


def test_a_stage_reorder_does_not_wait_for_a_deal_moving_between_its_stages():
    rep, admin = make_user(role="Sales"), make_admin()
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    acme = services.deal_create(actor=rep, title="Acme", stage=lead)
    with Holding(lambda: services.deal_move(deal=acme, to_stage=demo, actor=rep)), transaction.atomic():
        # a wait would be a lock conflict (and, with the move locking in the other order, the
        # deadlock the issue saw); give up quickly instead of hanging the test
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '3s'")
        services.stage_reorder(actor=admin, pipeline=pipeline, stage_ids=[proposal.pk, demo.pk, lead.pk])
    assert [s.name for s in pipeline.stages.all()] == ["Proposal", "Demo", "Lead in"]
    assert Deal.objects.get(pk=acme.pk).stage_id == demo.pk


def test_a_deal_move_does_not_wait_for_a_stage_reorder_in_progress():
    rep, admin = make_user(role="Sales"), make_admin()
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    acme = services.deal_create(actor=rep, title="Acme", stage=lead)
    reorder = [proposal.pk, demo.pk, lead.pk]
    # the move and its commit (where the foreign keys are checked), while the reorder is open
    holding = Holding(lambda: services.stage_reorder(actor=admin, pipeline=pipeline, stage_ids=reorder))
    with holding, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '3s'")
        services.deal_move(deal=acme, to_stage=demo, actor=rep)
    assert Deal.objects.get(pk=acme.pk).stage_id == demo.pk
    assert [s.name for s in pipeline.stages.all()] == ["Proposal", "Demo", "Lead in"]
