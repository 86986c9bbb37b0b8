"""Who speaks after a user message in a scene or a salon (雅集, docs/salon.md), and which figure spoke a
saved reply. Pure: the conversation's figures come loaded with it (`Conversation.objects.with_figures`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chat.models import Conversation, Message
from personas.models import Persona

ALL = ("all", "both")  # every figure answers ("both" from the two-figure scenes' pages)
HOST, FIRST_GUEST = "persona", "partner"
# A figure who was not addressed says only this when it has nothing to add; the site then hides it.
PASS_LINE = "（静听）"
_PASS_FORMS = frozenset({"（静听）", "(静听)", "静听", "（静听。）", "静听。", "（默然静听）"})


@dataclass(frozen=True)
class Cue:
    persona: Persona
    optional: bool = False  # not addressed: speaks only if it has something to add


@dataclass(frozen=True)
class Plan:
    cues: list[Cue]
    absent: str = ""  # a figure the user addressed who is not in the salon: the host says so, no call


def plan_turn(conversation: Conversation, to, text: str, *, max_turns: int, absent_names=()) -> Plan:
    """The speakers of one user message, in order: the addressed figures (explicit `to`, else the figures
    the message names, else everyone), then in a salon those not addressed, each of whom may pass;
    at most `max_turns` in all."""
    figures = conversation.figures
    if len(figures) == 1:
        return Plan([Cue(figures[0])])
    addressed = _explicit(figures, to)
    if addressed is None:
        named = [figure for figure in figures if _named(figure, text)]
        if not named:
            absent = next((name for name in absent_names if _called(name, text)), "")
            if absent:
                return Plan([Cue(figures[0])], absent=absent)
        addressed = named or figures
    others = [Cue(figure, optional=True) for figure in figures if figure not in addressed]
    # Two figures keep the scene's old turn: only the one addressed answers.
    cues = [Cue(figure) for figure in addressed] + (others if len(figures) > 2 else [])
    return Plan(cues[:max(1, max_turns)])


def _explicit(figures: list[Persona], to) -> list[Persona] | None:
    if to in (None, "", [], ()):
        return None
    if to in ALL:
        return list(figures)
    if to == HOST:
        return figures[:1]
    if to == FIRST_GUEST:
        return figures[1:2]
    slugs = [to] if isinstance(to, str) else list(to)
    chosen = [figure for figure in figures if figure.slug in slugs]
    return chosen or None  # only figures not in the salon: as if none was chosen


def _named(figure: Persona, text: str) -> bool:
    return figure.name in text or bool(figure.nickname and figure.nickname in text)


def _called(name: str, text: str) -> bool:
    """The message speaks to `name` (not merely about him): "@苏轼", or the name opening the message."""
    return f"@{name}" in text or re.match(rf"\s*(?:请问|敢问|请|问)?{re.escape(name)}[^\w]", text + " ") is not None


def absent_note(absent: str, figures: list[Persona]) -> str:
    """The host's short in-role note when the user speaks to someone who is not here (no model call)."""
    present = "、".join(figure.name for figure in figures)
    return f"{absent}并不在今日席上。此间座中只有{present}，你想问的话，不妨问我们。"


def is_pass(text: str) -> bool:
    return text.strip() in _PASS_FORMS


def speaker_of(message: Message, conversation: Conversation) -> Persona:
    """The figure who spoke an assistant message (the host unless a guest did)."""
    if message.speaker_id is not None:
        figure = conversation.figure(message.speaker_id)
        if figure is not None:
            return figure
    return conversation.persona


def others_of(conversation: Conversation, speaker: Persona) -> list[Persona]:
    """Everyone in the scene but the speaker, in seat order."""
    return [figure for figure in conversation.figures if figure.pk != speaker.pk]
