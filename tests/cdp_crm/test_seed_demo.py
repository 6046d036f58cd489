import io

import pytest
from django.core.management import call_command

from contacts.models import Company, Contact
from events.models import Source
from pipeline.models import Deal, DealStatus, Pipeline, Stage, Task
from tests.factories import logs_in


def _snapshot():
    return {
        "contacts": sorted(
            Contact.objects.values_list("email", "lifecycle_stage", "company__domain", "owner__username")
        ),
        "deals": sorted(
            Deal.objects.values_list("title", "amount", "status", "stage__name", "owner__username")
        ),
        "companies": Company.objects.count(),
        "stages": Stage.objects.count(),
        "tasks": sorted(Task.objects.values_list("deal__title", "title")),
    }


@pytest.mark.django_db
def test_seed_demo_is_realistic_deterministic_and_idempotent():
    call_command("seed_demo", "--contacts", "60", stdout=io.StringIO())
    first = _snapshot()
    assert len(first["contacts"]) == 60 and first["companies"] == 25
    assert Pipeline.objects.count() == 2 and first["stages"] == 8
    assert len(first["deals"]) == 75
    assert Source.objects.filter(name="Website").count() == 1
    # most open deals have a next step, so the board's badges are not all "none scheduled"
    open_deals = Deal.objects.filter(status=DealStatus.OPEN)
    assert open_deals.filter(next_activity_at__isnull=False).count() > open_deals.count() // 2
    assert not open_deals.filter(stage_entered_at__isnull=True).exists()
    # every contact's email domain is its company's
    assert all(email.endswith("@" + domain) for email, _, domain, _ in first["contacts"])

    out = io.StringIO()
    call_command("seed_demo", "--contacts", "60", stdout=out)
    assert "0 new contacts, 0 new deals" in out.getvalue()
    assert _snapshot() == first

    # the same seed on an empty database gives the same data
    Deal.objects.all().delete()
    Contact.objects.all().delete()
    call_command("seed_demo", "--contacts", "60", stdout=io.StringIO())
    assert _snapshot() == first


@pytest.mark.django_db
def test_demo_setup_follows_the_database_not_a_marker_file(tmp_path, client):
    from django.contrib.auth import get_user_model

    password_file = tmp_path / "demo-password"
    # an empty database: demo data and a working admin login
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    password = password_file.read_text().strip()
    assert Contact.objects.count() == 200
    assert logs_in(client, "admin", password)
    # running again changes nothing
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    assert Contact.objects.count() == 200 and get_user_model().objects.filter(username="admin").count() == 1
    # a database with data but no admin (another DATABASE_URL) gets the admin, not more data
    get_user_model().objects.filter(username="admin").delete()
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    assert Contact.objects.count() == 200
    assert logs_in(client, "admin", password)
