"""CSV import of contacts and companies: upload, column mapping, preview, and the batched run in a worker.

The file is read as a stream everywhere (upload checks, preview, the worker), never whole into
memory. Each row is validated by the same code as contact_create/contact_update
(records.contact_prepare, custom_fields.clean_value); only the writes are batched: one
transaction per BATCH_SIZE rows, committing the rows, their rejected-row records and the job's
progress together, so a re-run (a redelivered task) resumes exactly after the last batch.
"""

import codecs
import csv
import functools
import io
import itertools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Role
from accounts.roles import has_role
from contacts import custom_fields, permissions, selectors
from contacts.models import (
    Company,
    Contact,
    CustomField,
    DedupeMode,
    ImportJob,
    ImportRowError,
    ImportStatus,
    LifecycleStage,
)
from contacts.services import changes, records
from contacts.tasks import contact_import_run as contact_import_run_task
from core.db import lock_rows
from core.errors import DomainError, NotFound
from core.normalize import clean_domain, email_domain, normalize_email
from core.params import parse_id
from core.text import storable

# Big enough for a few hundred thousand contacts; bigger files should be split (or use the API).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 200
# One transaction per this many rows: big enough that per-statement overhead vanishes, small
# enough that locks are short and a failed batch retried row by row stays cheap.
BATCH_SIZE = 1000
PREVIEW_ROWS = 10
# A run hands over to a fresh task after this long, well below the 270 s soft time limit.
RUN_SECONDS = 120
MAX_CELL = 10_000

IGNORE = ""
CONTACT_TARGETS: list[tuple[str, str]] = [
    ("email", "Email"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("full_name", "Full name (split into first and last)"),
    ("phone", "Phone"),
    ("title", "Job title"),
    ("company", "Company (name or domain)"),
    ("owner", "Owner (username or email)"),
    ("lifecycle_stage", "Lifecycle stage"),
    ("tags", "Tags (comma separated)"),
]

COMPANY_TARGETS: list[tuple[str, str]] = [
    ("name", "Name"),
    ("domain", "Domain or website"),
    ("industry", "Industry"),
    ("size", "Size"),
    ("owner", "Owner (username or email)"),
]

# Header, lower-cased with everything but letters and digits removed -> target.
_CONTACT_GUESSES = {
    "email": ["email", "emailaddress", "mail", "workemail", "emailaddr", "primaryemail", "businessemail"],
    "first_name": ["firstname", "first", "givenname", "forename", "fname"],
    "last_name": ["lastname", "last", "surname", "familyname", "lname"],
    "full_name": ["name", "fullname", "contactname", "contact", "person"],
    "phone": ["phone", "phonenumber", "mobile", "mobilephone", "telephone", "tel", "cell", "workphone"],
    "title": ["title", "jobtitle", "position", "role"],
    "company": [
        "company",
        "companyname",
        "organization",
        "organisation",
        "org",
        "account",
        "accountname",
        "employer",
        "companydomain",
        "website",
        "domain",
    ],
    "owner": ["owner", "contactowner", "assignedto", "salesrep", "accountowner"],
    "lifecycle_stage": ["lifecyclestage", "lifecycle", "stage", "leadstatus"],
    "tags": ["tags", "tag", "labels", "label"],
}
_COMPANY_GUESSES = {
    "name": ["name", "company", "companyname", "organization", "organisation", "account", "accountname"],
    "domain": ["domain", "website", "url", "web", "companydomain", "homepage", "site"],
    "industry": ["industry", "sector", "vertical"],
    "size": ["size", "companysize", "employees", "headcount", "numberofemployees"],
    "owner": ["owner", "companyowner", "accountowner", "assignedto"],
}
_GUESS_BY_HEADER = {
    entity: {alias: target for target, aliases in guesses.items() for alias in aliases}
    for entity, guesses in (("contact", _CONTACT_GUESSES), ("company", _COMPANY_GUESSES))
}
# What a mapping needs at least, to tell records apart.
_IDENTIFYING = {
    "contact": ({"email", "first_name", "last_name", "full_name"}, "Map at least an email or a name column."),
    "company": ({"name", "domain"}, "Map at least a name or a domain column."),
}
_TAG_SPLIT = re.compile(r"[,;|]")


class ImportRefused(DomainError):
    """The upload or mapping cannot be used; the message says why."""


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def targets(*, entity: str = "contact") -> list[tuple[str, str]]:
    """(value, label) of every field a column can map to: built-in fields, then custom fields."""
    custom = [
        (f"custom:{d.key}", f"{d.label} (custom)") for d in selectors.custom_field_definitions(entity=entity)
    ]
    return (CONTACT_TARGETS if entity == "contact" else COMPANY_TARGETS) + custom


def guess_mapping(*, headers: list[str], entity: str = "contact") -> dict[str, str]:
    """Column index -> target for the headers we recognise ("E-mail", "First Name", "Company")."""
    custom = {}
    for d in selectors.custom_field_definitions(entity=entity):
        # "custom.<key>" is how the list export names the column: an export imports back as is.
        for name in (d.key, d.label, f"custom.{d.key}"):
            custom[_squash(name)] = f"custom:{d.key}"
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for index, header in enumerate(headers):
        squashed = _squash(header)
        target = custom.get(squashed) or _GUESS_BY_HEADER[entity].get(squashed)
        if target and target not in used:
            mapping[str(index)] = target
            used.add(target)
    # "Name" next to "First name"/"Last name" columns is probably something else: leave it out.
    if "full_name" in used and ({"first_name", "last_name"} & used):
        mapping = {k: v for k, v in mapping.items() if v != "full_name"}
    return mapping


# --- reading the file


def detect_encoding(stream: BinaryIO) -> str:
    """utf-8-sig (a BOM, as Excel writes), utf-8 if the whole file decodes, else latin-1.

    Decodes incrementally in 64 KiB chunks, so a big file is never held in memory. latin-1 maps
    every byte, so it never fails; it is the right guess for old Excel and most legacy exports.
    """
    stream.seek(0)
    if stream.read(3) == codecs.BOM_UTF8:
        stream.seek(0)
        return "utf-8-sig"
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(64 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    finally:
        stream.seek(0)
    return "utf-8"


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


@contextmanager
def _rows(stream: BinaryIO, encoding: str) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """(header, iterator of rows) over a binary stream, decoded and parsed lazily."""
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", errors="replace")
    try:
        sample = text.read(16 * 1024)
        text.seek(0)
        reader = csv.reader(text, _dialect(sample))
        header = next(reader, None)
        if header is None:
            raise ImportRefused("The file is empty.")
        yield [h.strip() for h in header], reader
    finally:
        text.detach()  # leave the underlying file open: its owner closes it


@contextmanager
def open_rows(job: ImportJob) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    with job.file.open("rb") as stream, _rows(stream, job.encoding) as (header, rows):
        yield header, rows


# --- upload and mapping (web requests)


@transaction.atomic
def import_upload(*, actor: AbstractBaseUser, uploaded: UploadedFile, entity: str = "contact") -> ImportJob:
    """Check an uploaded CSV (size, encoding, header, row count) and store it as a draft import."""
    if entity not in _IDENTIFYING:
        raise ImportRefused(f"{entity!r} is not contacts or companies.")
    permissions.ensure_can_create(actor, kind="contacts" if entity == "contact" else "companies")
    if uploaded.size is None or uploaded.size > MAX_UPLOAD_BYTES:
        raise ImportRefused(
            f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it into smaller files."
        )
    if uploaded.size == 0:
        raise ImportRefused("The file is empty.")
    stream = uploaded.open("rb")
    encoding = detect_encoding(stream)
    try:
        with _rows(stream, encoding) as (header, rows):
            if not any(header):
                raise ImportRefused("The first row must name the columns (a header row).")
            if len(header) > MAX_COLUMNS:
                raise ImportRefused(
                    f"The file has {len(header)} columns; at most {MAX_COLUMNS} are supported."
                )
            total = sum(1 for _ in rows)
    except csv.Error as exc:
        raise ImportRefused(f"This does not read as a CSV file: {exc}.") from None
    if total == 0:
        raise ImportRefused("The file has a header row but no data rows.")
    job = ImportJob(
        entity=entity,
        original_name=storable(uploaded.name or "import.csv")[:255],
        encoding=encoding,
        headers=[storable(h[:200]) for h in header],
        total_rows=total,
        created_by=actor,
    )
    stream.seek(0)
    job.file.save(f"{entity}.csv", uploaded, save=False)
    job.mapping = guess_mapping(headers=job.headers, entity=entity)
    job.save()
    return job


def clean_mapping(*, job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    """Keep mapped columns only; refuse a target used twice or a mapping with nothing to identify
    a person by."""
    allowed = {value for value, _ in targets(entity=job.entity)}
    cleaned: dict[str, str] = {}
    seen: dict[str, str] = {}
    for index, target in mapping.items():
        if not target:
            continue
        column = parse_id(index)
        if column is None or column >= len(job.headers) or target not in allowed:
            raise ImportRefused(f"Column {index} cannot be mapped to {target!r}.")
        if target in seen:
            raise ImportRefused(
                f"“{job.headers[int(seen[target])]}” and “{job.headers[int(index)]}” "
                "both map to the same field."
            )
        seen[target] = index
        cleaned[index] = target
    needed, message = _IDENTIFYING[job.entity]
    if not needed & set(cleaned.values()):
        raise ImportRefused(message)
    return cleaned


@transaction.atomic
def import_start(
    *, job: ImportJob, actor: AbstractBaseUser, mapping: dict[str, str], dedupe: str, create_companies: bool
) -> ImportJob:
    """Save the mapping and options and queue the run. Starting a started import is a no-op."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportStatus.DRAFT:
        return job
    permissions.ensure_can_create(actor, kind="contacts" if job.entity == "contact" else "companies")
    if dedupe not in DedupeMode.values:
        raise ImportRefused(f"{dedupe!r} is not a way to handle existing records.")
    job.mapping = clean_mapping(job=job, mapping=mapping)
    job.dedupe = dedupe
    job.create_companies = create_companies
    job.status = ImportStatus.QUEUED
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["mapping", "dedupe", "create_companies", "status", "heartbeat_at"])
    transaction.on_commit(lambda: contact_import_run_task.delay(job.pk))
    return job


def import_jobs_visible(*, user: AbstractBaseUser) -> QuerySet[ImportJob]:
    """Admins see every import; others their own."""
    jobs = ImportJob.objects.select_related("created_by")
    return jobs if has_role(user, Role.ADMIN) else jobs.filter(created_by=user)


def import_job_get(*, user: AbstractBaseUser, job_id: int) -> ImportJob:
    job = import_jobs_visible(user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Import {job_id} does not exist.")
    return job


# --- turning rows into contacts


@dataclass
class RowResult:
    row_number: int
    values: list[str]
    action: str = ""  # create, update, skip, error
    reason: str = ""
    record: Contact | Company | None = None


@dataclass
class _Parsed:
    fields: dict[str, Any]
    custom: dict[str, Any]
    email: str | None
    company_text: str | None


@dataclass
class _Context:
    """Per-run lookups, so a 50k-row file costs queries per batch, not per row."""

    job: ImportJob
    actor: AbstractBaseUser | None
    definitions: dict[str, CustomField] = field(default_factory=dict)
    users: dict[str, AbstractBaseUser | None] = field(default_factory=dict)
    companies: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def for_job(cls, job: ImportJob) -> "_Context":
        ctx = cls(job=job, actor=job.created_by)
        ctx.definitions = {d.key: d for d in selectors.custom_field_definitions(entity=job.entity)}
        return ctx


def _parse(ctx: _Context, values: list[str]) -> _Parsed:
    """Cells -> service fields, for mapped non-blank cells only. Raises ValidationError."""
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    errors: list[str] = []
    company_text = None
    for index, target in ctx.job.mapping.items():
        i = int(index)
        cell = values[i].strip() if i < len(values) else ""
        if not cell:
            continue
        if len(cell) > MAX_CELL:
            errors.append(f"{target}: the cell is longer than {MAX_CELL} characters")
            continue
        if target.startswith("custom:"):
            key = target.removeprefix("custom:")
            definition = ctx.definitions.get(key)
            if definition is None:  # deleted after the mapping was saved
                continue
            try:
                custom[key] = custom_fields.clean_value(definition, cell)
            except ValidationError as exc:
                errors.append(f"{definition.label}: {' '.join(exc.messages)}")
        elif target == "full_name":
            first, _, last = cell.rpartition(" ")
            fields.setdefault("first_name", first or last)
            fields.setdefault("last_name", last if first else "")
        elif target == "tags":
            fields["tags"] = [t for t in _TAG_SPLIT.split(cell) if t.strip()]
        elif target == "lifecycle_stage":
            fields["lifecycle_stage"] = _lifecycle(cell)
        elif target == "owner":
            owner = _user(ctx, cell)
            if owner is None:
                errors.append(f"owner: no user {cell[:60]!r}")
            else:
                fields["owner"] = owner
        elif target == "company":
            company_text = cell
        else:
            fields[target] = cell
    if errors:
        raise ValidationError(errors)
    return _Parsed(
        fields=fields, custom=custom, email=normalize_email(fields.get("email")), company_text=company_text
    )


def _lifecycle(cell: str) -> str:
    text = cell.strip().lower()
    for value, label in LifecycleStage.choices:
        if text in (value, label.lower()):
            return value
    return cell  # the service refuses it with the list of stages


def _user(ctx: _Context, cell: str) -> AbstractBaseUser | None:
    key = cell.strip().lower()
    if key not in ctx.users:
        ctx.users[key] = (
            get_user_model()
            .objects.filter(is_active=True)
            .filter(Q(username__iexact=key) | Q(email__iexact=key))
            .order_by("pk")
            .first()
        )
    return ctx.users[key]


def _looks_like_domain(text: str) -> bool:
    return "." in text and " " not in text.strip()


def _company_key(text: str) -> str:
    if _looks_like_domain(text):
        try:
            return "d:" + (clean_domain(text) or "")
        except ValidationError:
            pass
    return "n:" + text.strip().lower()


def _company(ctx: _Context, text: str, *, create: bool) -> int | None:
    """The id of the company named (or with the domain) `text`; created when allowed."""
    key = _company_key(text)
    if ctx.companies.get(key) is None:
        kind, value = key.split(":", 1)
        query = (
            Company.objects.filter(domain=value)
            if kind == "d"
            else Company.objects.filter(name__iexact=value)
        )
        ctx.companies[key] = query.order_by("pk").values_list("pk", flat=True).first()
        if ctx.companies[key] is None and create:
            fields = {"domain": value, "name": value} if kind == "d" else {"name": text.strip()[:200]}
            company = records.company_create(actor=None, owner=ctx.actor, **fields)
            ctx.companies[key] = company.pk
    return ctx.companies[key]


def _plan(ctx: _Context, batch: list[tuple[int, list[str]]], *, write: bool) -> list[RowResult]:
    """Decide and validate each row of a batch against the database as it is now.

    With write=False (the preview) nothing is created, not even companies. Returns one result per
    row; contacts to create have no pk yet, contacts to update carry `_import_before`.
    """
    results = [RowResult(row_number=n, values=values) for n, values in batch]
    parsed: dict[int, _Parsed] = {}
    for result in results:
        if not any(cell.strip() for cell in result.values):
            result.action = "blank"
            continue
        try:
            parsed[result.row_number] = _parse(ctx, result.values)
        except ValidationError as exc:
            result.action, result.reason = "error", "; ".join(exc.messages)
    if ctx.job.entity == "company":
        _plan_companies(ctx, results, parsed, write=write)
        return results
    emails = {p.email for p in parsed.values() if p.email}
    existing: dict[str, Contact] = {}
    if emails:
        query = (
            Contact.objects.alias(email_lower=Lower("email"))
            .filter(email_lower__in=emails, merged_into__isnull=True)
            .order_by("pk")
        )
        if write:
            query = lock_rows(query)  # the rows we may update
        existing = {c.email.lower(): c for c in query}
    domains = {email_domain(p.email) for p in parsed.values() if p.email and not p.company_text} - {None}
    by_domain = (
        dict(Company.objects.filter(domain__in=domains).values_list("domain", "pk")) if domains else {}
    )
    pending: dict[str, Contact] = {}  # email -> contact created earlier in this batch
    for result in results:
        p = parsed.get(result.row_number)
        if p is None:
            continue
        try:
            _plan_row(ctx, result, p, existing, pending, by_domain, write=write)
        except ValidationError as exc:
            result.action, result.reason = "error", _reason(exc)
        except DomainError as exc:
            result.action, result.reason = "error", exc.message
    return results


def _reason(exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    return "; ".join(
        " ".join(msgs) if name == "__all__" else f"{name}: {' '.join(msgs)}"
        for name, msgs in exc.message_dict.items()
    )


def _snapshot(record: Contact | Company) -> dict[str, Any]:
    """Field values as the field history records them (related fields by id)."""
    names = records.CONTACT_FIELDS if isinstance(record, Contact) else records.COMPANY_FIELDS
    values = {}
    for name in names:
        model_field = record._meta.get_field(name)
        values[name] = getattr(record, model_field.attname if model_field.is_relation else name)
    return values


def _update_planned(
    result: RowResult, target: Contact | Company, *, custom: dict[str, Any], prepare: Callable[[], list[str]]
) -> None:
    """Plan the update of an existing record: snapshot it for the field history, let `prepare`
    (records.contact_prepare / company_prepare) apply the row's columns, then merge the row's
    custom values over the stored ones (an import adds custom values; it never clears one)."""
    before = getattr(target, "_import_before", None)
    if before is None and target.pk is not None:
        before = _snapshot(target)
    changed = prepare()
    if custom:
        merged = {**target.custom_fields, **custom}
        if merged != target.custom_fields:
            target.custom_fields = merged
            changed.append("custom_fields")
    _mark_update(result, target, before, changed)


def _mark_update(
    result: RowResult, target: Contact | Company, before: dict | None, changed: list[str]
) -> None:
    if target.pk is not None:  # an existing row; a row created earlier in the batch is inserted as is
        target._import_before = before
        target._import_changed = set(getattr(target, "_import_changed", set())) | set(changed)
    result.action, result.record = "update", target
    if not changed:
        result.reason = "no changes"


def _plan_row(
    ctx: _Context,
    result: RowResult,
    p: _Parsed,
    existing: dict[str, Contact],
    pending: dict[str, Contact],
    by_domain: dict[str, int],
    *,
    write: bool,
) -> None:
    fields = dict(p.fields)
    if p.company_text:
        company_id = _company(ctx, p.company_text, create=write and ctx.job.create_companies)
        if company_id is None:
            if not ctx.job.create_companies:
                raise ValidationError(
                    {
                        "company": [
                            f"No company {p.company_text[:60]!r}; tick “create missing companies” to add it."
                        ]
                    }
                )
            fields["company"] = Company(name=p.company_text)  # preview: it would be created
            result.reason = f"creates the company {p.company_text[:60]!r}"
        else:
            fields["company"] = Company(pk=company_id, name=p.company_text)
    target = existing.get(p.email) if p.email else None
    target = target or (pending.get(p.email) if p.email else None)
    if target is not None:
        if ctx.job.dedupe == DedupeMode.SKIP:
            result.action, result.reason = "skip", "a contact with this email exists"
            return
        if ctx.actor is not None and not permissions.can_change(ctx.actor, target):
            raise ValidationError("The contact with this email belongs to another owner.")
        fields.pop("email", None)
        if "tags" in fields:  # an import adds tags; it does not take any away
            fields["tags"] = [*target.tags, *fields["tags"]]
        prepare = functools.partial(records.contact_prepare, contact=target, fields=fields)
        _update_planned(result, target, custom=p.custom, prepare=prepare)
        return
    contact = Contact(custom_fields=p.custom)
    fields.setdefault("owner", ctx.actor)
    records.contact_prepare(contact=contact, fields=fields)
    # As contact_create does: an email at a company's domain joins that company.
    if (
        contact.email
        and "company" not in fields
        and (company_id := by_domain.get(email_domain(contact.email)))
    ):
        contact.company_id = company_id
    result.action, result.record = "create", contact
    if p.email:
        pending[p.email] = contact


def _plan_companies(
    ctx: _Context, results: list[RowResult], parsed: dict[int, _Parsed], *, write: bool
) -> None:
    """Companies are the same record when their domain matches, or, for a row without a domain,
    their name (case-insensitively)."""
    keys: dict[int, tuple[str, str]] = {}
    for result in results:
        p = parsed.get(result.row_number)
        if p is None:
            continue
        try:
            domain = clean_domain(p.fields.get("domain"))
        except ValidationError as exc:
            result.action, result.reason = "error", f"domain: {' '.join(exc.messages)}"
            continue
        if domain:
            p.fields["domain"] = domain
            keys[result.row_number] = ("d", domain)
        elif name := (p.fields.get("name") or "").strip():
            keys[result.row_number] = ("n", name.lower())
        else:
            result.action, result.reason = "error", "A company needs a name or a domain."
    domains = {value for kind, value in keys.values() if kind == "d"}
    names = {value for kind, value in keys.values() if kind == "n"}
    existing: dict[tuple[str, str], Company] = {}
    if keys:
        query = (
            Company.objects.alias(name_lower=Lower("name"))
            .filter(Q(domain__in=domains) | Q(name_lower__in=names))
            .order_by("pk")
        )
        if write:
            query = lock_rows(query)
        for company in query:
            if company.domain in domains:
                existing.setdefault(("d", company.domain), company)
            if company.name.lower() in names:
                existing.setdefault(("n", company.name.lower()), company)
    pending: dict[tuple[str, str], Company] = {}
    for result in results:
        key = keys.get(result.row_number)
        if key is None:
            continue
        try:
            _plan_company_row(ctx, result, parsed[result.row_number], key, existing, pending)
        except ValidationError as exc:
            result.action, result.reason = "error", _reason(exc)
        except DomainError as exc:
            result.action, result.reason = "error", exc.message


def _plan_company_row(
    ctx: _Context,
    result: RowResult,
    p: _Parsed,
    key: tuple[str, str],
    existing: dict[tuple[str, str], Company],
    pending: dict[tuple[str, str], Company],
) -> None:
    fields = dict(p.fields)
    target = existing.get(key) or pending.get(key)
    if target is not None:
        which = "domain" if key[0] == "d" else "name"
        if ctx.job.dedupe == DedupeMode.SKIP:
            result.action, result.reason = "skip", f"a company with this {which} exists"
            return
        if ctx.actor is not None and not permissions.can_change(ctx.actor, target):
            raise ValidationError(f"The company with this {which} belongs to another owner.")
        if key[0] == "n":
            fields.pop("name", None)  # it matched; only its case could differ
        prepare = functools.partial(records.company_prepare, company=target, fields=fields)
        _update_planned(result, target, custom=p.custom, prepare=prepare)
        return
    company = Company(custom_fields=p.custom)
    fields.setdefault("owner", ctx.actor)
    fields.setdefault("name", fields.get("domain") or "")
    records.company_prepare(company=company, fields=fields)
    result.action, result.record = "create", company
    pending[key] = company


def preview(*, job: ImportJob, mapping: dict[str, str], limit: int = PREVIEW_ROWS) -> list[RowResult]:
    """The first rows as the run would treat them, with the same validation; writes nothing."""
    job.mapping = clean_mapping(job=job, mapping=mapping)
    ctx = _Context.for_job(job)
    with open_rows(job) as (_header, rows):
        batch = list(enumerate(itertools.islice(rows, limit), start=1))
    return _plan(ctx, batch, write=False)


# --- the worker's run


def _write(ctx: _Context, batch: list[tuple[int, list[str]]]) -> list[RowResult]:
    """Plan and write one batch in a savepoint; a batch refused by the database (a concurrent
    writer took an email) is retried row by row, so one bad row does not sink the others."""
    try:
        with transaction.atomic():
            results = _plan(ctx, batch, write=True)
            now = timezone.now()
            model = Contact if ctx.job.entity == "contact" else Company
            creates = [r.record for r in results if r.action == "create"]
            if model is Contact:
                _copy_insert(creates)
                changes.contacts_changed(contact_ids=[c.pk for c in creates])
            else:  # companies are few; their unique domains and names deserve no special path
                Company.objects.bulk_create(creates)
            updates: dict[int, Contact] = {}
            for r in results:
                if r.action == "update" and getattr(r.record, "_import_changed", None):
                    updates[r.record.pk] = r.record
            if updates:
                names = sorted(set().union(*(c._import_changed for c in updates.values())))
                for contact in updates.values():
                    contact.updated_at = now
                _bulk_update(model, list(updates.values()), [*names, "updated_at"])
                records.field_changes_record_many(
                    entity=ctx.job.entity,
                    changes=[(c, c._import_before, sorted(c._import_changed)) for c in updates.values()],
                    actor=ctx.actor,
                )
            return results
    except IntegrityError:
        ctx.companies.clear()  # companies created in the rolled-back savepoint are gone
        if len(batch) == 1:
            return [
                RowResult(
                    row_number=batch[0][0],
                    values=batch[0][1],
                    action="error",
                    reason="refused by the database: another record took this email or domain meanwhile",
                )
            ]
        return [result for row in batch for result in _write(ctx, [row])]


def _copy_insert(contacts: list[Contact]) -> None:
    """Insert new contacts with COPY, measured at 2x bulk_create's multi-row INSERT here (which
    spends its time building and parsing one huge parametrised statement). COPY returns no ids,
    so they are taken from the table's sequence first and written with the rows: the contacts
    come back with their pk (segments are told about them, contacts.services.changes)."""
    if not contacts:
        return
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(contacts)],
        )
        for contact, (pk,) in zip(contacts, cursor.fetchall(), strict=True):
            contact.pk = pk
    fields = list(Contact._meta.concrete_fields)
    quote = connection.ops.quote_name
    sql = f"COPY {quote(Contact._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for contact in contacts:
            # pre_save fills created_at/updated_at as save() and bulk_create would.
            copy.write_row([f.get_db_prep_save(f.pre_save(contact, add=True), connection) for f in fields])


def _bulk_update(model: type[Contact | Company], records: list[Contact | Company], names: list[str]) -> None:
    """UPDATE ... FROM (VALUES ...): one statement for the batch. Django's bulk_update builds a
    CASE WHEN per row and column, which took 8.4 of the 13 s of a 5,000-row update run."""
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    casts = ", ".join(["%s::bigint", *(f"%s::{f.db_type(connection)}" for f in fields)])
    rows, params = [], []
    for record in records:
        rows.append(f"({casts})")
        params.append(record.pk)
        params.extend(f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields)
    columns = ", ".join(quote(f.column) for f in fields)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS c SET {assignments} "
        f"FROM (VALUES {', '.join(rows)}) AS v(id, {columns}) WHERE c.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)  # identifiers come from the model; every value is a parameter


def import_run(*, job_id: int, run_seconds: float = RUN_SECONDS) -> bool:
    """Import the rows after the last committed batch. True when time ran out with rows left
    (the caller queues a continuation). Safe to run twice: a run that finds the job's progress
    moved past its own offset stops."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return False
    if job.status == ImportStatus.QUEUED:
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.QUEUED).update(
            status=ImportStatus.RUNNING, started_at=timezone.now()
        )
    ctx = _Context.for_job(job)
    started = time.monotonic()
    offset = job.processed_rows
    with open_rows(job) as (_header, rows):
        numbered = itertools.islice(enumerate(rows, start=1), offset, None)
        while batch := list(itertools.islice(numbered, BATCH_SIZE)):
            with transaction.atomic():
                locked = ImportJob.objects.select_for_update().get(pk=job.pk)
                if locked.processed_rows != offset or locked.status != ImportStatus.RUNNING:
                    return False  # another run got ahead of this one, or the job was stopped
                results = _write(ctx, batch)
                counts = {
                    a: sum(1 for r in results if r.action == a) for a in ("create", "update", "skip", "error")
                }
                ImportRowError.objects.bulk_create(
                    ImportRowError(
                        job=job,
                        row_number=r.row_number,
                        reason=storable(r.reason[:2000]),
                        values=[storable(v) for v in r.values],  # the rejected cells, as sent
                    )
                    for r in results
                    if r.action == "error"
                )
                ImportJob.objects.filter(pk=job.pk).update(
                    processed_rows=F("processed_rows") + len(batch),
                    created_count=F("created_count") + counts["create"],
                    updated_count=F("updated_count") + counts["update"],
                    skipped_count=F("skipped_count") + counts["skip"],
                    error_count=F("error_count") + counts["error"],
                    heartbeat_at=timezone.now(),
                )
            offset += len(batch)
            if time.monotonic() - started > run_seconds:
                return True
    done = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
        status=ImportStatus.DONE, finished_at=timezone.now(), total_rows=offset
    )
    if done:
        # The rows are in the CRM and the rejected ones in ImportRowError: the upload, personal
        # data in a file nobody reads again, goes.
        transaction.on_commit(lambda: job.file.delete(save=False))
    return False


# A job queued or running with no committed batch for this long is stuck (a lost message or a
# killed worker); a batch takes seconds, so this is many times the slowest one.
STALE_AFTER = timedelta(minutes=5)
DRAFT_TTL = timedelta(days=1)


def import_sweep() -> list[int]:
    """Ids of stuck jobs to queue again (safe: a duplicate run stops at the first batch), after
    deleting drafts nobody finished mapping within a day, with their files."""
    now = timezone.now()
    for draft in ImportJob.objects.filter(status=ImportStatus.DRAFT, created_at__lt=now - DRAFT_TTL):
        draft.file.delete(save=False)
        draft.delete()
    stale = ImportJob.objects.filter(
        status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING], heartbeat_at__lt=now - STALE_AFTER
    )
    ids = list(stale.values_list("pk", flat=True))
    ImportJob.objects.filter(pk__in=ids).update(heartbeat_at=now)
    return ids


def import_fail(*, job_id: int, reason: str) -> None:
    ImportJob.objects.filter(pk=job_id, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).update(
        status=ImportStatus.FAILED, failure=reason[:2000], finished_at=timezone.now()
    )


def error_rows(*, job: ImportJob) -> tuple[list[str], Iterator[list[str]]]:
    """The rejected rows as a CSV header and rows: original columns plus row number and reason,
    read in chunks (core.csv.stream_csv sends them as they come)."""

    def rows() -> Iterator[list[str]]:
        for error in ImportRowError.objects.filter(job=job).order_by("row_number").iterator(chunk_size=2000):
            yield [str(error.row_number), error.reason, *error.values]

    return ["row", "reason", *job.headers], rows()
