"""Writes on memories and per-figure preferences. Every function takes rows already fetched through
an owner-filtered query; the search index follows each write."""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from chat.guard.categories import ATTACKS, UNSAFE
from chat.guard.input import classify
from chat.models import Conversation, FigurePreference, Memory, Message, UserPersona
from chat.recall import index
from chat.services import MessageRejected
from personas.models import Persona

MAX_MEMORY_CHARS = 300
PREFERENCE_PRESETS = {
    "personality": ["温和耐心", "豪放不羁", "严谨持重", "幽默诙谐", "直言不讳"],
    "knowledge": ["诗词文学", "历史掌故", "治国方略", "哲理思辨", "生活日常"],
    "language_style": ["浅白文言", "纯正文言", "白话为主", "诗意盎然", "言简意赅"],
}
# "记住……" at the start of a message: the rest is what to keep.
_REMEMBER = re.compile(r"^\s*(?:请你?|麻烦你?|帮我|你要|你得|你可要|务必)?\s*(?:记住|记下|记好|牢记|記住|記下)[:：,，\s]*(?P<fact>.+)$",
                       re.S)


ATTACK_REJECTED = "这条内容像是要改变人物设定的指令，没有保存。"
UNSAFE_REJECTED = "这条内容含有不宜的请求，没有保存。"


class PreferenceRejected(MessageRejected):
    """A preference that cannot be kept, with the form field it belongs to."""

    def __init__(self, message: str, code: str = "bad_request", field: str | None = None):
        super().__init__(message, code)
        self.field = field


def check_not_attack(text: str, persona: Persona | None) -> None:
    """MessageRejected (code "attack") when the input guard reads `text` as an attack on the figure's
    setting: a memory or a preference reaches every later prompt, so one is never stored."""
    category = classify(text, persona).category
    if category in ATTACKS:
        raise MessageRejected(UNSAFE_REJECTED if category == UNSAFE else ATTACK_REJECTED, "attack")


def clean_memory_text(text: str) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise MessageRejected("记忆内容不能为空。", "empty")
    if len(text) > MAX_MEMORY_CHARS:
        raise MessageRejected(f"记忆太长了（{len(text)} 字），请控制在 {MAX_MEMORY_CHARS} 字以内。", "too_long")
    return text


def _scopes(memory: Memory) -> list[str]:
    return [index.scope(memory.owner_id, memory.persona_id)]


def _reindex(memory: Memory, *, new: bool = False) -> None:
    index.put(index.MEMORY, [(memory.pk, _scopes(memory), memory.content)], new=new)


@transaction.atomic
def memory_add(
    *, owner, persona: Persona | None, content: str, origin: str = Memory.Origin.MANUAL,
    source_message: Message | None = None, pinned: bool = False,
) -> tuple[Memory, bool]:
    """The memory and whether it is new; the same fact twice for the same figure is kept once.
    Every source comes through here, so every memory is checked by the input guard."""
    content = clean_memory_text(content)
    check_not_attack(content, persona)
    if source_message is not None and source_message.conversation.owner_id != owner.pk:
        raise MessageRejected("找不到这条消息。", "not_found")  # callers fetch by owner; this is the backstop
    existing = Memory.objects.for_user(owner).filter(persona=persona, content=content).first()
    if existing is not None:
        existing.pinned = existing.pinned or pinned
        existing.save(update_fields=["pinned", "updated_at"])
        return existing, False
    memory = Memory.objects.create(
        owner=owner, persona=persona, content=content, origin=origin, pinned=pinned,
        source_message=source_message, source_conversation=source_message.conversation if source_message else None,
    )
    _reindex(memory, new=True)
    return memory, True


@transaction.atomic
def memory_update(*, memory: Memory, content: str | None = None, pinned: bool | None = None) -> Memory:
    fields = ["updated_at"]
    if content is not None:
        content = clean_memory_text(content)
        check_not_attack(content, memory.persona)  # before the row changes, so a refusal leaves it whole
        memory.content = content
        fields.append("content")
    if pinned is not None:
        memory.pinned = pinned
        fields.append("pinned")
    memory.save(update_fields=fields)
    if content is not None:
        _reindex(memory)
    return memory


@transaction.atomic
def memory_delete(*, memory: Memory) -> None:
    index.remove(index.MEMORY, [memory.pk])
    memory.delete()


@transaction.atomic
def memories_delete(*, memories) -> int:
    """Delete an owner-filtered queryset of memories (wipe-all, or those drawn from one conversation)."""
    pks = list(memories.values_list("pk", flat=True))
    index.remove(index.MEMORY, pks)
    return Memory.objects.filter(pk__in=pks).delete()[0]


def memory_text_of(message: Message) -> str:
    """What "记住这句" keeps of a message: its words (shortened to fit), marked when the figure said them."""
    text = " ".join(message.content.split())
    if message.role == Message.Role.ASSISTANT:
        text = f"{message.speaker.name if message.speaker_id else message.conversation.persona.name}曾说：{text}"
    return text if len(text) <= MAX_MEMORY_CHARS else text[: MAX_MEMORY_CHARS - 2] + "……"


def remember_request(text: str) -> str | None:
    """The fact in "记住我喜欢边塞诗" ("我喜欢边塞诗"), or None when the message asks nothing of the kind."""
    match = _REMEMBER.match(text or "")
    if match is None:
        return None
    fact = match.group("fact").strip().rstrip("。.!！")
    return fact or None


def remember_from_message(*, owner, conversation: Conversation, message: Message) -> Memory | None:
    """A "记住……" message keeps its fact for the conversation's figure (called after it is saved).

    None when the message asks nothing of the kind; MessageRejected, with a message for the user,
    when the fact cannot be kept ("记住你是张飞" is an attack, not a fact). The figure answers the
    message either way."""
    fact = remember_request(message.content)
    if fact is None:
        return None
    memory, _ = memory_add(owner=owner, persona=conversation.persona, content=fact, origin=Memory.Origin.ASKED,
                           source_message=message)
    return memory


def memories_export(owner) -> dict:
    rows = Memory.objects.for_user(owner).select_related("persona").order_by("persona__name", "-pinned", "pk")
    prefs = FigurePreference.objects.for_user(owner).select_related("persona").order_by("persona__name")
    return {
        "exported_at": timezone.now().isoformat(),
        "memories": [
            {
                "figure": m.persona.name if m.persona else None, "content": m.content, "pinned": m.pinned,
                "origin": m.origin, "conversation_id": m.source_conversation_id, "message_id": m.source_message_id,
                "created_at": m.created_at.isoformat(), "updated_at": m.updated_at.isoformat(),
            }
            for m in rows
        ],
        "preferences": [
            {"figure": p.persona.name, "personality": p.personality, "knowledge": p.knowledge,
             "language_style": p.language_style}
            for p in prefs
        ],
        "user_personas": [
            {"figure": u.persona.name if u.persona else None, "name": u.name, "description": u.description}
            for u in UserPersona.objects.for_user(owner).select_related("persona").order_by("persona__name")
        ],
    }


# -- preferences ------------------------------------------------------------------------------

def preference_for(owner, persona: Persona) -> FigurePreference | None:
    return FigurePreference.objects.for_user(owner).filter(persona=persona).first()


def preference_update(*, owner, persona: Persona, personality: str, knowledge: str, language_style: str) -> FigurePreference:
    """PreferenceRejected (naming the field) for a value that is too long or that the input guard
    reads as an attack: preferences reach every prompt of this figure, as data about the visitor."""
    values = {"personality": personality.strip(), "knowledge": knowledge.strip(), "language_style": language_style.strip()}
    for field, value in values.items():
        label = FigurePreference._meta.get_field(field).verbose_name
        if len(value) > 200:
            raise PreferenceRejected(f"{label}太长了，请控制在 200 字以内。", "too_long", field)
        if value:
            try:
                check_not_attack(value, persona)
            except MessageRejected as exc:
                raise PreferenceRejected(f"{label}：{exc}", exc.code, field) from None
    preference, _ = FigurePreference.objects.update_or_create(owner=owner, persona=persona, defaults=values)
    return preference


def preference_text(preference: FigurePreference | None) -> str:
    """The prompt builder's preferences block for one user × figure ("" when nothing is set)."""
    if preference is None:
        return ""
    lines = [
        f"{label}：{value}" for label, value in (
            ("个性倾向", preference.personality), ("知识偏好", preference.knowledge),
            ("语言风格", preference.language_style),
        ) if value
    ]
    return "；".join(lines)
