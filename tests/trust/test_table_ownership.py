"""Each app writes only its own tables with raw SQL. Another app's rows change through that app's
services, where its invariants (and the one place to look for who writes a table) live: identity
once wrote contacts_contact with its own UPDATE; now contacts.services.contacts_tracked_save holds
the statement and identity calls it.

A grep, not a proof: every string literal in an app's code (docstrings and comments' SQL-looking
words included, f-string parts too) is searched for INSERT INTO / UPDATE / DELETE FROM / TRUNCATE /
MERGE INTO followed by a table name, and the table's owner (its model's app label, else its
`<app>_` prefix) must be the app the file is in. ORM writes are not looked at: they name a model,
so the import contracts (lint-imports) already say who may touch it."""

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]

# Upper-case keywords only: the project writes SQL in capitals, and lower-case "update" or "delete"
# in prose would otherwise be read as statements.
WRITE = re.compile(
    r"\b(?P<verb>INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|MERGE\s+INTO)"
    r"\s+(?:ONLY\s+)?\"?(?P<table>[A-Za-z_][A-Za-z0-9_]*)\"?"
)

# (file relative to the repository, table) -> why this app may write that table. Empty today:
# privacy's erasure deletes across apps through each app's own service.
ALLOWED: dict[tuple[str, str], str] = {}


def local_apps() -> dict[str, Path]:
    """App label -> folder, for the project's own apps (those in the repository)."""
    found = {}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.parent == ROOT:
            found[config.label] = path
    core = ROOT / "core"
    if core.is_dir():
        found.setdefault("core", core)
    return found


def table_owners(labels: set[str]) -> dict[str, str]:
    return {
        model._meta.db_table: model._meta.app_label
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in labels
    }


def owner_of(table: str, owners: dict[str, str], labels: set[str]) -> str | None:
    if table in owners:
        return owners[table]
    # A table no model names (or a typo of one): its prefix says whose it would be.
    return next(
        (label for label in sorted(labels, key=len, reverse=True) if table.startswith(f"{label}_")), None
    )


def raw_sql_writes(source: str) -> list[tuple[int, str, str]]:
    """(line, verb, table) for each write statement in the string literals of `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in WRITE.finditer(node.value):
                verb = " ".join(match["verb"].split())
                found.append((node.lineno, verb, match["table"].lower()))
    return found


def foreign_writes(root: Path = ROOT) -> list[str]:
    """Every raw SQL write of one app into a table another app owns, not in ALLOWED."""
    app_dirs = {label: root / path.relative_to(ROOT) for label, path in local_apps().items()}
    labels = set(app_dirs)
    owners = table_owners(labels)
    problems = []
    for label, folder in sorted(app_dirs.items()):
        for file in sorted(folder.rglob("*.py")):
            relative = file.relative_to(root).as_posix()
            for line, verb, table in raw_sql_writes(file.read_text()):
                owner = owner_of(table, owners, labels)
                if owner is None or owner == label or (relative, table) in ALLOWED:
                    continue
                problems.append(f"{relative}:{line}: {verb} {table} (owned by {owner}, written from {label})")
    return problems


def test_no_app_writes_another_apps_table_with_raw_sql():
    assert foreign_writes() == [], "write through the owning app's services instead"


def test_every_allowed_write_still_exists():
    # An allowance for code that is gone would let the next raw write in the same file through.
    for relative, table in ALLOWED:
        writes = raw_sql_writes((ROOT / relative).read_text())
        assert table in {t for _, _, t in writes}, f"{relative} no longer writes {table}: drop it"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("UPDATE contacts_contact AS c SET traits = v.traits", ("UPDATE", "contacts_contact")),
        (
            "INSERT INTO identity_profileupdate (contact_id) VALUES (%s)",
            ("INSERT INTO", "identity_profileupdate"),
        ),
        ('DELETE FROM "events_event" WHERE id = ANY(%s)', ("DELETE FROM", "events_event")),
        ("TRUNCATE TABLE segments_segmentmember", ("TRUNCATE TABLE", "segments_segmentmember")),
        ("MERGE INTO pipeline_deal d USING x ON true", ("MERGE INTO", "pipeline_deal")),
        ("UPDATE ONLY contacts_company SET name = ''", ("UPDATE", "contacts_company")),
    ],
)
def test_the_grep_finds_each_kind_of_write(sql, expected):
    assert [(verb, table) for _, verb, table in raw_sql_writes(f"X = {sql!r}\n")] == [expected]


def test_the_grep_reads_prose_and_reads_as_no_write():
    source = (
        '"""update the contacts, then delete from the list."""\nSELECT = "SELECT id FROM contacts_contact"\n'
    )
    assert raw_sql_writes(source) == []


def test_a_foreign_write_is_reported(tmp_path):
    """The old stitching worker's statement, in identity, is what the check exists to catch."""
    for path in local_apps().values():
        (tmp_path / path.relative_to(ROOT)).mkdir(parents=True)
    (tmp_path / "identity" / "stitching.py").write_text(
        'def save(cursor):\n    cursor.execute("UPDATE contacts_contact AS c SET traits = v.traits")\n'
    )
    (tmp_path / "contacts" / "services.py").write_text('SQL = "UPDATE contacts_contact SET traits = %s"\n')
    assert foreign_writes(tmp_path) == [
        "identity/stitching.py:2: UPDATE contacts_contact (owned by contacts, written from identity)"
    ]
