"""What a reply reads about its conversation and its user before the call, in one statement: the rolling
summary as the worker last wrote it (and whether a title was given), the user's preferences for the figure
and who the user says they are. It runs inside ReplyRun's one trip to the database before every reply
(tests/chat/test_hops.py), where compiling three ORM queries cost more than running them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.db import connection

from chat.models import Conversation, FigurePreference, UserPersona


@dataclass(frozen=True)
class ReplyContext:
    summary: str
    summary_through_id: int | None
    title_origin: str
    preference: FigurePreference | None  # as chat.recall.memories.preference_for gives it
    user_persona: list[UserPersona] = field(default_factory=list)  # as chat.userpersona.user_persona_rows


@functools.cache
def _sql() -> str:
    # Each LEFT JOIN meets at most one row: (owner, persona) is unique for both tables, and so is the
    # shared user persona (owner, persona NULL).
    return f"""
SELECT c.summary, c.summary_through_id, c.title_origin,
       p.id, p.personality, p.knowledge, p.language_style,
       f.id, f.name, f.description, s.id, s.name, s.description
  FROM {Conversation._meta.db_table} c
  LEFT JOIN {FigurePreference._meta.db_table} p ON p.owner_id = %s AND p.persona_id = %s
  LEFT JOIN {UserPersona._meta.db_table} f ON f.owner_id = %s AND f.persona_id = %s
  LEFT JOIN {UserPersona._meta.db_table} s ON s.owner_id = %s AND s.persona_id IS NULL
 WHERE c.id = %s"""


def reply_context(conversation_id: int, owner_id: int, persona_id: int) -> ReplyContext | None:
    with connection.cursor() as cursor:
        cursor.execute(_sql(), [owner_id, persona_id, owner_id, persona_id, owner_id, conversation_id])
        row = cursor.fetchone()
    if row is None:
        return None
    summary, through, origin, pref_id, personality, knowledge, style, own_id, own_name, own_text, \
        shared_id, shared_name, shared_text = row
    preference = None if pref_id is None else FigurePreference(
        pk=pref_id, owner_id=owner_id, persona_id=persona_id, personality=personality, knowledge=knowledge,
        language_style=style)
    rows = [UserPersona(pk=pk, owner_id=owner_id, persona_id=figure, name=name, description=text)
            for pk, figure, name, text in ((own_id, persona_id, own_name, own_text),
                                           (shared_id, None, shared_name, shared_text)) if pk is not None]
    return ReplyContext(summary, through, origin, preference, rows)
