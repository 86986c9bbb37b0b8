"""Where a reply is cut for reading aloud, and what of each piece is spoken.

The cut must be stable on prefixes: a sentence found final in the first part of a streaming reply is
the same sentence, with the same index, once the whole reply is there. So a piece is final only
when something follows it that cannot belong to it (or the text is complete).
"""

from __future__ import annotations

import re

from chat.citations import strip_refs

# A sentence ends at one of these (a run of them: "？！", "……")...
ENDS = frozenset("。！？；…!?;")
# ...and keeps the closing quotes and brackets that follow it: 「好。」 is one sentence.
CLOSERS = frozenset("」』”’）)》】\"'")
# A piece this long with no end is cut anyway (at its last comma if it has one): speech endpoints
# take at most 4,096 characters, and a long wait for the first sound is what this avoids.
MAX_CHARS = 200
SOFT_ENDS = "，、：,:"

_MARKUP = re.compile(r"(^\s*(#{1,6}\s|>\s?|[-*+]\s|\d+\.\s))|[*_`~#|]|\[\^?\d+\]")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SPOKEN = re.compile(r"[\w\u3400-\u9fff]")


def split_sentences(text: str, *, complete: bool) -> list[str]:
    """The final sentences of `text`, in order, as spoken (markup removed, empty pieces dropped).
    While the reply still grows (`complete` False) the unfinished tail is left out."""
    return [spoken for piece in _pieces(text, complete) if (spoken := speakable(piece))]


def _pieces(text: str, complete: bool) -> list[str]:
    pieces, start, i, n = [], 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            pieces.append(text[start:i])
            start = i = i + 1
            continue
        if ch in ENDS or (ch == "." and _ascii_stop(text, i)):
            j = i + 1
            while j < n and (text[j] in ENDS or text[j] in CLOSERS or text[j] == "."):
                j += 1
            if j == n and not complete:
                break  # a closing quote or another mark may still come
            pieces.append(text[start:j])
            start = i = j
            continue
        if i - start + 1 >= MAX_CHARS:
            cut = max(text.rfind(mark, start, i + 1) for mark in SOFT_ENDS)
            end = cut + 1 if cut > start else i + 1
            pieces.append(text[start:end])
            start = i = end
            continue
        i += 1
    if complete and start < n:
        pieces.append(text[start:])
    return pieces


def _ascii_stop(text: str, i: int) -> bool:
    """An ASCII full stop ends a sentence only before a space or the end ("3.14", "v1.2" and a list's
    "1. " do not)."""
    if i and text[i - 1].isdigit():
        return False  # "1. " opens a list item
    return i + 1 >= len(text) or text[i + 1].isspace()


def speakable(piece: str) -> str:
    """A piece without Markdown marks; "" when nothing in it can be spoken (a rule, a lone quote)."""
    # Source ids (〔K12〕, docs/citations.md) are marks on the page, not words to read.
    spoken = _MARKUP.sub("", _LINK.sub(r"\1", strip_refs(piece))).strip()
    return spoken if _SPOKEN.search(spoken) else ""
