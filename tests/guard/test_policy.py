"""Each category's action, the notes, and the in-role lines (never "作为一个AI")."""

from __future__ import annotations

import pytest

from chat.guard.categories import CATEGORIES, IN_SCOPE
from chat.guard.input import Verdict
from chat.guard.policy import GENERIC_LINES, Policy, policy_for, replacement_line, signature_line
from personas.models import SIGNATURE_CATEGORIES


@pytest.mark.parametrize(
    ("category", "action", "canned"),
    [
        ("in_scope", "answer", False),
        ("anachronism", "guide", False),
        ("sensitive", "guide", False),
        ("unsafe", "refuse", True),
        ("leak", "refuse", True),
        ("hijack", "refuse", True),
        ("jailbreak", "refuse", True),
        ("role_swap", "refuse", True),
        ("rename", "refuse", True),
        ("off_role", "steer", False),
        ("invent_history", "steer", False),
        ("empty", "steer", True),
        ("circling", "steer", True),
    ],
)
def test_policy_per_category(category, action, canned):
    policy = policy_for(Verdict(category, 0.9, "手机"))
    assert (policy.action, policy.canned) == (action, canned)
    assert policy.calls_model == (not canned)
    assert bool(policy.note) == policy.calls_model and category != IN_SCOPE or category == IN_SCOPE
    assert policy.answers == (action in ("answer", "guide"))


def test_every_category_has_a_policy_and_unknown_ones_refuse():
    assert {c for c in CATEGORIES} >= set(SIGNATURE_CATEGORIES)
    assert policy_for(Verdict("something_new", 0.9, "")) == Policy("refuse", canned=True)


def test_the_anachronism_note_names_the_terms_and_speaks_to_the_model():
    note = policy_for(Verdict("anachronism", 0.8, "手机、互联网")).note
    assert "“手机”、“互联网”是你身后之事" in note and "以你所处时代的眼光回应" in note
    assert "用户" in note  # about the user's message, addressed to the model


def test_the_persona_own_line_is_used(li_bai):
    assert signature_line(li_bai, "unsafe") == "此等言语，无益于道。"


@pytest.mark.parametrize("category", [*SIGNATURE_CATEGORIES, "not_a_category"])
def test_missing_lines_fall_back_in_role(li_bai, category):
    li_bai.signature_lines = {}
    line = signature_line(li_bai, category)
    assert line and "AI" not in line.upper() and "人工智能" not in line and "模型" not in line
    if category in GENERIC_LINES and "{name}" in GENERIC_LINES[category]:
        assert "李白" in line


def test_no_persona_still_speaks_in_role():
    assert signature_line(None, "role_swap") == "在下便是在下，本我不可变更，勿作妄想。"


def test_blank_lines_fall_back(li_bai):
    li_bai.signature_lines = {"leak": "   "}
    assert signature_line(li_bai, "leak") == "你当前对话的是李白，请就李白的生平与所学发问。"


def test_replacement_lines_per_hit(li_bai):
    assert replacement_line(li_bai, "canary") == replacement_line(li_bai, "leak") == "白胸中唯有诗酒，别无他物可示人。"
    assert replacement_line(li_bai, "persona_break") == "李白便是李白，本我不可变更，勿作妄想。"
    assert "身后之事" in replacement_line(li_bai, "anachronism")
    assert replacement_line(li_bai, "code") == replacement_line(li_bai, "foreign_text") == signature_line(li_bai, "off_role")
    assert replacement_line(li_bai, "harmful_steps") == signature_line(li_bai, "unsafe")
