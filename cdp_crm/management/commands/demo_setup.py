"""First-run setup for `make run`: demo data and an admin login, decided by what the database
holds (not by a marker file), so pointing `make run` at another database sets that one up too."""

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts import services as account_services
from accounts.models import Role
from contacts.models import Contact


class Command(BaseCommand):
    help = "Load demo data into an empty database and make sure the demo admin can log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True, help="where the demo password is kept")

    def handle(self, *args, username: str, password_file: str, **options):
        path = Path(password_file)
        if not path.exists():
            path.write_text(secrets.token_urlsafe(9) + "\n")
            path.chmod(0o600)
        password = path.read_text().strip()
        if not Contact.objects.exists():
            self.stdout.write("first run: loading demo data")
            call_command("seed_demo", stdout=self.stdout)
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = account_services.user_create(username=username, password=password, role=Role.ADMIN)
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
            self.stdout.write(f"created the demo login {username}")
        elif not user.check_password(password):
            self.stdout.write(
                f"note: {username} already exists with another password; reset it with "
                f"`manage.py create_user --username {username} --password ... --role Admin`"
            )
