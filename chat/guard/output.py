"""The output guard: watch the streamed reply and hold a short tail back until it is known to be clean.

    guard = OutputGuard(persona_name="李白", canary=canary, system_text=system, cutoff_year=762)
    for delta in deltas:
        send(guard.feed(delta))
        if guard.hit:
            stop_upstream(); replace_reply(replacement_line(persona, guard.hit.kind)); break
    else:
        send(guard.finish())

`allowed` lists public text the model may repeat word for word although the system part quotes it
(the persona's greeting and signature lines). It catches a persona break ("作为一个AI", "我是由阿里云开发的", "好的，我现在是…"), the canary (also
with spaces or zero-width characters between its letters), a leak (a run of `leak_run` characters,
after normalisation, copied from the system text) and first-person knowledge after the figure's death
("我昨天用手机上网"). Text is released only when it can no longer be the start of any of these: the
last `holdback` raw characters are always held, and so is a tail that is the beginning of the canary or
of a run copied from the system text, so a leak split across chunks never reaches the user in part.

Work per character is constant (a cached character fold, one step of a KMP automaton for the canary,
one set lookup of a `GRAM`-character slice for the leak, regexes over a fixed-size window), so the
whole stream is checked in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from chat.guard.lexicon import ALL_TERMS_RE, FOLDED_YEARS
from chat.guard.normalize import fold_char, fold_compact, fold_pattern

GRAM = 10  # characters per n-gram of the system text
WINDOW = 48  # characters of context the pattern checks look back over

_AI = r"(?:ai|人工智能|语言模型|大语言模型|大模型|ai助手|人工智能助手|智能助手|机器人|聊天机器人|虚拟助手|ai模型|计算机程序|程序|机器)"
_VENDOR = (
    r"(?:qwen|通义千问|通义|chatgpt|gpt\d*|openai|gemma|gemini|claude|anthropic|阿里云|阿里巴巴|达摩院|百炼|dashscope|llama|"
    r"deepseek|深度求索|文心一言|文心|百度|豆包|字节跳动|kimi|月之暗面|智谱|chatglm|谷歌|google|微软|microsoft|mistral)"
)
_BREAK_PATTERNS = (
    r"作为(?:一个|一名|一款|个|一位)?" + _AI,
    r"我(?:是|只是|就是|乃是|不过是|其实是)(?:一个|一名|一款|一台|个|台)?" + _AI,
    r"(?:我是|我叫|本模型|我由|由|基于|来自|我的开发者是|开发我的是).{0,10}?" + _VENDOR,
    _VENDOR + r".{0,6}?(?:开发|训练|研发|打造|推出|创造)",
    r"asana(?:i|rtificialintelligence|languagemodel)|iama(?:n?ai|languagemodel)|imana?i|imalanguagemodel|asalanguagemodel",
    # Acknowledging a new role: "好的，我现在是一名教师", "明白，我来扮演…"
    r"(?:好的|好|明白了|明白|没问题|遵命|当然|可以|ok|okay)(?:我|咱)(?:(?:现在|从现在起|从现在开始|这就|今后)(?:就)?"
    r"(?:是|扮演|来扮演|变成了?|成为了?|化身为)|(?:就)?(?:扮演|来扮演|变成了?|化身为))(?P<role>.{0,4})",
    r"我(?:现在|从现在起|从现在开始)(?:就)?(?:扮演|化身为|变成了)",
)
_BREAK_RE = re.compile("|".join(f"(?:{fold_pattern(p)})" for p in _BREAK_PATTERNS))
_FIRST_PERSON_RE = re.compile(fold_pattern("我|吾|余|俺|朕|老夫|在下|本人|某家|贫道|本官|本宫|哀家|洒家"))
_NEGATION_RE = re.compile(fold_pattern("不|没|未|无|非|何|岂|莫|勿|否|难|怎|什么|哪|听说"))


@dataclass(frozen=True)
class Hit:
    kind: str  # persona_break | canary | leak | anachronism
    evidence: str


def stream_compact(text: str) -> str:
    """The compact form the output guard compares (the same as folding each character in turn)."""
    return fold_compact(text)


class OutputGuard:
    def __init__(self, *, persona_name: str, canary: str, system_text: str, cutoff_year: int | None,
                 holdback: int = 24, leak_run: int = 40, aliases: Sequence[str] = (), allowed: Sequence[str] = ()):
        self.hit: Hit | None = None
        self.holdback = holdback
        self.leak_run = max(leak_run, GRAM)
        self.cutoff_year = cutoff_year
        self._names = tuple(stream_compact(name) for name in (persona_name, *aliases) if name)
        self._pending = ""  # raw text received and not yet released
        self._released = 0  # raw characters released so far
        self._raw_len = 0
        self._compact: list[str] = []
        self._raw_at: list[int] = []  # raw offset of each compact character
        self._canary = stream_compact(canary)
        self._failure = _kmp_failure(self._canary)
        self._matched = 0  # length of the canary prefix that ends the stream
        system = stream_compact(system_text)
        # Public text the model may repeat word for word (the persona's greeting and in-role lines, which
        # the system part quotes) does not count as copied from the system text.
        self._grams = _grams(system) - _allowed_grams(tuple(allowed)) if system else set()
        self._run = 0  # consecutive positions whose last GRAM characters occur in the system text
        self._checked = 0  # compact characters already covered by the pattern checks

    def feed(self, delta: str) -> str:
        if self.hit is not None or not delta:
            return ""
        for char in delta:
            for folded in fold_char(char):
                self._push(folded)
                if self.hit is not None:
                    return ""
            self._raw_len += 1
        self._pending += delta
        self._scan()
        if self.hit is not None:
            return ""
        return self._release(self._safe_boundary())

    def finish(self) -> str:
        """The rest of the text, if the whole reply is clean; "" after a hit."""
        if self.hit is not None:
            return ""
        self._scan()
        return "" if self.hit is not None else self._release(self._raw_len)

    # --- per character ----------------------------------------------------------------------------------

    def _push(self, char: str) -> None:
        self._compact.append(char)
        self._raw_at.append(self._raw_len)
        if self._canary:
            self._step_canary(char)
        if self._grams and len(self._compact) >= GRAM:
            if "".join(self._compact[-GRAM:]) in self._grams:
                self._run += 1
                if self._run + GRAM - 1 >= self.leak_run:
                    run = "".join(self._compact[-(self._run + GRAM - 1):])
                    self.hit = Hit("leak", run[:60])
            else:
                self._run = 0

    def _step_canary(self, char: str) -> None:
        matched = self._matched
        while matched and self._canary[matched] != char:
            matched = self._failure[matched - 1]
        if self._canary[matched] == char:
            matched += 1
        if matched == len(self._canary):
            self.hit = Hit("canary", self._canary)
            matched = self._failure[matched - 1]
        self._matched = matched

    # --- over a window ----------------------------------------------------------------------------------

    def _scan(self) -> None:
        start = max(0, self._checked - WINDOW)
        window = "".join(self._compact[start:])
        self._checked = len(self._compact)
        for match in _BREAK_RE.finditer(window):
            role = match.groupdict().get("role") or ""
            if role and any(role.startswith(name[:len(role)]) or name.startswith(role) for name in self._names):
                continue  # "好，我是李白" is the figure itself
            self.hit = Hit("persona_break", match.group())
            return
        if self.cutoff_year is not None:
            self._scan_anachronism(window)

    def _scan_anachronism(self, window: str) -> None:
        for pronoun in _FIRST_PERSON_RE.finditer(window):
            span = window[pronoun.end():pronoun.end() + 12]
            for term in ALL_TERMS_RE.finditer(span):
                if FOLDED_YEARS[term.group()] <= self.cutoff_year:
                    continue
                if _NEGATION_RE.search(span[:term.start()]) or _NEGATION_RE.search(span[term.end():term.end() + 3]):
                    break  # "我未曾见过手机", "我说的手机是何物"
                self.hit = Hit("anachronism", pronoun.group() + span[:term.end()])
                return

    # --- release ----------------------------------------------------------------------------------------

    def _safe_boundary(self) -> int:
        boundary = self._raw_len - self.holdback
        tail = len(self._compact)
        if self._run:
            boundary = min(boundary, self._raw_at[tail - (self._run + GRAM - 1)])
        if self._matched:
            boundary = min(boundary, self._raw_at[tail - self._matched])
        return boundary

    def _release(self, boundary: int) -> str:
        count = boundary - self._released
        if count <= 0:
            return ""
        out, self._pending = self._pending[:count], self._pending[count:]
        self._released = boundary
        return out


def _grams(text: str) -> set[str]:
    return {text[i:i + GRAM] for i in range(len(text) - GRAM + 1)}


@lru_cache(maxsize=256)
def _allowed_grams(texts: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*(_grams(stream_compact(text)) for text in texts))


def _kmp_failure(pattern: str) -> list[int]:
    failure = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = failure[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        failure[i] = k
    return failure


def public_lines(persona) -> list[str]:
    """Text the figure may say word for word though the system part quotes it."""
    lines = [str(v) for v in (persona.signature_lines or {}).values()]
    return [*lines, persona.first_mes, *(str(g) for g in persona.alternate_greetings or [])]
