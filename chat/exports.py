"""The shown branch of a conversation as a Markdown document or JSON Lines, for download."""

from __future__ import annotations

import json

from django.utils import timezone

from chat.bubbles import error_explanation
from chat.models import Conversation, Message
from chat.scenes import speaker_of

_DATE = "%Y-%m-%d %H:%M"


def _local(value) -> str:
    return timezone.localtime(value).strftime(_DATE)


def _status_note(message: Message) -> str:
    if message.status == Message.Status.STOPPED:
        return "*（此回答已被停止，以上为停止前写下的部分。）*"
    if message.status == Message.Status.ERROR:
        return f"*（此回答出错：{error_explanation(message.error_kind)}）*"
    return ""


def branch_markdown(conversation: Conversation, messages: list[Message]) -> str:
    persona = conversation.persona
    lines = [
        f"# {conversation.title or f'与{persona.name}对话'}",
        "",
        f"- 人物：{persona.name}（{persona.get_dynasty_display()} · {persona.lifespan}）",
    ]
    if conversation.partner is not None:
        partner = conversation.partner
        lines.append(f"- 同场人物：{partner.name}（{partner.get_dynasty_display()} · {partner.lifespan}）")
    if conversation.life_stage is not None:
        lines.append(f"- 人生阶段：{conversation.life_stage}")
    if conversation.style_preset is not None:
        lines.append(f"- 语言风格：{conversation.style_preset.name}")
    lines += [
        f"- 开始于：{_local(conversation.created_at)}",
        f"- 最后更新：{_local(conversation.updated_at)}",
        f"- 导出于：{_local(timezone.now())}",
        "",
        "---",
        "",
    ]
    for message in messages:
        speaker = speaker_of(message, conversation).name if message.role == Message.Role.ASSISTANT else "我"
        lines += [f"**{speaker}**: {message.content}".rstrip(), ""]
        note = _status_note(message)
        if note:
            lines += [note, ""]
    return "\n".join(lines)


def branch_jsonl(messages: list[Message]) -> str:
    rows = (
        {
            "id": m.pk, "parent_id": m.parent_id, "role": m.role, "content": m.content, "status": m.status,
            "error_kind": m.error_kind, "model": m.model, "created_at": m.created_at.isoformat(),
        }
        for m in messages
    )
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def export_filename(conversation: Conversation, extension: str) -> str:
    # ASCII only: the slug and id make it unique and need no RFC 5987 encoding.
    return f"guyue-{conversation.persona.slug}-{conversation.pk}.{extension}"
