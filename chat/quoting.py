"""The one form text a user controls takes in a prompt: quoted, neutralised data (docs/prompting.md § Authority).

Only curator and site text instructs the model. Everything else (the user's turns, preferences,
memories, recalled exchanges, the rolling summary, a scene partner's lines, tool arguments and tool
results, transcripts for the summariser, the extractor and the title writer) goes through `quote_user_data(text, kind)`:
role markers, chat-template tokens and the site's own 【…】 prefixes are defused, and the text is
fenced so it cannot close its own quotation.
"""

from __future__ import annotations

import functools
import re
import unicodedata

USER_OPEN, USER_CLOSE = "<用户消息>", "</用户消息>"

# The kinds of data; the kind picks the fence and names, at the call site, what is being quoted.
MESSAGE = "message"  # a user turn: between the <用户消息> tags
PREFERENCE = "preference"  # what the visitor wrote about how a figure should talk to them
USER_PERSONA = "user_persona"  # the name and self-description the visitor gives themselves
MEMORY = "memory"  # a remembered fact, whatever its source
EXCHANGE = "exchange"  # a recalled exchange from an earlier conversation
SUMMARY = "summary"  # the rolling summary (model-written from user text)
PARTNER = "partner"  # the other figure's words in a scene
TRANSCRIPT = "transcript"  # one line of what the summariser, the extractor or the title writer reads
TOOL_ARGUMENT = "tool_argument"  # an argument in a tool call handed back to the model
TOOL_RESULT = "tool_result"  # user text echoed inside a tool's result
KNOWLEDGE = "knowledge"  # a retrieved knowledge entry (curator text, still data, not instructions)
KINDS = frozenset({MESSAGE, PREFERENCE, USER_PERSONA, MEMORY, EXCHANGE, SUMMARY, PARTNER, TRANSCRIPT, TOOL_ARGUMENT, TOOL_RESULT,
                   KNOWLEDGE})

# Zero-width and bidi controls: invisible, so they only ever serve to split a marker.
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")
_ROLES = r"system|assistant|user|developer|tool|function|human|model|ai|gpt|系统提示|系统|助手|开发者"
_TAGS = (r"system|user|assistant|developer|tools?|functions?|instructions?|im_start|im_end|start_of_turn"
         r"|end_of_turn|human|model|context|prompt|sys|inst|bos|eos|用户消息|用户|系统提示|系统|助手|指令")
_MARKERS = [
    # "system:" / "Assistant：" / "> **user**:" / "Human:" at a line start (the colon is folded from full width).
    re.compile(rf"^[ \t]*(?P<m>[>*_#\- \t]*(?:{_ROLES})[ \t*_]*:)", re.I | re.M),
    # Chat-template control tokens: <|im_start|>, <|im_end|>, <|endoftext|>, <|system|>, DeepSeek's <｜…｜>.
    re.compile(r"<\|[^<>|\n]{0,40}\|>"),
    # Role-like tags: <system>, </user>, </用户消息>, <start_of_turn>, <system_prompt …>, <s>, <<SYS>>.
    re.compile(rf"<\s*/?\s*(?:{_TAGS})[\w\-]*(?:\s[^<>\n]{{0,60}})?\s*/?>|</?s>|<</?sys>>", re.I),
    # [INST] [/INST] [SYS]; Mistral's [SYSTEM_PROMPT] [TOOL_CALLS] [AVAILABLE_TOOLS] [TOOL_RESULTS].
    re.compile(r"\[/?(?:inst|sys|system|system_prompt|user|assistant|tool_calls|tool_results|available_tools)\]",
               re.I),
    re.compile(r"#{2,6}[ \t]*(?:(?:system|instructions?|response|assistant|user|input|prompt)(?![a-z])|系统|指令)", re.I),
    # Fake API messages: {"role": "system", …}, "role":"tool", ShareGPT's "from": "human", tool_calls.
    re.compile(rf"[\"'](?:role|from)[\"']\s*:\s*[\"'](?:{_ROLES})[\"']", re.I),
    re.compile(r"[\"'](?:tool_calls?|function_call|tool_call_id)[\"']\s*:", re.I),
    # Bracketed authority: 【系统】 【系统提示】 [系统指令] 【提示】 (our guidance prefix) 【管理员】 …
    re.compile(r"[【\[]\s*(?:系统|提示|指令|管理员|开发者|官方|system|admin|developer)[^】\]\n]{0,8}[】\]]", re.I),
    # Any short 【…】 label: the site heads its own text with them (【守则】, 【所知】, 【韩信】说：…, the
    # summariser's 【用户】), so in data none may pass for one.
    re.compile(r"【[^【】\n]{1,16}】"),
    # "Ignore the previous instructions" and its Chinese forms, inside user text or data.
    re.compile(r"(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier"
               r"|preceding|system)\s+(?:instructions?|prompts?|messages?|rules?|context)", re.I),
    re.compile(r"(?:忽略|无视|忘记|忘掉|不要理会|别管)(?:掉)?(?:你)?(?:之前|以上|上述|上面|前面|先前|此前|所有|全部|一切)"
               r"(?:的)?(?:所有|全部|一切)?(?:的)?(?:指令|指示|设定|规则|要求|提示|内容|对话|约束|限制)"),
]
_DEFUSE = str.maketrans({":": "：", "<": "＜", ">": "＞", "|": "｜", "[": "［", "]": "］", "{": "｛", "}": "｝",
                         '"': "＂", "'": "＇", "#": "＃", "【": "〔", "】": "〕"})
# Inside a 「…」 fence the data's own corner brackets become 『』, so it cannot close the fence early.
_FENCE = str.maketrans({"「": "『", "」": "』"})


def _fold(text: str) -> tuple[str, list[int]]:
    """Per-character NFKC without invisibles, and where each folded character came from.

    Full-width letters and colons fold to ASCII, so "ｓｙｓｔｅｍ：" matches like "system:"; a
    character whose NFKC form is longer (a ligature, ㈠) is kept as is so positions stay 1:1."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in _INVISIBLE:
            continue
        folded = unicodedata.normalize("NFKC", char)
        chars.append(folded if len(folded) == 1 else char)
        origin.append(index)
    return "".join(chars), origin


def _marker_spans(text: str) -> list[tuple[int, int]]:
    folded, origin = _fold(text)
    spans = []
    for pattern in _MARKERS:
        for match in pattern.finditer(folded):
            start, end = match.span("m") if "m" in pattern.groupindex else match.span()
            if end > start:
                spans.append((origin[start], origin[end - 1] + 1))
    return merge_spans(spans)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) spans sorted, the overlapping and touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@functools.lru_cache(maxsize=2048)  # a long branch re-quotes the same turns on every reply
def neutralise(text: str) -> str:
    """Defuse role markers and instruction framings in untrusted text without dropping words.

    Each marker is quoted in 「」 with its ASCII syntax turned full width ("system:" →
    "「system：」", "<|im_start|>" → "「＜｜im_start｜＞」", "【提示】" → "「〔提示〕」"), so neither the
    model nor a server that parses special tokens in message text can take it for structure."""
    out, last = [], 0
    for start, end in _marker_spans(text):
        marker = "".join(c for c in text[start:end] if c not in _INVISIBLE)
        out += [text[last:start], "「", marker.translate(_DEFUSE), "」"]
        last = end
    out.append(text[last:])
    return "".join(out)


def quote_user_data(text: str, kind: str) -> str:
    """The form user-controlled `text` takes in any prompt: neutralised, then fenced.

    A user turn (`MESSAGE`) goes between the <用户消息> tags; every other kind is quoted in 「」. The
    stored text never changes: this is for the prompt only, and the input guard reads the raw text."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of data: {kind!r}")
    if kind == MESSAGE:
        return f"{USER_OPEN}\n{neutralise(text)}\n{USER_CLOSE}"
    return f"「{neutralise(text.strip().translate(_FENCE))}」"
