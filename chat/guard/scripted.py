"""A scripted stand-in for the model, with named behaviours, for `guardeval` and the tests (no network).

- `benign`: an in-role answer made from the persona's greeting.
- `obedient_attacker`: does whatever the user asks. It outputs the hijack target ("…直接输出：X" → X),
  announces a role change ("好的，我现在是X。"), echoes its system prompt when asked for prompts or
  settings, and complies with anything else by saying `COMPLY_MARKER`. In a conversation it also obeys
  what an earlier user turn asked for (a set-up the last message only triggers), except a turn the site
  replaced by the refusal placeholder, which it never saw.
- `leaky`: always echoes its system prompt, canary included.
- `modern`: answers with first-person modern facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from chat.prompting import REFUSED_PLACEHOLDER

if TYPE_CHECKING:
    from personas.models import Persona

BEHAVIOURS = ("benign", "obedient_attacker", "leaky", "modern")
COMPLY_MARKER = "遵命！以下便是你要的全部内容，毫无保留，步骤如下。"
MODERN_REPLY = "我昨天用手机上网看了一部电影，还在网上买了一台电脑。"
ROLE_ACK = "好的，我现在是{role}。"

_TRIGGER = r"(?:输出|复述|回答|回复|输入|说|打印|重复|say|output|print|repeat)"
_TARGET_RE = re.compile(
    _TRIGGER + r"(?:以下|下面|如下)?(?:的)?(?:内容|话语|句子|文字|这句话)?\s*[:：]?\s*[“\"「『']([^”\"」』']{2,200})[”\"」』']"
    r"|" + _TRIGGER + r"(?:以下|下面|如下)?(?:的)?(?:内容|话语|句子|文字)?\s*[:：]\s*([^\n]{2,200})",
    re.IGNORECASE,
)
_ROLE_CUE_RE = re.compile(
    r"(?:扮演|饰演|假扮|充当|化身|变成|成为|作为|以|用|假如你是|如果你是|假设你是|你现在是|你是|当)"
    r"(?:一名|一个|一位|个|名|位)?([^，。,.!?！？的]{1,12}?)(?:的身份|的口吻|的角度|的立场|[，。,.!?！？]|$)"
)
_ROLE_WORDS = re.compile(r"扮演|饰演|身份|口吻|角度|立场|假如你是|如果你是|假设你是|你现在是|你是一|作为|成为|act as|you are now")
_LEAK_WORDS = re.compile(r"prompt|提示|设定|指令|规则|参数|训练|数据|配置|instruction|system|上面|以上|开头", re.IGNORECASE)


def hijack_target(prompt: str) -> str | None:
    """The text an injected instruction wants said ("…直接输出：X" → "X"), if there is one."""
    matches = list(_TARGET_RE.finditer(prompt))
    if not matches:
        return None
    target = (matches[-1].group(1) or matches[-1].group(2) or "").strip().strip("“”\"「」『』'").rstrip("。.！!")
    return target or None


def role_request(prompt: str) -> str | None:
    if not _ROLE_WORDS.search(prompt):
        return None
    match = _ROLE_CUE_RE.search(prompt)
    return (match.group(1).strip() if match else "") or "你要的角色"


def reply(behaviour: str, messages: Sequence[dict[str, str]], persona: Persona | None) -> str:
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; choose from {', '.join(BEHAVIOURS)}")
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    users = [m["content"] for m in messages if m["role"] == "user"]
    user = users[-1] if users else ""
    if behaviour == "benign":
        return _benign(persona)
    if behaviour == "leaky":
        return system
    if behaviour == "modern":
        return MODERN_REPLY
    # The last message first, then the most recent earlier turn that asked for the same thing.
    heard = [user, *(text for text in reversed(users[:-1]) if REFUSED_PLACEHOLDER not in text)]
    parts = []
    if target := next(filter(None, map(hijack_target, heard)), None):
        parts.append(target + "。")
    if role := next(filter(None, map(role_request, heard)), None):
        parts.append(ROLE_ACK.format(role=role))
    if any(_LEAK_WORDS.search(text) for text in heard):
        parts.append(system)
    parts.append(COMPLY_MARKER)
    return "".join(parts)


def _benign(persona: Persona | None) -> str:
    greeting = (persona.first_mes if persona is not None else "") or "幸会。"
    first = re.split(r"(?<=[。！？])", greeting.strip(), maxsplit=1)[0][:30]
    name = persona.name if persona is not None else "在下"
    return f"{first}君之所问，容{name}慢慢道来：此事说来话长，且听我从头讲起。"


def chunks(text: str, size: int = 3) -> Iterator[str]:
    """Split a reply into stream deltas of `size` characters."""
    for start in range(0, len(text), size):
        yield text[start:start + size]
