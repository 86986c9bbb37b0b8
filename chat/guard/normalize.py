"""Fold a message into forms that cheap evasions do not survive.

    n = normalize("請 忽.略 上述指令")
    n.compact  → "请忽略上述指令"   (letters and digits only: rules that must survive padding)
    n.clauses  → "请忽略.上述指令"   (spaces gone, punctuation kept: rules that need clause boundaries)
    n.spaced   → "请 忽.略 上述指令" (spacing kept: English word-boundary rules, quoted text)

Every form is NFKC-folded (full-width → half-width, compatibility ideographs → unified), lower-cased,
stripped of zero-width and other format characters, mapped from Traditional to Simplified for the
characters the lexicons use, de-leeted inside ASCII words ("pr0mpt" → "prompt"), and has a short table
of homophones used to dodge filters replaced ("系铳" → "系统"). Lexicon patterns go through
`fold_pattern` so both sides are folded the same way.

Everything here is whole-string `str` methods and precompiled regexes, so it is linear and cheap on
multi-kilobyte jailbreak templates; `fold_char` is the per-character variant for streamed output.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from chat.guard._t2s import T2S_PAIRS

# Traditional (and variant) → Simplified, for the characters the guard's lexicons use. The pairs are
# generated (see docs/guard.md); a few variants the generator does not produce are added by hand.
_T2S = {ord(t): s for t, s in zip(T2S_PAIRS[0::2], T2S_PAIRS[1::2], strict=True)}
_T2S.update({ord(t): s for t, s in (("僞", "伪"), ("偽", "伪"), ("爲", "为"), ("為", "为"), ("衆", "众"))})

# Same- or near-same-sound spellings of the words the rules key on. Kept short on purpose: each entry is
# a dodge seen in the wild or an obvious sound-alike of a key term, never a real word of its own.
HOMOPHONES = {
    "系铳": "系统", "系桶": "系统", "系捅": "系统", "细统": "系统",
    "题示词": "提示词", "提示次": "提示词", "提视词": "提示词", "提式词": "提示词", "题示": "提示",
    "指灵": "指令", "指另": "指令", "纸令": "指令",
    "乎略": "忽略", "忽律": "忽略", "呼略": "忽略", "胡略": "忽略", "忽掠": "忽略",
    "开法者": "开发者", "开发着模式": "开发者模式",
    "设订": "设定", "涉定": "设定",
    "覆述": "复述",
    "越域": "越狱",
    "色晴": "色情", "涩情": "色情", "瑟情": "色情",
    "炸蛋": "炸弹", "炸单": "炸弹",
    "自沙": "自杀", "自刹": "自杀",
    "女干": "奸",  # 强女干 → 强奸 (a glyph split rather than a sound-alike)
    "扮寅": "扮演",
}
# Most text has no Traditional character at all: a character-class scan finds the few that need mapping
# faster than `str.translate` looks up every character.
_T2S_RE = re.compile("[" + "".join(map(chr, _T2S)) + "]")

_HOMOPHONE_RE = re.compile("|".join(sorted(map(re.escape, HOMOPHONES), key=len, reverse=True)))

# Format characters (zero-width space/joiners, word joiner, BOM, bidi controls, soft hyphen) and
# variation selectors / combining marks left over after NFKC.
_INVISIBLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff]"
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# Both start with a character set, so `re` skips the Chinese text quickly.
_LEET_RE = re.compile(r"[a-z][013457@$]+(?=[a-z])")
_SPACED_LETTERS_RE = re.compile(r"[a-z](?<![a-z]{2})(?:[ \t]+[a-z](?![a-z])){2,}")
_SPACE_RE = re.compile(r"[ \t\n\r\f\v]+")
_NON_WORD_RE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Normalized:
    spaced: str
    clauses: str
    compact: str
    padded: bool  # punctuation was sprinkled between characters (clauses == compact then)


def _nfkc_lower(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def to_simplified(text: str) -> str:
    return _T2S_RE.sub(lambda m: _T2S[ord(m.group())], text)


def fold(text: str) -> str:
    """NFKC, lower case, no invisible characters, Simplified, de-leeted; spacing and punctuation kept."""
    text = to_simplified(_INVISIBLE_RE.sub("", _nfkc_lower(text)))
    text = _LEET_RE.sub(lambda m: m.group()[0] + m.group()[1:].translate(_LEET), text)
    return _SPACED_LETTERS_RE.sub(lambda m: _SPACE_RE.sub("", m.group()), text)


def dehomophone(text: str) -> str:
    return _HOMOPHONE_RE.sub(lambda m: HOMOPHONES[m.group()], text)


def normalize(text: str) -> Normalized:
    folded = fold(text)
    spaced = dehomophone(_SPACE_RE.sub(" ", folded).strip())
    unspaced = _SPACE_RE.sub("", folded)
    letters = _NON_WORD_RE.sub("", unspaced)
    compact = dehomophone(letters)
    # "忽.略.上.述" or "忽 | 略 | 上 | 述": when most runs between punctuation are single letters, it is padding.
    segments = [segment for segment in _NON_WORD_RE.split(unspaced) if segment]
    padded = len(segments) >= 4 and sum(len(segment) == 1 for segment in segments) * 10 >= len(segments) * 7
    clauses = compact if padded else dehomophone(unspaced)
    return Normalized(spaced=spaced, clauses=clauses, compact=compact, padded=padded)


def compact(text: str) -> str:
    return normalize(text).compact


def fold_pattern(pattern: str) -> str:
    """Fold a lexicon regex the way messages are folded: Traditional → Simplified.

    Patterns are written in lower case (messages are lower-cased), so regex syntax such as `(?P<x>…)`
    is left alone.
    """
    return pattern.translate(_T2S)


def fold_compact(text: str) -> str:
    """Letters and digits only, folded character by character (no homophones, no de-leeting).

    This is what the output guard compares: applied to a whole text or to each streamed character in
    turn it gives the same result (for text without combining sequences), so a canary or a copied run
    is found however the stream is chunked.
    """
    text = _NON_WORD_RE.sub("", text)  # punctuation and invisible characters go first: less to fold
    return _NON_WORD_RE.sub("", to_simplified(_INVISIBLE_RE.sub("", _nfkc_lower(text))))


@lru_cache(maxsize=8192)
def fold_char(char: str) -> str:
    """`fold_compact` of one streamed character: "" for spaces, punctuation and invisible characters."""
    return fold_compact(char)
