import os

import pytest

from contacts.models import Contact, ImportJob
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SCREENSHOT_DIR")  # set to look at the pages as a person would


def log_in(page, live_server, username):
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_import_a_csv_watching_the_progress_bar(page, live_server, celery_worker):
    # given a rep and a file with a header the app recognises, one bad row and one existing person
    make_user(role="Sales", username="rita")
    make_contact(email="grace@x.com", first_name="Grace")
    csv = "E-mail,First Name,Last Name,Job\nada@x.com,Ada,Lovelace,CTO\nnope,Bad,Row,\n"
    csv += "grace@x.com,,Hopper,Admiral\n"
    log_in(page, live_server, "rita")
    try:
        # when she uploads it
        page.goto(live_server.url + "/contacts/import/")
        page.set_input_files(
            "input[type=file]", {"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}
        )
        page.click("text=Upload and map columns")
        # then the columns are guessed and the preview flags the bad row
        assert page.locator("#col_0").input_value() == "email"
        assert page.locator("#col_3").input_value() == ""
        assert "Enter a valid email address." in page.locator("tr[data-row='2']").inner_text()
        # when she maps the job column, the preview follows without a reload
        page.select_option("#col_3", "title")
        wait_until(page, "document.querySelector('#import-preview').innerText.includes('updates #')")
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/import-mapping.png", full_page=True)
        page.click("button[name=start]")
        # then the progress block polls until the import is done
        page.wait_for_selector("[data-testid=import-state]:text('Done')", timeout=30_000)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/import-done.png", full_page=True)
        assert page.inner_text("[data-testid=created]") == "1"
        assert page.inner_text("[data-testid=updated]") == "1"
        assert page.inner_text("[data-testid=rejected]") == "1"
        assert page.locator("text=Download the rejected rows").is_visible()
        assert Contact.objects.get(email="grace@x.com").last_name == "Hopper"
        assert Contact.objects.get(email="ada@x.com").title == "CTO"
    finally:
        for job in ImportJob.objects.all():
            job.file.delete(save=False)
