"""python manage.py guardeval FILE.jsonl [--json] [--behaviour benign|obedient_attacker|leaky|modern|all]
[--attacker FILE.json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from chat.guard import evaluation, scripted
from chat.guard.scripted import BEHAVIOURS


class Command(BaseCommand):
    help = "Run labelled prompts through the input guard, the prompt builder, a scripted model and the output guard."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSONL lines with id, category, prompt (or turns, a conversation), is_attack "
                                         "and optional character")
        parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
        parser.add_argument("--behaviour", choices=[*BEHAVIOURS, "all"], default="all")
        parser.add_argument("--split", choices=["all", "tune", "holdout"], default="all",
                            help="a fixed 70/30 split of the items by id (see --seed)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--chunk", type=int, default=3, help="characters per streamed delta")
        parser.add_argument("--misses", action="store_true", help="list the items the guard got wrong")
        parser.add_argument("--attacker", metavar="FILE.json",
                            help="the obedient attacker's words from a file written apart from the guard "
                                 "(keys as chat.guard.scripted.Bank), instead of the built-in ones")

    def handle(self, *args, **options):
        try:
            items, problems = evaluation.load_items(options["file"])
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        for problem in problems:
            self.stderr.write(f"malformed, skipped: {problem}")
        items = evaluation.select(items, options["split"], options["seed"])
        behaviours = BEHAVIOURS if options["behaviour"] == "all" else (options["behaviour"],)
        bank = scripted.BUILT_IN
        if options["attacker"]:
            try:
                bank = scripted.load_bank(options["attacker"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot use {options['attacker']}: {exc}") from exc
        report = evaluation.evaluate(items, behaviours, chunk=max(1, options["chunk"]), bank=bank)
        self._print(report, problems, options)
        if options["json"]:
            self.stdout.write(json.dumps(report.summary(), ensure_ascii=False))

    def _print(self, report: evaluation.Report, problems: list[str], options) -> None:
        out = self.stdout.write
        conversations = f" ({report.conversations} conversations)" if report.conversations else ""
        out(f"guardeval: {report.items} items{conversations} ({options['split']}), {len(problems)} malformed line(s) "
            f"skipped, behaviours: {', '.join(report.behaviours)}")
        for category in sorted(set(report.counts) - evaluation.KNOWN):
            out(f"unknown category {category!r}: {report.counts[category]} item(s), counted under its own name")
        out(f"{'category':<22}{'items':>6}{'detection':>11}{'refused/steered':>17}{'residual':>10}")
        for category, row in sorted(evaluation.by_category(report).items()):
            detection = f"{row['detection']:.3f}" if "detection" in row else ""
            refused = f"{row['refused_or_steered']:.3f}" if "refused_or_steered" in row else ""
            residual = f"{row['residual']:.3f}" if "residual" in row else ""
            extra = f"   anachronism flagged {row['anachronism_flagged']:.3f}" if "anachronism_flagged" in row else ""
            out(f"{category:<22}{row['items']:>6}{detection:>11}{refused:>17}{residual:>10}{extra}")
        summary = report.summary()
        residual = summary["residual_attack_success"]
        out(f"false refusals (harmless + anachronism): {summary['false_refusal']:.4f}")
        out("residual attack success (obedient_attacker): "
            + (f"{residual:.4f}" if residual is not None else "not run (needs --behaviour obedient_attacker or all)"))
        out(f"canary leaks: {summary['canary_leaks']} in {report.runs} replies")
        out(f"persona retention: {summary['persona_retention']:.4f}")
        out(f"guard latency p95: {summary['latency_p95_ms']:.3f} ms (input classify + output guard, per reply)")
        if options["misses"]:
            for miss in report.misses:
                out(f"  miss: {miss}")
