from django.core.management.base import BaseCommand, CommandError

from personas.cards import CardError
from personas.seed import seed_all


class Command(BaseCommand):
    help = "Load the seeded figures, era knowledge and style presets (safe to run again)."

    def handle(self, *args, **options):
        try:
            counts = seed_all()
        except CardError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"seeded {counts['personas']} figures, {counts['eras']} era entries, {counts['styles']} style presets"
        )
