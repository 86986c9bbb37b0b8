"""Two-figure scenes: who answers a message, and which figure spoke a saved reply."""

from __future__ import annotations

from chat.models import Conversation, Message
from personas.models import Persona

TARGETS = ("both", "persona", "partner")


def addressees(conversation: Conversation, to: str | None, text: str) -> list[Persona]:
    """The figures that answer, in speaking order. Without an explicit choice, a message that names
    only one of the two figures goes to that one; anything else goes to both."""
    persona, partner = conversation.persona, conversation.partner
    if partner is None:
        return [persona]
    if to == "persona":
        return [persona]
    if to == "partner":
        return [partner]
    if to is None or to == "":
        named = [figure for figure in (persona, partner) if _named(figure, text)]
        if len(named) == 1:
            return named
    return [persona, partner]


def _named(figure: Persona, text: str) -> bool:
    return figure.name in text or bool(figure.nickname and figure.nickname in text)


def speaker_of(message: Message, conversation: Conversation) -> Persona:
    """The figure who spoke an assistant message (the conversation's figure unless the partner did)."""
    if conversation.partner_id is not None and message.speaker_id == conversation.partner_id:
        return conversation.partner
    return conversation.persona


def other_figure(conversation: Conversation, speaker: Persona) -> Persona | None:
    if conversation.partner_id is None:
        return None
    return conversation.partner if speaker.pk == conversation.persona_id else conversation.persona
