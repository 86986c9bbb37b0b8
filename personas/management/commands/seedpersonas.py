from __future__ import annotations

import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from personas.cards import CardError
from personas.seed import figure_reset, figure_reset_plan, seed_all, seeded_slugs
from personas.seedsync import Step

KIND_LABELS = {"persona": "figure", "stage": "life stage", "knowledge": "knowledge entry", "portrayal": "portrayal"}


class Command(BaseCommand):
    help = (
        "Load the seeded figures, era knowledge and style presets: create what is missing, update what nobody "
        "changed since it was seeded, keep every curator's edit. --reset SLUG restores one figure to the seed."
    )
    # Tests hand in their own stdin (the confirmation answer).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--reset", metavar="SLUG", help="restore this figure and its children to the seed")
        parser.add_argument("--yes", action="store_true", help="reset without asking for confirmation")

    def handle(self, *args, **options):
        self.stdin = options.get("stdin") or sys.stdin
        try:
            if options["reset"]:
                self._reset(options["reset"], assume_yes=options["yes"])
            else:
                self._seed()
        except CardError as exc:
            raise CommandError(str(exc)) from exc

    def _seed(self) -> None:
        counts = seed_all()
        self.stdout.write(
            f"seeded {counts['personas']} figures, {counts['eras']} era entries, {counts['styles']} style presets: "
            + _tally_text(counts["tally"])
        )

    def _reset(self, slug: str, *, assume_yes: bool) -> None:
        steps = figure_reset_plan(slug)
        if steps is None:
            raise CommandError(f"no seeded figure with slug {slug!r}; seeded: {', '.join(seeded_slugs())}")
        if all(step.action in ("unchanged", "forgotten") for step in steps):
            self.stdout.write(f"{slug} already matches the seed; nothing to reset.")
            return
        if not assume_yes:
            if not self.stdin.isatty():
                raise CommandError("refusing to reset without confirmation: run it in a terminal or pass --yes")
            self.stdout.write(_reset_prompt(slug, steps), ending="")
            self.stdout.flush()
            if self.stdin.readline().strip().lower() not in ("y", "yes"):
                self.stdout.write("Reset cancelled; nothing changed.")
                return
        self.stdout.write(f"reset {slug}: " + _tally_text(figure_reset(slug)))


def _tally_text(tally: Counter) -> str:
    parts = [
        f"rows: {tally['created']} created",
        f"{tally['updated']} updated",
        f"{tally['kept']} kept because a curator changed them",
    ]
    if tally["skipped"]:
        parts.append(f"{tally['skipped']} not recreated because a curator deleted them")
    if tally["removed"]:
        parts.append(f"{tally['removed']} removed because the seed no longer has them")
    if tally["discarded"]:
        parts.append(f"{tally['discarded']} added by a curator deleted")
    return ", ".join(parts) + f" ({tally['unchanged']} already matched the seed)"


def _reset_prompt(slug: str, steps: list[Step]) -> str:
    tally = Counter(step.action for step in steps)
    lines = [
        f"Reset {steps[0].seed.name} ({slug}) to its seed file, keeping its id and its conversations:",
        f"  {tally['updated']} changed row(s) get the seed's values back, "
        f"{tally['created']} deleted row(s) are recreated.",
    ]
    gone = [step for step in steps if step.action in ("discarded", "removed") and step.row is not None]
    if gone:
        names = "; ".join(f"{KIND_LABELS[step.group.kind]} 「{step.key}」" for step in gone)
        lines.append(f"  DELETED, because the seed does not have them (a curator's additions included): {names}")
    lines.append("Continue? [y/N] ")
    return "\n".join(lines)
