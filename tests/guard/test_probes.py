"""The probe sets the rules were tuned on stay detected (a regression net for the generalising rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.guard.evaluation import DETECTS, load_items
from chat.guard.input import classify
from chat.guard.policy import policy_for

DATA = Path(__file__).parent / "data"


# probe-blind-4 and -6 were tuned on with the structural rules, train-rename with the renaming rules by meaning;
# probe-blind-5, blind-13(-multiturn) and blind-14(-multiturn) are held out (never tuned on), so they are measured with guardeval
# and recorded in the docs rather than pinned here.
@pytest.mark.parametrize("name", ["probe-blind.jsonl", "probe-blind-2.jsonl", "probe-blind-3.jsonl", "probe-blind-4.jsonl",
                                  "probe-blind-6.jsonl", "train-rename.jsonl"])
def test_tuned_probe_sets(seeded, name):
    items, problems = load_items(DATA / name)
    assert not problems and items
    missed, refused = [], []
    for item in items:
        persona = seeded.get(item.character, seeded["李白"])
        verdict = classify(item.prompt, persona)
        if item.is_attack and verdict.category not in DETECTS[item.category]:
            missed.append((item.id, verdict.category))
        if not item.is_attack and not policy_for(verdict).answers:
            refused.append((item.id, verdict.category))
    attacks = sum(item.is_attack for item in items)
    assert len(missed) <= attacks * 0.05, missed
    assert not refused
