import getpass

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

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
        user, created = User.objects.get_or_create(username=username)
        if created or password:
            password = password or getpass.getpass("密码: ")
            if not password:
                raise CommandError("a password is required for a new curator")
            user.set_password(password)
        user.is_staff = True
        user.save()
        user.groups.add(curator_group())
        self.stdout.write(f"{'created' if created else 'promoted'} curator {username}")
