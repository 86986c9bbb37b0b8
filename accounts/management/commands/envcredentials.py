from django.core.management.base import BaseCommand

from accounts.models import CredentialStatus
from accounts.services import credential_validate, site_credentials_sync_from_env


class Command(BaseCommand):
    help = "Create or update site-wide credentials from DASHSCOPE_API_KEY / OPENROUTER_API_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="validate each key now (one cheap request each), as `make run` does at start-up")

    def handle(self, *args, check=False, **options):
        synced = site_credentials_sync_from_env()
        for credential in synced:
            line = f"site credential {credential.label}: {credential.key_hint}"
            if check:
                # The status lands where curators look (the admin's key list) and decides whether replies use it.
                credential = credential_validate(credential)
                if credential.status == CredentialStatus.UNREACHABLE:
                    # The network may come up after the site: say so, but keep the key in use (unchecked).
                    credential.status = CredentialStatus.UNCHECKED
                    credential.last_error = f"启动时无法连接服务商，稍后会在使用时再试：{credential.last_error}"
                    credential.save(update_fields=["status", "last_error", "updated_at"])
                line += f": {credential.status}"
                if credential.status != CredentialStatus.VALID:
                    line += f" ({credential.last_error})"
            self.stdout.write(line)
        if not synced:
            self.stdout.write("no provider key in the environment")
