"""core.replica's rules that need no streaming pair (test_streaming_replica.py runs one)."""

import copy

import pytest
from django.db import connections, router

from contacts.models import Contact
from core import replica as core_replica
from core.replica import ReplicaRouter, reads_alias, replica_reads, replica_status


@pytest.mark.parametrize(
    ("sql", "is_read"),
    [
        ('SELECT "contacts_contact"."id" FROM "contacts_contact"', True),
        ("  select 1", True),
        ("SAVEPOINT s1", True),
        ("SET LOCAL statement_timeout = 100", True),
        ('INSERT INTO "contacts_contact" ("email") VALUES (%s)', False),
        ('UPDATE "contacts_contact" SET "email" = %s', False),
        ('DELETE FROM "contacts_contact"', False),
        ("WITH moved AS (DELETE FROM t RETURNING *) SELECT count(*) FROM moved", False),
        ("COPY events_event FROM STDIN", False),
        (b"SELECT 1", False),  # not a str: counted as a write, the safe side
    ],
)
def test_statements_that_count_as_writes(sql, is_read):
    assert core_replica._is_read(sql) is is_read


@pytest.fixture
def no_replica():
    """No replica alias, even where DATABASE_REPLICA_URL gave the suite a (mirrored) one."""
    configured = connections.settings.pop(core_replica.REPLICA, None)
    yield
    if configured:
        connections.settings[core_replica.REPLICA] = configured
    core_replica.replica_status_reset()


def test_without_a_replica_every_read_goes_to_the_primary(no_replica):
    assert reads_alias() == "default"
    assert not replica_status(refresh=True).usable

    @replica_reads
    def alias():
        return router.db_for_read(Contact)

    assert alias() == "default"


@pytest.fixture
def mirror(no_replica):
    """A replica alias that names the primary's own server and database: the test mirror."""
    connections.settings[core_replica.REPLICA] = copy.deepcopy(connections.settings["default"])
    yield
    del connections.settings[core_replica.REPLICA]


def test_a_replica_that_names_the_primary_database_is_not_used(mirror):
    assert reads_alias() == "default"
    assert replica_status(refresh=True).reason == "no replica configured"


def test_the_router_writes_to_the_primary_and_reads_there_outside_an_opted_in_block():
    routes = ReplicaRouter()
    loaded_from_replica = Contact()
    loaded_from_replica._state.db = core_replica.REPLICA
    assert routes.db_for_write(Contact, instance=loaded_from_replica) == "default"
    # A sample row's foreign key followed after the block (in a template) reads the primary.
    assert routes.db_for_read(Contact, instance=loaded_from_replica) == "default"
    assert routes.allow_relation(loaded_from_replica, Contact()) is True
    assert routes.allow_migrate(core_replica.REPLICA, "contacts") is False
    assert routes.allow_migrate("default", "contacts") is None
