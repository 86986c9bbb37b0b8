import getpass

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User

CURATOR_GROUP = "策展人"
CURATOR_MODELS = {
    "personas": ["persona", "lifestage", "knowledgeentry", "screenportrayal", "stylepreset"],
    "accounts": ["apicredential", "quotasettings", "userquota"],
}


def curator_group() -> Group:
    group, _ = Group.objects.get_or_create(name=CURATOR_GROUP)
    perms = Permission.objects.filter(
        content_type__app_label__in=CURATOR_MODELS.keys(),
    ).filter(content_type__model__in=[m for models in CURATOR_MODELS.values() for m in models])
    group.permissions.set(perms)
    return group


class Command(BaseCommand):
    help = "Create (or promote) a curator: staff access to figures, knowledge, site-wide keys, usage and quotas."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", help="omit to be prompted (or keep an existing user's password)")

    def handle(self, username, password=None, **options):
        user = User.objects.filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username)
        if created or password:
            password = password if password is not None else self._prompt()
            if not password:
                raise CommandError("a password is required for a new curator")
            try:
                validate_password(password, user)  # the site's own validators (settings.AUTH_PASSWORD_VALIDATORS)
            except ValidationError as exc:
                raise CommandError("password refused: " + " ".join(exc.messages)) from None
            user.set_password(password)
        with transaction.atomic():  # nothing is saved unless the password passed
            user.is_staff = True
            user.save()
            user.groups.add(curator_group())
        self.stdout.write(f"{'created' if created else 'promoted'} curator {username}")

    @staticmethod
    def _prompt() -> str:
        first = getpass.getpass("密码: ")
        if first != getpass.getpass("再输入一次密码: "):
            raise CommandError("the two passwords differ; nothing was saved")
        return first
