"""Text → search tokens, the same on SQLite FTS5 and PostgreSQL (docs/memory.md, "Search").

Chinese has no spaces, so each run of CJK characters is indexed as overlapping bigrams ("互联网" →
"互联 联网"), written out with spaces for a plain word tokenizer (FTS5 unicode61, PostgreSQL's
'simple' configuration). A query term of two characters is one token; a longer one is a phrase of
consecutive bigrams, so it matches exactly that substring; a single character is its own
unigram column. Latin words and numbers are kept whole. Index and query go through the same
folding (NFKC, lower case, traditional → simplified for common characters).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chat.guard.normalize import to_simplified

_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_QUERY_TERMS = 24  # a long message becomes a bounded query

# Bigrams so common in what people say to a figure that they only slow a query down and add noise.
STOP_BIGRAMS = frozenset(
    "你还 还记 记得 得我 我上 上次 次问 问你 问的 的是 是什 什么 么吗 我们 你们 他们 一个 这个 那个 这些 那些 "
    "可以 是不 不是 没有 有没 怎么 为什 为何 如何 吗你 你说 说的 我想 想问 请问 一下 知道 告诉 告诉我 "
    "就是 还是 但是 因为 所以 如果 已经 自己 时候 的时 现在 今天 我的 你的 他的 她的 的人 了吗 了一 "
    "先生 您的 我是 你是 是我 是你 之前 以前 一些 有什 么样 样的 觉得 认为 吧你 呢你".split()
)
STOP_WORDS = frozenset("the a an of to and or is are was were i you he she it we they me my your do does did what how".split())


def fold(text: str) -> str:
    return to_simplified(unicodedata.normalize("NFKC", text or "").lower())


def _bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)]


def index_text(text: str) -> tuple[str, str]:
    """(bigrams and words, unigrams): the two columns a document is indexed under."""
    grams: list[str] = []
    singles: set[str] = set()
    for match in _RUN.finditer(fold(text)):
        run = match.group()
        if _CJK.match(run):
            grams.extend(_bigrams(run) if len(run) > 1 else [run])
            singles.update(run)
        else:
            grams.append(run)
    return " ".join(grams), " ".join(sorted(singles))


@dataclass(frozen=True)
class Term:
    tokens: tuple[str, ...]  # consecutive tokens: a phrase when there is more than one
    unigram: bool = False  # a lone Chinese character, searched in the unigram column


def query_terms(text: str, limit: int = MAX_QUERY_TERMS) -> list[Term]:
    """OR-terms for a free-text query: every content bigram of each Chinese run, each Latin word.

    Overlapping bigrams of a run all count, so a message that shares more of the run ranks higher
    (bm25 sums them); stop bigrams are dropped. A run of one character searches its unigram."""
    terms: list[Term] = []
    seen: set[tuple[str, ...]] = set()
    for match in _RUN.finditer(fold(text)):
        run = match.group()
        if _CJK.match(run):
            if len(run) == 1:
                candidates = [Term((run,), unigram=True)]
            else:
                candidates = [Term((gram,)) for gram in _bigrams(run) if gram not in STOP_BIGRAMS]
        elif run not in STOP_WORDS and (len(run) > 1 or run.isdigit()):
            candidates = [Term((run,))]
        else:
            candidates = []
        for term in candidates:
            if term.tokens not in seen:
                seen.add(term.tokens)
                terms.append(term)
    return terms[:limit]

