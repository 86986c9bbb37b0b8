"""Alternations of many literal words as a prefix trie: `a(?:b|c)` instead of `ab|ac`.

Python's `re` tries every branch of `w1|w2|…|wn` at every position; a trie shares the prefixes, so a
few hundred lexicon words cost about as much as a handful.
"""

from __future__ import annotations

import re

_META = set(".^$*+?{}[]\\|()")


def is_literal(word: str) -> bool:
    return not any(char in _META for char in word)


def trie_pattern(words: list[str] | tuple[str, ...] | set[str]) -> str:
    """A non-capturing regex matching exactly the given literal words, longest match first."""
    root: dict = {}
    for word in words:
        if not word:
            continue
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _render(root) if root else "(?!)"


def _render(node: dict) -> str:
    ends = "" in node
    branches = [re.escape(char) + _render(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Longer words first: the optional group is greedy, so "手机" does not stop short of "手机号".
    return f"(?:{body})?" if ends else body
