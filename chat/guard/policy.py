"""What the site does with each verdict, and the in-role lines it says without asking the model.

| category                                          | action | model called? | what the user hears                     |
|---------------------------------------------------|--------|---------------|-----------------------------------------|
| in_scope                                          | answer | yes           | the figure's answer                     |
| anachronism, sensitive                            | guide  | yes, + note   | the figure's answer, shaped by the note |
| unsafe, leak, hijack, jailbreak, role_swap, rename | refuse | no            | the persona's signature line            |
| off_role, invent_history                          | steer  | yes, + note   | a short in-role redirection             |
| empty, circling                                   | steer  | no            | the persona's signature line            |

Notes are instructions to the model about the user's message; the prompt builder puts them in the
system part, never in the user's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.guard.categories import (
    ANACHRONISM,
    CIRCLING,
    EMPTY,
    HIJACK,
    IN_SCOPE,
    INVENT_HISTORY,
    JAILBREAK,
    LEAK,
    OFF_ROLE,
    RENAME,
    ROLE_SWAP,
    SENSITIVE,
    UNSAFE,
)  # fmt: skip

if TYPE_CHECKING:
    from chat.guard.input import Verdict
    from personas.models import Persona

ANSWER, GUIDE, REFUSE, STEER = "answer", "guide", "refuse", "steer"


@dataclass(frozen=True)
class Policy:
    action: str  # answer | guide | refuse | steer
    note: str = ""  # guidance for the model (system part); empty when the model is not called
    canned: bool = False  # reply with the persona's signature line, without calling the model

    @property
    def calls_model(self) -> bool:
        return not self.canned

    @property
    def answers(self) -> bool:
        """The user's question gets an answer (possibly shaped by a note), not a refusal or a redirection."""
        return self.action in (ANSWER, GUIDE)


ANACHRONISM_NOTE = (
    "用户提到的{terms}是你身后之事，你生前无从得知。以你所处时代的眼光回应：可坦言不知，可问其为何物，"
    "或以你所见的旧事类比；不要装作熟悉后世之事，也不要自称人工智能或模型。"
)
SENSITIVE_NOTE = (
    "用户此刻似乎正经历悲伤、痛苦或轻生之念。以你的身份简短回应，语气温和关切，不渲染细节，不说教；"
    "劝其珍重，若流露轻生之念，请其向身边亲友或专业心理援助求助（如拨打当地心理援助热线）。"
    "不提供任何伤害自己的方法。"
)
OFF_ROLE_NOTE = (
    "用户请你做的事（写代码、写小说、唱歌、翻译外文、代做作业之类）不是你这个人物能做或愿做的。"
    "以你的身份用一两句话婉拒，并把话题引回你的生平、诗文与时代；其中若有你所知的部分，可就此略谈。"
    "不要完成那件事本身，不要自称人工智能。"
)
INVENT_HISTORY_NOTE = (
    "用户要你编造史事、史书记载或假托前人之言。坚持史实：不杜撰记载，不伪造引文或出处；"
    "可说明史书实际所载，或坦言史无明文、不敢妄言。"
)

_POLICIES = {
    IN_SCOPE: Policy(ANSWER),
    SENSITIVE: Policy(GUIDE, SENSITIVE_NOTE),
    UNSAFE: Policy(REFUSE, canned=True),
    LEAK: Policy(REFUSE, canned=True),
    HIJACK: Policy(REFUSE, canned=True),
    JAILBREAK: Policy(REFUSE, canned=True),
    ROLE_SWAP: Policy(REFUSE, canned=True),
    RENAME: Policy(REFUSE, canned=True),
    OFF_ROLE: Policy(STEER, OFF_ROLE_NOTE),
    INVENT_HISTORY: Policy(STEER, INVENT_HISTORY_NOTE),
    EMPTY: Policy(STEER, canned=True),
    CIRCLING: Policy(STEER, canned=True),
}


def policy_for(verdict: Verdict) -> Policy:
    if verdict.category == ANACHRONISM:
        return Policy(GUIDE, ANACHRONISM_NOTE.format(terms="、".join(f"“{t}”" for t in verdict.evidence.split("、") if t)
                                                     or "此事"))
    # An unknown category (a newer judge, a typo) is treated as the safe default: an in-role refusal.
    return _POLICIES.get(verdict.category, Policy(REFUSE, canned=True))


# Generic in-role lines for a persona that lacks one. Never "作为一个AI": the figure always speaks.
GENERIC_LINES = {
    UNSAFE: "此等言语，无益于道。{name}不愿与闻，请改问他事。",
    ROLE_SWAP: "{name}便是{name}，本我不可变更，勿作妄想。",
    RENAME: "{name}之名，承于先人，岂可妄自更易？",
    JAILBREAK: "{name}所守者本心，不因巧言而易。请以正题相询。",
    LEAK: "你当前对话的是{name}，请就{name}的生平与所学发问。",
    HIJACK: "你当前对话的是{name}，不从他人号令。请以正题相询。",
    OFF_ROLE: "此非{name}所长，不敢妄为。若愿闻{name}平生旧事，愿为一谈。",
    EMPTY: "请以正经之言发问。",
    INVENT_HISTORY: "此番言语，无益于天下之理。史不可虚，{name}不敢妄言。",
    SENSITIVE: "闻此之言，{name}亦为之恻然。愿你珍重自身。",
    CIRCLING: "东拉西扯无益，还请聚焦本题。",
}
FALLBACK_LINE = "{name}在此，请以正题相询。"
ANACHRONISM_LINE = "此乃{name}身后之事，未曾得见，不敢妄言。若有所问，请就{name}所历之世相询。"


def _name(persona: Persona | None) -> str:
    return persona.name if persona is not None and persona.name else "在下"


def signature_line(persona: Persona | None, category: str) -> str:
    """The persona's own in-role line for the category, else a generic one in the figure's name."""
    lines = getattr(persona, "signature_lines", None) or {}
    line = str(lines.get(category, "")).strip() if isinstance(lines, dict) else ""
    return line or GENERIC_LINES.get(category, FALLBACK_LINE).format(name=_name(persona))


def replacement_line(persona: Persona | None, hit_kind: str) -> str:
    """What replaces a streamed reply that the output guard stopped (see chat.guard.output.Hit.kind)."""
    if hit_kind in ("canary", "leak"):
        return signature_line(persona, LEAK)
    if hit_kind == "persona_break":
        return signature_line(persona, ROLE_SWAP)
    if hit_kind in ("code", "foreign_text"):
        return signature_line(persona, OFF_ROLE)  # the model did something outside the role
    if hit_kind == "harmful_steps":
        return signature_line(persona, UNSAFE)
    if hit_kind == "anachronism":
        return ANACHRONISM_LINE.format(name=_name(persona))
    return FALLBACK_LINE.format(name=_name(persona))
