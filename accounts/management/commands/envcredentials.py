from django.core.management.base import BaseCommand

from accounts.services import site_credentials_sync_from_env


class Command(BaseCommand):
    help = "Create or update site-wide credentials from DASHSCOPE_API_KEY / OPENROUTER_API_KEY."

    def handle(self, *args, **options):
        synced = site_credentials_sync_from_env()
        for credential in synced:
            self.stdout.write(f"site credential {credential.label}: {credential.key_hint}")
        if not synced:
            self.stdout.write("no provider key in the environment")
