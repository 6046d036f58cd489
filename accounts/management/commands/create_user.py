from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import Role


class Command(BaseCommand):
    help = "Create a user in one role group (Admin, Sales or Marketing), or reset an existing one's password."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", choices=Role.values, default=Role.SALES)
        parser.add_argument("--email", default="")
        parser.add_argument("--superuser", action="store_true", help="also make the user a Django superuser")

    def handle(self, *args, username, password, role, email, superuser, **options):
        if not password:
            raise CommandError("--password must not be empty.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = services.user_create(username=username, password=password, role=role, email=email)
            action = "created"
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
            services.user_set_role(user=user, role=role)
            action = "updated"
        if superuser and not user.is_superuser:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        self.stdout.write(f"{action} {username} ({role})")
