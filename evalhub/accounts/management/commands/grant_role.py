"""``python manage.py grant_role USERNAME researcher|annotator``"""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from evalhub.accounts.roles import ROLE_PERMISSIONS, user_grant_role


class Command(BaseCommand):
    help = "Give an existing user the researcher or annotator role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=[r.rstrip("s") for r in ROLE_PERMISSIONS])

    def handle(self, *args, username, role, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        user_grant_role(user=user, role=role + "s")
        self.stdout.write(f"{username} is now a {role}.")
