import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.models import Contact, ImportJob, ImportRowError, ImportStatus
from tests.factories import make_contact, make_user


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def csv_file(text: str, name="people.csv"):
    return SimpleUploadedFile(name, text.encode(), "text/csv")


@pytest.mark.django_db
def test_upload_then_mapping_page_guesses_columns_and_previews(sales_client, media):
    # when a rep uploads a file
    response = sales_client.post(
        reverse("contacts_tools:import_upload"),
        {"file": csv_file("Email Address,First Name,Company,Notes\nada@x.com,Ada,,\nnot-an-email,Bob,,\n")},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "contacts_tools:import_mapping", args=[job.pk]
    )
    # then the mapping page preselects the guessed fields and previews the rows with their errors
    html = sales_client.get(response["Location"]).content.decode()
    assert '<option value="email" selected>' in html and '<option value="first_name" selected>' in html
    assert 'data-row="2"' in html and "Enter a valid email address." in html
    assert "Ada" in html and not Contact.objects.exists()


@pytest.mark.django_db
def test_htmx_preview_returns_only_the_partial_for_the_edited_mapping(sales_client, media):
    sales_client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("a,b\nada@x.com,Ada\n")})
    job = ImportJob.objects.get()
    url = reverse("contacts_tools:import_preview", args=[job.pk])
    response = sales_client.post(
        url, {"col_0": "email", "col_1": "first_name"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="import-preview">') and "<html" not in html
    assert "ada@x.com" in html and "new" in html
    refused = sales_client.post(url, {"col_0": "phone"}, headers={"HX-Request": "true"}).content.decode()
    assert "Map at least an email or a name column." in refused


@pytest.mark.django_db
def test_upload_errors_are_shown_in_place(sales_client, media):
    response = sales_client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("email\n")})
    assert response.status_code == 400
    assert "no data rows" in response.content.decode()


@pytest.mark.django_db
def test_starting_with_a_duplicate_target_is_refused_and_nothing_queued(sales_client, media):
    sales_client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("a,b\nx@x.com,y@y.com\n")})
    job = ImportJob.objects.get()
    response = sales_client.post(
        reverse("contacts_tools:import_mapping", args=[job.pk]), {"col_0": "email", "col_1": "email"}
    )
    assert response.status_code == 400 and "both map to the same field" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.DRAFT


@pytest.mark.django_db
def test_marketing_gets_403_on_every_import_page(client, marketing_user, sales_user, media):
    client.force_login(sales_user)
    client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("email\na@x.com\n")})
    job = ImportJob.objects.get()
    client.force_login(marketing_user)
    assert client.get(reverse("contacts_tools:import_upload")).status_code == 403
    assert (
        client.post(
            reverse("contacts_tools:import_upload"), {"file": csv_file("email\nb@x.com\n")}
        ).status_code
        == 403
    )
    for name in ("import_mapping", "import_progress", "import_errors"):
        assert client.get(reverse(f"contacts_tools:{name}", args=[job.pk])).status_code == 403
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_another_reps_import_is_not_found_but_an_admin_sees_it(client, sales_user, admin_user, media):
    client.force_login(sales_user)
    client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("email\na@x.com\n")})
    job = ImportJob.objects.get()
    client.force_login(make_user(role="Sales"))
    assert client.get(reverse("contacts_tools:import_progress", args=[job.pk])).status_code == 404
    client.force_login(admin_user)
    assert (
        "people.csv" in client.get(reverse("contacts_tools:import_progress", args=[job.pk])).content.decode()
    )


@pytest.mark.django_db
def test_progress_partial_polls_until_done_then_offers_the_rejected_rows(sales_client, sales_user, media):
    job = ImportJob.objects.create(
        original_name="p.csv",
        encoding="utf-8",
        headers=["email"],
        created_by=sales_user,
        status=ImportStatus.RUNNING,
        total_rows=4,
        processed_rows=1,
    )
    url = reverse("contacts_tools:import_progress", args=[job.pk])
    running = sales_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in running and "25%" in running and "<html" not in running
    ImportRowError.objects.create(job=job, row_number=3, reason="email: bad", values=["=cmd()"])
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.DONE, processed_rows=4, created_count=3, error_count=1
    )
    done = sales_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert (
        "every 1s" not in done
        and "100%" in done
        and reverse("contacts_tools:import_errors", args=[job.pk]) in done
    )
    full = sales_client.get(url).content.decode()
    assert "<html" in full and 'data-testid="created">3<' in full
    rejected = sales_client.get(reverse("contacts_tools:import_errors", args=[job.pk]))
    assert rejected["Content-Disposition"].startswith("attachment")
    # a cell that a spreadsheet would run as a formula is neutralised
    assert b"".join(rejected.streaming_content).decode().splitlines() == [
        "row,reason,email",
        "3,email: bad,'=cmd()",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_imports_a_csv_end_to_end(client, celery_worker):
    # given a rep, an existing contact and a file of 2,500 rows (3 batches) with one bad row
    rep = make_user(role="Sales", username="importer")
    make_contact(email="p7@x.com", first_name="Seven", owner=rep)
    rows = "".join(f"p{i}@x.com,Person {i},Acme\n" for i in range(2500)).replace("p13@x.com", "bad-13")
    client.force_login(rep)
    client.post(reverse("contacts_tools:import_upload"), {"file": csv_file("E-mail,Name,Company\n" + rows)})
    job = ImportJob.objects.get()
    try:
        # when the rep starts it with "create missing companies"
        response = client.post(
            reverse("contacts_tools:import_mapping", args=[job.pk]),
            {
                "col_0": "email",
                "col_1": "full_name",
                "col_2": "company",
                "dedupe": "update",
                "create_companies": "on",
            },
        )
        assert response["Location"] == reverse("contacts_tools:import_progress", args=[job.pk])
        deadline = time.monotonic() + 60
        while not job.is_finished and time.monotonic() < deadline:
            time.sleep(0.2)
            job.refresh_from_db()
        # then the worker imported every row, in batches, and recorded the bad one
        assert job.status == ImportStatus.DONE, celery_worker.output()[-3000:]
        assert (job.processed_rows, job.created_count, job.updated_count, job.error_count) == (
            2500,
            2498,
            1,
            1,
        )
        assert Contact.objects.filter(company__name="Acme", owner=rep).count() == 2499
        assert Contact.objects.get(email="p7@x.com").last_name == "7"
        assert ImportRowError.objects.get(job=job).row_number == 14
        page = client.get(reverse("contacts_tools:import_progress", args=[job.pk])).content.decode()
        assert "Done" in page and "Download the rejected rows" in page
    finally:
        job.file.delete(save=False)


@pytest.mark.django_db
def test_companies_are_imported_through_the_same_pages(sales_client, media):
    response = sales_client.post(
        reverse("contacts_tools:import_upload"),
        {"entity": "company", "file": csv_file("Organization,Website\nAcme,acme.com\n")},
    )
    job = ImportJob.objects.get()
    assert job.entity == "company" and job.mapping == {"0": "name", "1": "domain"}
    html = sales_client.get(response["Location"]).content.decode()
    assert "When a company with the same domain" in html and "create_companies" not in html
    assert "Acme" in html and "acme.com" in html


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_before_it_is_read(sales_client, media):
    response = sales_client.post(
        reverse("contacts_tools:import_upload"),
        {"file": csv_file("email\na@x.com\n")},
        CONTENT_LENGTH="999999999",
    )
    assert response.status_code == 413 and b"larger than 50 MB" in response.content
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_recent_imports_list_has_a_fixed_query_count(admin_client, admin_user, django_assert_max_num_queries):
    for i in range(8):
        ImportJob.objects.create(
            original_name=f"file{i}.csv",
            encoding="utf-8",
            headers=["email"],
            created_by=make_user(role="Sales"),
        )
    with django_assert_max_num_queries(6):
        html = admin_client.get(reverse("contacts_tools:import_upload")).content.decode()
    assert html.count(".csv</a>") == 8
