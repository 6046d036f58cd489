"""First-run setup for `make run`: demo data and an admin login, decided by what the database
holds (not by a marker file), so pointing `make run` at another database sets that one up too."""

import json
import secrets
from pathlib import Path

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts import services as account_services
from accounts.models import Role
from contacts.models import Contact
from workspace.management.commands.seed_demo import is_demo_database


class Command(BaseCommand):
    help = "Load demo data into an empty database and make sure the demo admin can log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True, help="where the demo password is kept")
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="in a demo database, give the existing login the kept password and lift its lockout "
            "(what `make run` does, so the password it prints always works)",
        )
        parser.add_argument(
            "--login-file", help="write {username, password, note} here: the login the launcher prints"
        )

    def handle(
        self,
        *args,
        username: str,
        password_file: str,
        reset_password: bool,
        login_file: str | None,
        **options,
    ):
        path = Path(password_file)
        if not path.exists():
            path.write_text(secrets.token_urlsafe(9) + "\n")
            path.chmod(0o600)
        password = path.read_text().strip()
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        created = user is None
        if created:
            # Before the demo data, so the demo's hot deals can be this login's (its bell rings).
            user = account_services.user_create(username=username, password=password, role=Role.ADMIN)
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        if not Contact.objects.exists():
            self.stdout.write("first run: loading demo data")
            call_command("seed_demo", "--login", username, stdout=self.stdout)
        note = ""
        if created:
            self.stdout.write(f"created the demo login {username}")
        elif not user.check_password(password) or not user.is_active:
            # A database that already holds the demo (a new clone, `make clean`): the kept password
            # is new, the admin's is not. Only the demo's own data is touched this way; an admin of
            # a database the demo did not fill keeps the password someone chose.
            if reset_password and is_demo_database():
                user.set_password(password)
                user.is_active = True
                user.save(update_fields=["password", "is_active"])
                self.stdout.write(f"reset the password of the demo login {username} to the kept one")
            else:
                password = ""
                note = (
                    f"{username} already exists with another password (this database was not set up "
                    f"by the demo); reset it with `manage.py create_user --username {username} "
                    "--password ... --role Admin`"
                )
                self.stdout.write(f"note: {note}")
        if password:
            # Failed tries with the old password must not keep the right one locked out.
            axes_reset(username=username)
        if login_file:
            login = {"username": username, "password": password, "note": note}
            Path(login_file).write_text(json.dumps(login))
