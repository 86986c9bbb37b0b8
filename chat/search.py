"""Searching one user's conversations by words (docs/memory.md, "Searching conversations").

The recall index holds every user message under its owner × figure scope; a search asks it for the
newest messages of the owner's scopes that hold every word typed (chat/recall/index.py `find`),
loads them through an owner-filtered query that leaves out what the guard refused or steered, and
keeps those whose folded text really contains each word (a phrase of bigrams can straddle two runs
of the index). The snippet is a list of plain pieces, the matches flagged: the template escapes
each one and wraps the matches in <mark>, so no text of the user's ever becomes markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from chat.models import WITHHELD_ACTIONS, Conversation, Message
from chat.quoting import merge_spans
from chat.recall import index
from chat.recall.tokens import fold, search_runs, search_terms

MAX_HITS = 30
CANDIDATES = MAX_HITS * 4  # index rows read for MAX_HITS shown (some are withheld or inexact)
MAX_TITLE_HITS = 10
SNIPPET_BEFORE = 24  # characters shown before the first match
SNIPPET_CHARS = 90
_FLAT = str.maketrans("\n\r\t", "   ")


@dataclass
class Hit:
    conversation: Conversation
    message: Message
    parts: list[tuple[str, bool]]  # the snippet in order; True marks a match
    cut_before: bool
    cut_after: bool


def _scopes(user) -> list[str]:
    # A scene's message is indexed under its conversation's figure too, so those scopes cover all.
    figures = Conversation.objects.for_user(user).order_by().values_list("persona_id", flat=True).distinct()
    return [index.scope(user.pk, figure) for figure in sorted(figures)]


def _folded(text: str) -> tuple[str, list[int]]:
    """`text` folded as the index folds it, and the position in `text` of each folded character."""
    whole = fold(text)
    if len(whole) == len(text):  # CJK and ASCII fold one to one
        return whole, list(range(len(text)))
    chars, origin = [], []
    for position, char in enumerate(text):
        for folded in fold(char):
            chars.append(folded)
            origin.append(position)
    return "".join(chars), origin


def match_spans(text: str, runs: list[str]) -> list[tuple[int, int]] | None:
    """Where each run occurs in `text` (merged, in order), or None when one of them does not."""
    folded, origin = _folded(text)
    spans = []
    for run in runs:
        at = folded.find(run)
        if at < 0:
            return None
        while at >= 0:
            spans.append((origin[at], origin[at + len(run) - 1] + 1))
            at = folded.find(run, at + len(run))
    return merge_spans(spans)


def snippet(text: str, spans: list[tuple[int, int]]) -> tuple[list[tuple[str, bool]], bool, bool]:
    """A window of the text around its first match, as (piece, is_match) pairs, and whether text was
    cut before and after it."""
    text = text.translate(_FLAT)
    start = max(0, (spans[0][0] if spans else 0) - SNIPPET_BEFORE)
    end = min(len(text), start + SNIPPET_CHARS)
    parts, position = [], start
    for a, b in spans:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        if a > position:
            parts.append((text[position:a], False))
        parts.append((text[a:b], True))
        position = b
    if position < end:
        parts.append((text[position:end], False))
    return parts, start > 0, end < len(text)


def message_hits(user, query: str, limit: int = MAX_HITS) -> list[Hit]:
    """The owner's own messages holding every word of `query`, newest first."""
    terms, runs = search_terms(query), search_runs(query)
    ids = index.find(index.MESSAGE, _scopes(user), terms, CANDIDATES)
    if not ids:
        return []
    turned_away = Message.objects.filter(parent=OuterRef("pk"), guard_action__in=WITHHELD_ACTIONS)
    messages = (
        Message.objects.filter(pk__in=ids, role=Message.Role.USER, conversation__owner=user)
        .filter(~Exists(turned_away)).select_related("conversation__persona")
        .prefetch_related("conversation__seats__persona").order_by("-pk")
    )
    hits = []
    for message in messages:
        spans = match_spans(message.content, runs)
        if spans is None:
            continue
        parts, cut_before, cut_after = snippet(message.content, spans)
        hits.append(Hit(message.conversation, message, parts, cut_before, cut_after))
        if len(hits) == limit:
            break
    return hits


def title_hits(user, query: str, limit: int = MAX_TITLE_HITS) -> list[Conversation]:
    return list(Conversation.objects.for_user(user).filter(title__icontains=query.strip())
                .with_figures()[:limit])
