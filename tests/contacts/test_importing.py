from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from contacts.models import (
    Company,
    Contact,
    CustomField,
    FieldChange,
    ImportJob,
    ImportRowError,
    ImportStatus,
)
from contacts.services import importing
from core.csv import csv_lines
from core.errors import Forbidden
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def upload(user, text: str | bytes, name="people.csv"):
    data = text.encode() if isinstance(text, str) else text
    return importing.import_upload(actor=user, uploaded=SimpleUploadedFile(name, data, "text/csv"))


def run(job, **options):
    options.setdefault("dedupe", "update")
    options.setdefault("create_companies", False)
    importing.import_start(
        job=job, actor=job.created_by, mapping=options.pop("mapping", job.mapping), **options
    )
    assert importing.import_run(job_id=job.pk) is False
    job.refresh_from_db()
    return job


def test_headers_are_guessed_and_rows_counted(sales_user):
    CustomField.objects.create(entity="contact", key="plan", label="Plan tier", field_type="text")
    job = upload(sales_user, "E-mail,First Name,Surname,Company,Plan Tier,Notes\na@x.com,A,B,Acme,Pro,hi\n")
    assert job.headers == ["E-mail", "First Name", "Surname", "Company", "Plan Tier", "Notes"]
    assert job.mapping == {
        "0": "email",
        "1": "first_name",
        "2": "last_name",
        "3": "company",
        "4": "custom:plan",
    }
    assert (job.total_rows, job.encoding, job.status) == (1, "utf-8", ImportStatus.DRAFT)


@pytest.mark.parametrize(
    ("data", "encoding", "name"),
    [
        ("\ufeffEmail Address;Name\nzoe@x.com;Zoë Ünal\n".encode(), "utf-8-sig", "Zoë"),
        ("Email Address,Name\nzoe@x.com,Zoë Ünal\n".encode("latin-1"), "latin-1", "Zoë"),
    ],
)
def test_encodings_and_delimiters_are_detected(sales_user, data, encoding, name):
    job = upload(sales_user, data)
    assert job.encoding == encoding
    job = run(job)
    contact = Contact.objects.get(email="zoe@x.com")
    assert (contact.first_name, contact.last_name) == (name, "Ünal")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"email\n", "no data rows"), (b"a" * (importing.MAX_UPLOAD_BYTES + 1), "larger than")],
)
def test_unusable_uploads_are_refused(sales_user, data, message):
    with pytest.raises(importing.ImportRefused, match=message):
        upload(sales_user, data)
    assert not ImportJob.objects.exists()


def test_marketing_may_not_import(marketing_user):
    with pytest.raises(Forbidden):
        upload(marketing_user, "email\na@x.com\n")


def test_preview_shows_each_row_as_the_run_would_treat_it(sales_user):
    # given an existing contact and a file with a new, an existing and two bad rows
    make_contact(email="old@x.com", first_name="Old")
    job = upload(
        sales_user,
        "email,first name,lifecycle stage\n"
        "new@x.com,New,Lead\nOLD@x.com,Older,\nbad-email,Bad,\nz@x.com,Z,sleeping\n",
    )
    # when previewed
    rows = importing.preview(job=job, mapping=job.mapping)
    # then the actions and reasons are those of the services' validation; nothing was written
    assert [(r.row_number, r.action) for r in rows] == [
        (1, "create"),
        (2, "update"),
        (3, "error"),
        (4, "error"),
    ]
    assert "valid email" in rows[2].reason
    assert "lifecycle_stage" in rows[3].reason and "sleeping" in rows[3].reason
    assert Contact.objects.count() == 1 and Contact.objects.get().first_name == "Old"


def test_run_creates_updates_and_rejects_with_reasons(sales_user):
    # given a contact the importer may change and one owned by another rep
    mine = make_contact(email="mine@x.com", first_name="Mine", tags=["vip"], owner=sales_user)
    theirs = make_contact(email="theirs@x.com", first_name="Theirs", owner=make_user(role="Sales"))
    score = CustomField.objects.create(entity="contact", key="score", label="Score", field_type="number")
    job = upload(
        sales_user,
        "Email,First Name,Last Name,Tags,Score\n"
        'new@x.com,New,Person,"a, b",10\n'
        "MINE@x.com,,Updated,new,\n"
        "theirs@x.com,Hijack,,,\n"
        "nope,Bad,,,\n"
        ",,,,\n"
        "x@x.com,X,,,lots\n",
    )
    assert job.mapping["4"] == f"custom:{score.key}"
    # when it runs with "update existing"
    job = run(job)
    # then the counts add up and each rejected row has its reason
    assert (job.status, job.processed_rows, job.created_count, job.updated_count, job.error_count) == (
        ImportStatus.DONE,
        6,
        1,
        1,
        3,
    )
    new = Contact.objects.get(email="new@x.com")
    assert (new.first_name, new.last_name, new.tags, new.custom_fields, new.owner_id) == (
        "New",
        "Person",
        ["a", "b"],
        {"score": 10},
        sales_user.pk,
    )
    mine.refresh_from_db()
    # blank cells do not clear, tags are added to
    assert (mine.first_name, mine.last_name, mine.tags) == ("Mine", "Updated", ["new", "vip"])
    assert FieldChange.objects.filter(object_id=mine.pk, field="last_name", new_value="Updated").exists()
    theirs.refresh_from_db()
    assert theirs.first_name == "Theirs"
    errors = {e.row_number: e.reason for e in ImportRowError.objects.filter(job=job)}
    assert set(errors) == {3, 4, 6}
    assert "another owner" in errors[3] and "email" in errors[4] and "lots" in errors[6]
    csv_text = "".join(csv_lines(*importing.error_rows(job=job)))
    assert csv_text.splitlines()[0] == "row,reason,Email,First Name,Last Name,Tags,Score"
    assert csv_text.splitlines()[2].startswith("4,") and ",nope,Bad," in csv_text


def test_skip_mode_leaves_existing_contacts_alone(sales_user):
    make_contact(email="old@x.com", first_name="Old")
    job = run(upload(sales_user, "email,first name\nold@x.com,New\nold@x.com,Newer\n"), dedupe="skip")
    assert (job.created_count, job.updated_count, job.skipped_count) == (0, 0, 2)
    assert Contact.objects.get().first_name == "Old"


def test_a_repeated_email_in_the_file_is_one_contact(sales_user):
    job = run(upload(sales_user, "email,first name,title\nann@x.com,Ann,\nANN@x.com,,CEO\n"))
    contact = Contact.objects.get()
    assert (contact.first_name, contact.title) == ("Ann", "CEO")
    assert (job.created_count, job.updated_count) == (1, 1)


def test_companies_link_by_name_or_domain_and_are_created_on_request(sales_user):
    acme = make_company(name="Acme Inc", domain="acme.com")
    globex = make_company(name="Globex")
    job = upload(
        sales_user,
        "email,company\na@x.com,acme inc\nb@x.com,https://www.acme.com/\nc@x.com,GLOBEX\nd@x.com,Initech\n"
        "e@acme.com,\n",
    )
    job = run(job)
    by_email = dict(Contact.objects.values_list("email", "company_id"))
    assert by_email == {"a@x.com": acme.pk, "b@x.com": acme.pk, "c@x.com": globex.pk, "e@acme.com": acme.pk}
    assert "Initech" in ImportRowError.objects.get(job=job).reason
    # when the missing company may be created, it is, once, owned by the importer
    job2 = run(upload(sales_user, "email,company\nd@x.com,Initech\nf@x.com,initech\n"), create_companies=True)
    initech = Company.objects.get(name="Initech")
    assert initech.owner_id == sales_user.pk
    assert set(Contact.objects.filter(company=initech).values_list("email", flat=True)) == {
        "d@x.com",
        "f@x.com",
    }
    assert job2.error_count == 0


def test_owner_column_assigns_by_username_or_email(admin_user):
    rep = make_user(role="Sales", username="rep", email="rep@corp.com")
    job = run(upload(admin_user, "email,owner\na@x.com,rep\nb@x.com,REP@corp.com\nc@x.com,ghost\nd@x.com,\n"))
    owners = dict(Contact.objects.values_list("email", "owner_id"))
    assert owners == {"a@x.com": rep.pk, "b@x.com": rep.pk, "d@x.com": admin_user.pk}
    assert "no user 'ghost'" in ImportRowError.objects.get(job=job).reason


def test_mapping_must_name_a_person_and_use_each_field_once(sales_user):
    job = upload(sales_user, "a,b\n1,2\n")
    with pytest.raises(importing.ImportRefused, match="email or a name"):
        importing.clean_mapping(job=job, mapping={"0": "phone"})
    with pytest.raises(importing.ImportRefused, match="same field"):
        importing.clean_mapping(job=job, mapping={"0": "email", "1": "email"})


def test_a_run_resumes_after_the_last_committed_batch(sales_user, monkeypatch):
    # given batches of 2 rows and a run that stops after the first batch
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    job = upload(sales_user, "email\n" + "".join(f"p{i}@x.com\n" for i in range(5)))
    importing.import_start(
        job=job, actor=sales_user, mapping=job.mapping, dedupe="update", create_companies=False
    )
    assert importing.import_run(job_id=job.pk, run_seconds=0) is True
    job.refresh_from_db()
    assert (job.processed_rows, Contact.objects.count(), job.status) == (2, 2, ImportStatus.RUNNING)
    # when the continuation runs (twice, as a redelivered task would)
    assert importing.import_run(job_id=job.pk) is False
    assert importing.import_run(job_id=job.pk) is False
    # then every row was imported exactly once
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, Contact.objects.count()) == (
        ImportStatus.DONE,
        5,
        5,
        5,
    )


def test_a_batch_the_database_refuses_is_retried_row_by_row(sales_user, monkeypatch):
    # given an insert that the database refuses once (as when another writer takes an email
    # between our check and our insert; here the clashing row rolls back with the batch)
    job = upload(sales_user, "email,first name\na@x.com,A\nb@x.com,B\nc@x.com,C\n")
    original = importing._copy_insert
    calls = []

    def racing_insert(contacts):
        if not calls:
            Contact.objects.create(email="b@x.com", first_name="Concurrent")
        calls.append(len(contacts))
        original(contacts)

    monkeypatch.setattr(importing, "_copy_insert", racing_insert)
    # when the import runs
    job = run(job)
    # then the refused batch was rolled back and redone row by row, losing nothing
    assert calls == [3, 1, 1, 1]
    assert dict(Contact.objects.values_list("email", "first_name")) == {
        "a@x.com": "A",
        "b@x.com": "B",
        "c@x.com": "C",
    }
    assert (job.created_count, job.updated_count, job.error_count) == (3, 0, 0)


def test_companies_import_dedupes_on_domain_then_name(sales_user, marketing_user):
    # given a company with a domain and one with a name only
    acme = make_company(name="Acme", domain="acme.com", owner=sales_user)
    make_company(name="Globex")
    score = CustomField.objects.create(
        entity="company", key="employees", label="Employees", field_type="number"
    )
    job = importing.import_upload(
        actor=sales_user,
        entity="company",
        uploaded=SimpleUploadedFile(
            "companies.csv",
            b"Company Name,Website,Industry,Employees\n"
            b"Acme Corp,https://www.ACME.com/about,Rockets,120\n"  # same domain: update
            b"globex,,Energy,\n"  # same name, no domain: update
            b"Initech,initech.com,Software,x\n"  # bad number
            b"Hooli,hooli.com,,\n"  # new
            b",,Nothing,\n",  # neither name nor domain
            "text/csv",
        ),
    )
    assert job.mapping == {"0": "name", "1": "domain", "2": "industry", "3": f"custom:{score.key}"}
    preview = importing.preview(job=job, mapping=job.mapping)
    assert [r.action for r in preview] == ["update", "update", "error", "create", "error"]
    job = run(job)
    assert (job.created_count, job.updated_count, job.error_count) == (1, 2, 2)
    acme.refresh_from_db()
    assert (acme.name, acme.industry, acme.custom_fields) == ("Acme Corp", "Rockets", {"employees": 120})
    assert Company.objects.get(name="Globex").industry == "Energy"
    hooli = Company.objects.get(domain="hooli.com")
    assert (hooli.name, hooli.owner_id) == ("Hooli", sales_user.pk)
    reasons = sorted(ImportRowError.objects.filter(job=job).values_list("row_number", "reason"))
    assert reasons[0][0] == 3 and "'x' is not a number" in reasons[0][1]
    assert reasons[1] == (5, "A company needs a name or a domain.")
    assert FieldChange.objects.filter(entity="company", object_id=acme.pk, field="industry").exists()
    with pytest.raises(Forbidden):
        importing.import_upload(
            actor=marketing_user, entity="company", uploaded=SimpleUploadedFile("c.csv", b"name\nX\n")
        )


def test_sweeper_requeues_stuck_jobs_and_drops_abandoned_drafts(sales_user):
    # given a job whose message was lost, a healthy one, and a draft abandoned two days ago
    stuck = upload(sales_user, "email\na@x.com\n")
    healthy = upload(sales_user, "email\nb@x.com\n")
    draft = upload(sales_user, "email\nc@x.com\n")
    long_ago = timezone.now() - timedelta(days=2)
    ImportJob.objects.filter(pk=stuck.pk).update(status=ImportStatus.QUEUED, heartbeat_at=long_ago)
    ImportJob.objects.filter(pk=healthy.pk).update(status=ImportStatus.RUNNING, heartbeat_at=timezone.now())
    ImportJob.objects.filter(pk=draft.pk).update(created_at=long_ago)
    draft_path = draft.file.path
    # when the sweeper runs, twice in a row
    first, second = importing.import_sweep(), importing.import_sweep()
    # then only the stuck job is queued again, once, and the draft is gone with its file
    assert (first, second) == ([stuck.pk], [])
    assert not ImportJob.objects.filter(pk=draft.pk).exists()
    assert not Path(draft_path).exists()


def test_a_list_export_imports_back_with_its_custom_columns(client, sales_user):
    # given a contact with a custom value, exported from the contact list
    CustomField.objects.create(entity="contact", key="plan", label="Plan tier", field_type="text")
    make_contact(email="ada@example.com", first_name="Ada", custom_fields={"plan": "Pro"})
    client.force_login(sales_user)
    exported = b"".join(client.get("/contacts/export.csv").streaming_content).decode()
    header = exported.splitlines()[0].split(",")
    assert "custom.plan" in header
    # when that file is uploaded for import, every column is recognised, the custom one included
    job = upload(sales_user, exported)
    assert job.mapping[str(header.index("custom.plan"))] == "custom:plan"
    assert job.mapping[str(header.index(next(h for h in header if h.lower() == "email")))] == "email"
