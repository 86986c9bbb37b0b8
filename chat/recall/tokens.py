"""Text → search tokens, the same on SQLite FTS5 and PostgreSQL (docs/memory.md, "Search").

Chinese has no spaces, so each run of CJK characters is indexed as overlapping bigrams ("互联网" →
"互联 联网"), written out with spaces for a plain word tokenizer (FTS5 unicode61, PostgreSQL's
'simple' configuration). A query term of two characters is one token; a longer one is a phrase of
consecutive bigrams, so it matches exactly that substring; a single character is its own
unigram column. Latin words and numbers are kept whole. Index and query go through the same
folding (NFKC, lower case, traditional → simplified for common characters).

One- and two-character words inside a longer run ("喝什么茶", "下棋") share no bigram with the way
a memory says them ("普洱茶", "围棋"). Without a segmenter (jieba adds a 50 MB dictionary and its
own ambiguities), the query also searches the unigram column for up to MAX_QUERY_UNIGRAMS of its
less common characters: those outside COMMON_CHARS, the most frequent characters of written Chinese
plus the particles of speech. bm25 weighs that column at half a bigram (chat/recall/index.py), so a
shared bigram still counts for more. Bigrams that contain a grammatical particle or pronoun (GLUE:
"你当", "的看", "么想") straddle a word boundary and are dropped like stop bigrams
(bench/recall.py measures both choices: docs/BENCHMARKS.md, "Recall").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chat.guard.normalize import to_simplified

_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_QUERY_TERMS = 24  # a long message becomes a bounded query
MAX_QUERY_UNIGRAMS = 8  # of which single characters searched in the unigram column

# Bigrams so common in what people say to a figure that they only slow a query down and add noise.
STOP_BIGRAMS = frozenset(
    "你还 还记 记得 得我 我上 上次 次问 问你 问的 的是 是什 什么 么吗 我们 你们 他们 一个 这个 那个 这些 那些 "
    "可以 是不 不是 没有 有没 怎么 为什 为何 如何 吗你 你说 说的 我想 想问 请问 一下 知道 告诉 告诉我 "
    "就是 还是 但是 因为 所以 如果 已经 自己 时候 的时 现在 今天 我的 你的 他的 她的 的人 了吗 了一 "
    "先生 您的 我是 你是 是我 是你 之前 以前 一些 有什 么样 样的 觉得 认为 吧你 呢你".split()
)
# Particles and pronouns: a bigram holding one of them is grammar, not topic.
GLUE = frozenset("的了吗呢啊呀嘛哦你我他她们么很您咱")
# The ~500 most frequent characters of written Chinese (and the particles): as a lone search
# character they match nearly everything, so they never become unigram terms.
COMMON_CHARS = frozenset(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性"
    "好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第"
    "向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管"
    "特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处"
    "队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单"
    "风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土"
    "许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省"
    "列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置"
    "派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严吗呢吧啊呀嘛哦您咱怎谁哪啥喜欢觉"
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


def query_terms(text: str, limit: int = MAX_QUERY_TERMS, unigrams: int = MAX_QUERY_UNIGRAMS) -> list[Term]:
    """OR-terms for a free-text query: every content bigram of each Chinese run, each Latin word,
    then up to `unigrams` uncommon single characters of the longer runs.

    Overlapping bigrams of a run all count, so a message that shares more of the run ranks higher
    (bm25 sums them); stop bigrams and bigrams with a GLUE character are dropped. A run of one
    character searches its unigram."""
    terms: list[Term] = []
    singles: list[Term] = []
    seen: set[tuple[str, ...]] = set()
    for match in _RUN.finditer(fold(text)):
        run = match.group()
        if _CJK.match(run):
            if len(run) == 1:
                candidates = [Term((run,), unigram=True)]
            else:
                candidates = [Term((gram,)) for gram in _bigrams(run)
                              if gram not in STOP_BIGRAMS and not (GLUE & set(gram))]
                singles.extend(Term((char,), unigram=True) for char in run if char not in COMMON_CHARS)
        elif run not in STOP_WORDS and (len(run) > 1 or run.isdigit()):
            candidates = [Term((run,))]
        else:
            candidates = []
        for term in candidates:
            if term.tokens not in seen:
                seen.add(term.tokens)
                terms.append(term)
    extra: list[Term] = []
    for term in singles:
        if len(extra) < unigrams and term.tokens not in seen:  # seen: also a one-character run
            seen.add(term.tokens)
            extra.append(term)
    return terms[:max(limit - len(extra), limit // 2)] + extra[:limit // 2]


MAX_SEARCH_TERMS = 8  # words of a search box query; each must match


def search_terms(text: str) -> list[Term]:
    """Every word of a search box query as one term that must match, in the order typed.

    Unlike recall's OR query, nothing is dropped (a person searching for 什么 means it): a Chinese
    run is the phrase of its consecutive bigrams, so "黄鹤楼" finds exactly that substring inside
    "登黄鹤楼上"; a single character is its unigram; a Latin word or a number stays whole."""
    terms: list[Term] = []
    for match in _RUN.finditer(fold(text)):
        run = match.group()
        if _CJK.match(run):
            term = Term(tuple(_bigrams(run)), unigram=False) if len(run) > 1 else Term((run,), unigram=True)
        else:
            term = Term((run,))
        if term not in terms:
            terms.append(term)
    return terms[:MAX_SEARCH_TERMS]


def search_runs(text: str) -> list[str]:
    """The folded runs of a query, as a found text must contain them (checked on the loaded rows)."""
    runs: list[str] = []
    for match in _RUN.finditer(fold(text)):
        if match.group() not in runs:
            runs.append(match.group())
    return runs[:MAX_SEARCH_TERMS]
