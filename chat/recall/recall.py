"""Recall before each reply: pinned memories, the most relevant others, and relevant exchanges from
earlier conversations with the same figure, within a token budget (docs/memory.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from chat.models import PASSED, WITHHELD_ACTIONS, Conversation, Memory, Message
from chat.prompting import estimate_tokens
from chat.recall import index

TOP_MEMORIES = 5
TOP_EXCHANGES = 3
MAX_PINNED = 20
EXCHANGE_REPLY_CHARS = 160  # a recalled reply is a reminder, not a transcript
RECALL_TOKEN_BUDGET = 1500


@dataclass
class Recalled:
    memories: list[str] = field(default_factory=list)  # pinned first
    exchanges: list[str] = field(default_factory=list)  # most relevant first
    memory_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)  # the user messages of the exchanges


def memory_scopes(owner_id: int, persona_id: int) -> list[str]:
    return [index.scope(owner_id, persona_id), index.scope(owner_id, None)]


def _memory_line(memory: Memory) -> str:
    said = "（用户原话）" if memory.origin in (Memory.Origin.ASKED, Memory.Origin.ACTION) else ""
    return f"{memory.content}{said}"


def relevant_memories(owner, persona_id: int, text: str, limit: int = TOP_MEMORIES) -> list[Memory]:
    hits = index.search(index.MEMORY, memory_scopes(owner.pk, persona_id), text, limit * 3)
    # No ordering: with Meta's ordering SQLite walks the owner's index instead of looking up the ids.
    by_id = (
        Memory.objects.for_user(owner).filter(Q(persona_id=persona_id) | Q(persona__isnull=True)).order_by()
        .in_bulk([pk for pk, _ in hits])
    )
    found, seen = [], set()
    for pk, _ in hits:
        memory = by_id.get(pk)
        if memory is not None and memory.content not in seen:  # the same fact twice would waste a place
            seen.add(memory.content)
            found.append(memory)
    return found[:limit]


# The exchange lookup written as SQL: it runs before every reply, and
# building the query through the ORM cost about 4 ms of CPU a reply, several times the query itself.
_EXCHANGES_SQL = """
SELECT q.id, q.conversation_id, q.content, q.created_at,
       (SELECT r.content FROM chat_message r
         WHERE r.parent_id = q.id AND r.role = %s AND r.content <> '' AND r.guard_action <> %s
         ORDER BY r.id LIMIT 1) AS reply_text
  FROM chat_message q JOIN chat_conversation c ON c.id = q.conversation_id
 WHERE q.id IN ({ids}) AND c.owner_id = %s AND q.role = %s
   AND (c.persona_id = %s OR EXISTS (SELECT 1 FROM chat_salonseat s WHERE s.conversation_id = c.id AND s.persona_id = %s))
   AND q.conversation_id <> %s
   AND NOT EXISTS (SELECT 1 FROM chat_message w WHERE w.parent_id = q.id AND w.guard_action IN ({withheld}))
"""


def relevant_exchanges(owner, persona_id: int, text: str, *, exclude_conversation: int | None,
                       limit: int = TOP_EXCHANGES) -> list[tuple[Message, str | None]]:
    """(user message, the first reply it got) from the owner's other conversations with this figure.
    One query: the reply's text comes along as a subquery (recall runs before every reply). A message
    the guard refused or steered is never recalled, whichever of its replies did so."""
    hits = index.search(index.MESSAGE, [index.scope(owner.pk, persona_id)], text, limit * 4)
    if not hits:
        return []
    ids = [pk for pk, _ in hits]
    withheld = sorted(WITHHELD_ACTIONS)
    sql = _EXCHANGES_SQL.format(ids=", ".join(["%s"] * len(ids)), withheld=", ".join(["%s"] * len(withheld)))
    params = [Message.Role.ASSISTANT, PASSED, *ids, owner.pk, Message.Role.USER, persona_id, persona_id,
              -1 if exclude_conversation is None else exclude_conversation, *withheld]
    questions = {message.pk: message for message in Message.objects.raw(sql, params)}
    chosen = [questions[pk] for pk in ids if pk in questions][:limit]
    return [(question, question.reply_text) for question in chosen]


def exchange_line(question: Message, reply: str | None) -> str:
    """One earlier exchange as the prompt quotes it: dated, each side shortened."""
    when = question.created_at.strftime("%Y-%m-%d")
    line = f"{when}，用户问：{question.content[:EXCHANGE_REPLY_CHARS]}"
    if reply:
        answer = reply if len(reply) <= EXCHANGE_REPLY_CHARS else reply[:EXCHANGE_REPLY_CHARS] + "……"
        line += f"；你答：{answer}"
    return line


def recall_for(owner, conversation: Conversation, persona_id: int, text: str,
               budget: int = RECALL_TOKEN_BUDGET) -> Recalled:
    """Everything recalled for one reply: pinned memories (all, up to MAX_PINNED), then the most
    relevant others, then earlier exchanges, each added while the budget lasts."""
    recalled, room = Recalled(), budget
    # `pinned__in=[True]`: Django writes `pinned=True` as a bare column, which SQLite cannot seek an
    # index with; IN (1) uses the (owner, pinned, persona) index instead of reading every memory.
    pinned = list(
        Memory.objects.for_user(owner).filter(Q(persona_id=persona_id) | Q(persona__isnull=True), pinned__in=[True])
        .order_by("-updated_at")[:MAX_PINNED]
    )
    seen = {m.pk for m in pinned}
    relevant = [m for m in relevant_memories(owner, persona_id, text) if m.pk not in seen] if text else []
    for memory in [*pinned, *relevant]:
        line = _memory_line(memory)
        cost = estimate_tokens(line)
        if cost > room:
            continue
        recalled.memories.append(line)
        recalled.memory_ids.append(memory.pk)
        room -= cost
    if text:
        for question, reply in relevant_exchanges(owner, persona_id, text, exclude_conversation=conversation.pk):
            line = exchange_line(question, reply)
            cost = estimate_tokens(line)
            if cost > room:
                continue
            recalled.exchanges.append(line)
            recalled.message_ids.append(question.pk)
            room -= cost
    return recalled


def index_user_message(message: Message, conversation: Conversation) -> None:
    """What the user says is searchable later by its owner, with each figure of the conversation."""
    scopes = [index.scope(conversation.owner_id, figure.pk) for figure in conversation.figures]
    index.put(index.MESSAGE, [(message.pk, scopes, message.content)], new=True)
