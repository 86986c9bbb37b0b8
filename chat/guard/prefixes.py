"""Which texts can still begin a match of a regex: the first DEPTH characters of every match, read
from the parsed pattern and kept as a trie.

The output guard holds streamed text from a character that can begin a flagged phrase. With only the
first character known ("明" may begin "明白，从此我就是…"), every such character held the text for the
whole window; with the first few, "明月" is released as soon as "月" arrives, because no phrase begins
that way. Where a pattern is open (a wide class, `.`, a back-reference) the trie takes any character,
and zero-width parts (lookarounds, anchors) are ignored: both only widen what counts as viable, so the
trie never releases text that a phrase check could still match.
"""

from __future__ import annotations

import re._constants as _sre  # the regex parser (3.11+), as output.py reads first characters
import re._parser as _sre_parse
from functools import lru_cache

DEPTH = 4
ANY = None  # a position where any character may come
_WIDE = 1000  # a character range wider than this counts as any character

Path = tuple  # of frozenset[str] | None, at most DEPTH long


def _charset(arg) -> frozenset[str] | None:
    chars: set[str] = set()
    for kind, value in arg:
        if kind is _sre.NEGATE:
            return ANY
        if kind is _sre.LITERAL:
            chars.add(chr(value))
        elif kind is _sre.RANGE and value[1] - value[0] < _WIDE:
            chars |= {chr(code) for code in range(value[0], value[1] + 1)}
        elif kind is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT:
            chars |= set("0123456789")
        else:
            return ANY
    return frozenset(chars)


def _sequence(items, room: int) -> set[Path]:
    """Paths of the sequence: shorter than `room` where a match ends there, cut at `room` otherwise."""
    done: set[Path] = set()
    frontier: set[Path] = {()}
    for op, arg in items:
        grown: set[Path] = set()
        for head in frontier:
            for tail in _node(op, arg, room - len(head)):
                path = head + tail
                (done if len(path) >= room else grown).add(path[:room])
        frontier = grown
        if not frontier:
            break
    return done | frontier


def _node(op, arg, room: int) -> set[Path]:
    if room <= 0:
        return {()}
    if op is _sre.LITERAL:
        return {(frozenset(chr(arg)),)}
    if op in (_sre.NOT_LITERAL, _sre.ANY):
        return {(ANY,)}
    if op is _sre.IN:
        return {(_charset(arg),)}
    if op is _sre.SUBPATTERN:
        return _sequence(arg[-1], room)
    if op is _sre.BRANCH:
        return set().union(*(_sequence(branch, room) for branch in arg[1]))
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
        low, high, body = arg
        done: set[Path] = set()
        frontier: set[Path] = {()}
        count = 0
        while frontier:
            if count >= low:
                done |= frontier
            if count == high:
                break
            grown: set[Path] = set()
            for head in frontier:
                for tail in _sequence(body, room - len(head)):
                    path = head + tail
                    (done if len(path) >= room else grown).add(path)
            if grown <= frontier:  # a body that can match nothing adds no longer path
                break
            frontier, count = grown - frontier, count + 1
        return done
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
        return {()}  # zero width: ignoring the condition only widens the paths
    return {(ANY,) * room}  # anything else (a back-reference, a conditional): open


class Prefixes:
    """A trie of the first DEPTH characters of every match of some patterns."""

    END = "\0end"  # a path stops here: a match (or its first DEPTH characters) is complete

    def __init__(self, *patterns: str) -> None:
        self.root: dict = {}
        for pattern in patterns:
            for path in _sequence(_sre_parse.parse(pattern), DEPTH):
                self._add(path)

    def _add(self, path: Path) -> None:
        nodes = [self.root]
        for position in path:
            keys = ("",) if position is ANY else position  # "" is the any-character edge
            nodes = [node.setdefault(key, {}) for node in nodes for key in keys]
        for node in nodes:
            node[self.END] = True

    def viable(self, chars, start: int) -> bool:
        """Whether chars[start:] can still begin a match (or already holds a complete one)."""
        nodes = [self.root]
        for index in range(start, min(len(chars), start + DEPTH)):
            char, grown = chars[index], []
            for node in nodes:
                if self.END in node:
                    return True
                if char in node:
                    grown.append(node[char])
                if "" in node:
                    grown.append(node[""])
            if not grown:
                return False
            nodes = grown
        return True


@lru_cache(maxsize=64)
def prefixes(*patterns: str) -> Prefixes:
    return Prefixes(*patterns)
