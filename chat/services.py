"""Writes on conversations. Regenerate, edit-and-resend and switching siblings all add nodes to
the message tree and move the conversation's active leaf; nothing is ever overwritten."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.db.models.functions import Now
from django.utils import timezone

from chat.models import MAX_GUESTS, PASSED, Conversation, Message, SalonSeat, seats_prefetch
from chat.recall import index
from chat.recall.recall import index_user_message
from chat.selectors import conversation_tree
from personas.models import LifeStage, Persona, StylePreset


class MessageRejected(ValueError):
    """Bad input from the user; the message is fit to show, the code is for the client."""

    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


# C0 controls but tab and newline, and DEL: never typed, and PostgreSQL refuses NUL in text.
_CONTROLS = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_user_text(text) -> str:
    """The user's words as they may be stored, or MessageRejected with a message fit to show."""
    if not isinstance(text, str):
        raise MessageRejected("消息内容必须是文字。")
    # A lone surrogate (an escaped half of an emoji; a whole pair arrives as one character) cannot
    # be encoded or stored: mark its place.
    text = _SURROGATE.sub("\ufffd", text).translate(_CONTROLS).strip()
    if not text:
        raise MessageRejected("请输入要说的话。", "empty")
    if len(text) > settings.MAX_MESSAGE_CHARS:
        raise MessageRejected(
            f"消息太长了（{len(text)} 字），请控制在 {settings.MAX_MESSAGE_CHARS} 字以内。", "too_long"
        )
    return text


@transaction.atomic
def conversation_start(
    *, owner, persona: Persona, life_stage: LifeStage | None = None, style_preset: StylePreset | None = None,
    guests: list[Persona] = (),
) -> Conversation:
    """A new conversation; with guests, a scene (one) or a salon (up to MAX_GUESTS), seated in order."""
    if life_stage is not None and life_stage.persona_id != persona.pk:
        raise MessageRejected("所选人生阶段不属于这位人物。")
    guests = list(guests)
    if persona in guests or len({guest.pk for guest in guests}) != len(guests):
        raise MessageRejected("同场人物不能重复。")
    if len(guests) > MAX_GUESTS:
        raise MessageRejected(f"一场雅集最多 {MAX_GUESTS + 1} 位人物。")
    conversation = Conversation.objects.create(
        owner=owner, persona=persona, life_stage=life_stage, style_preset=style_preset,
    )
    SalonSeat.objects.bulk_create(SalonSeat(conversation=conversation, persona=guest, position=number)
                                  for number, guest in enumerate(guests, 1))
    prefetch_related_objects([conversation], seats_prefetch())
    conversation.title = conversation.names if guests else f"与{persona.name}对话"
    conversation.save(update_fields=["title"])
    # The greetings open the branch so the model sees what the figures already said. The card's
    # alternate greetings are sibling roots after the first, so the ‹ › switcher offers them.
    leaves = [_greeting(conversation, text, guests) for text in greetings_of(persona)]
    _move_leaf(conversation, leaves[0])
    return conversation


def greetings_of(persona: Persona) -> list[str]:
    """The card's first message, then each non-empty alternate greeting once, with the card macros
    filled in: {{char}} is the figure and {{user}} the reader ("你": a greeting speaks to them, and
    it goes back to the model as the figure's own turn, so no user-written name is put in it)."""
    texts: list[str] = []
    for text in [persona.first_mes, *(persona.alternate_greetings or [])]:
        if isinstance(text, str) and text.strip():
            text = text.replace("{{char}}", persona.name).replace("{{user}}", "你")
            if text not in texts:
                texts.append(text)
    return texts or [persona.first_mes]


def _greeting(conversation: Conversation, text: str, guests: list[Persona]) -> Message:
    """One root greeting (the host's: no speaker), then each guest's; returns the branch's leaf."""
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content=text,
        provider="greeting", finished_at=timezone.now(),
    )
    for guest in guests:
        message = Message.objects.create(
            conversation=conversation, parent=message, role=Message.Role.ASSISTANT, content=greetings_of(guest)[0],
            provider="greeting", speaker=guest, finished_at=timezone.now(),
        )
    return message


def _move_leaf(conversation: Conversation, message: Message) -> None:
    conversation.active_leaf = message
    conversation.save(update_fields=["active_leaf", "updated_at"])


def message_add_user(*, conversation: Conversation, text: str, parent: Message | None = None) -> Message:
    """Save the user's words before anything calls out; parent defaults to the shown leaf.

    Not atomic on purpose: two statements, and a message that exists but is not yet the leaf loses
    nothing (the streaming path counts its queries)."""
    message = user_message_new(conversation=conversation, text=text, parent=parent)
    user_message_save(conversation=conversation, message=message)
    return message


def user_message_new(*, conversation: Conversation, text: str, parent: Message | None = None) -> Message:
    """The user's message, checked but not yet saved: the reply saves it in its first trip to the
    database (chat/streaming.py), before anything calls out."""
    parent_id = parent.pk if parent is not None else conversation.active_leaf_id
    return Message(conversation=conversation, parent_id=parent_id, role=Message.Role.USER,
                   content=clean_user_text(text))


def user_message_save(*, conversation: Conversation, message: Message) -> None:
    message.save(force_insert=True)
    _move_leaf(conversation, message)
    index_user_message(message, conversation)


def message_edit(*, conversation: Conversation, original: Message, text: str) -> Message:
    """Edit-and-resend: a sibling of the original user message, which stays in the tree."""
    if original.role != Message.Role.USER or original.conversation_id != conversation.pk:
        raise MessageRejected("只能修改自己说过的话。")
    return message_add_user(conversation=conversation, text=text, parent=original.parent)


def reply_save(
    *, conversation: Conversation, parent: Message, content: str, status: str, error_kind: str = "",
    model: str = "", provider: str = "", prompt_tokens: int | None = None, completion_tokens: int | None = None,
    guard_action: str = "", guard_category: str = "", speaker: Persona | None = None,
) -> Message:
    """Save a reply once, at its end: complete, or the partial text with its stopped/error status."""
    reply = Message.objects.create(
        conversation=conversation, parent=parent, role=Message.Role.ASSISTANT, content=content, status=status,
        error_kind=error_kind, model=model, provider=provider, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, finished_at=timezone.now(), guard_action=guard_action,
        guard_category=guard_category, speaker=speaker,
    )
    _move_leaf(conversation, reply)
    return reply


def reply_begin(
    *, conversation: Conversation, parent: Message, model: str = "", provider: str = "",
    speaker: Persona | None = None, content: str = "", credential=None,
) -> Message:
    """A streamed reply's row, written as it starts (status `streaming`) so that what the user sees
    survives the process (chat/durable.py checkpoints it). It is the shown leaf at once: the next
    message follows the reply, never the question it answers."""
    reply = Message.objects.create(
        conversation=conversation, parent=parent, role=Message.Role.ASSISTANT, content=content,
        status=Message.Status.STREAMING, model=model, provider=provider, speaker=speaker, heartbeat_at=Now(),
        credential=credential,
    )
    reply.heartbeat_at = None  # the database's clock wrote it; nothing here reads it back
    _move_leaf(conversation, reply)
    return reply


def reply_finish(
    *, reply: Message, content: str, status: str, error_kind: str = "", prompt_tokens: int | None = None,
    completion_tokens: int | None = None, guard_action: str = "", guard_category: str = "",
) -> Message:
    """The end of a streamed reply: one UPDATE, whatever its length."""
    fields = {
        "content": content, "status": status, "error_kind": error_kind, "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens, "guard_action": guard_action, "guard_category": guard_category,
        "finished_at": timezone.now(),
    }
    Message.objects.filter(pk=reply.pk).update(**fields)
    for name, value in fields.items():
        setattr(reply, name, value)
    if guard_action == PASSED:  # a salon figure kept silent: the branch goes on from what it heard
        Conversation.objects.filter(pk=reply.conversation_id, active_leaf=reply).update(active_leaf=reply.parent_id)
    return reply


def message_flag(*, message: Message, category: str) -> None:
    """Record what the input guard made of a user message (only when it is not plainly in scope)."""
    Message.objects.filter(pk=message.pk).update(guard_category=category)
    message.guard_category = category


def branch_switch(*, conversation: Conversation, message: Message) -> Message:
    """Show another sibling: land on the newest leaf below it."""
    if message.conversation_id != conversation.pk:
        raise MessageRejected("消息不属于这段对话。")
    leaf_id = conversation_tree(conversation).latest_leaf_under(message.pk)
    leaf = conversation.messages.get(pk=leaf_id)
    _move_leaf(conversation, leaf)
    return leaf


def branch_show(*, conversation: Conversation, message: Message) -> bool:
    """Show the branch that holds `message` (a search result): the shown one if it already does, so a
    deeper reply the user is reading stays; else the newest leaf below it. True when the leaf moved."""
    if message.conversation_id != conversation.pk:
        raise MessageRejected("消息不属于这段对话。")
    tree = conversation_tree(conversation)
    if message.pk in tree.path_to(conversation.active_leaf_id):
        return False
    conversation.active_leaf_id = tree.latest_leaf_under(message.pk)
    conversation.save(update_fields=["active_leaf", "updated_at"])
    return True


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """The owner's title: from now on no title job writes over it (chat/titles.py)."""
    conversation.title = title
    conversation.title_origin = Conversation.TitleOrigin.USER
    conversation.save(update_fields=["title", "title_origin", "updated_at"])
    return conversation


def conversation_archive_toggle(*, conversation: Conversation) -> Conversation:
    conversation.archived = not conversation.archived
    conversation.save(update_fields=["archived", "updated_at"])
    return conversation


def conversation_settings_update(
    *, conversation: Conversation, life_stage: LifeStage | None, style_preset: StylePreset | None
) -> Conversation:
    if life_stage is not None and life_stage.persona_id != conversation.persona_id:
        raise MessageRejected("所选人生阶段不属于这位人物。")
    conversation.life_stage = life_stage
    conversation.style_preset = style_preset
    conversation.save(update_fields=["life_stage", "style_preset", "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation, with_memories: bool = False) -> None:
    """Delete a conversation; its messages leave the search index, and with `with_memories` so do
    the memories drawn from it (otherwise they stay, unlinked)."""
    if with_memories:
        from chat.recall.memories import memories_delete  # it imports this module
        memories_delete(memories=conversation.memories.filter(owner=conversation.owner_id))
    index.remove(index.MESSAGE, list(conversation.messages.filter(role=Message.Role.USER).values_list("pk", flat=True)))
    conversation.delete()
