"""A conversation as a Markdown document or JSON Lines, for download: the shown branch, or the
whole tree (every branch; the JSON Lines keep each message's parent so the tree can be rebuilt)."""

from __future__ import annotations

import json

from django.utils import timezone

from chat.bubbles import error_explanation
from chat.citations import Citation, citable, citations_for, plain_marks
from chat.models import Conversation, Message
from chat.scenes import speaker_of
from chat.tree import Node, Tree

_DATE = "%Y-%m-%d %H:%M"


def _local(value) -> str:
    return timezone.localtime(value).strftime(_DATE)


def _status_note(message: Message) -> str:
    if message.status == Message.Status.STOPPED:
        return "*（此回答已被停止，以上为停止前写下的部分。）*"
    if message.status == Message.Status.ERROR:
        return f"*（此回答出错：{error_explanation(message.error_kind)}）*"
    return ""


def _header(conversation: Conversation) -> list[str]:
    persona = conversation.persona
    lines = [
        f"# {conversation.title or f'与{persona.name}对话'}",
        "",
        f"- 人物：{persona.name}（{persona.get_dynasty_display()} · {persona.lifespan}）",
    ]
    for guest in conversation.guests:
        lines.append(f"- 同场人物：{guest.name}（{guest.get_dynasty_display()} · {guest.lifespan}）")
    if conversation.life_stage is not None:
        lines.append(f"- 人生阶段：{conversation.life_stage}")
    if conversation.style_preset is not None:
        lines.append(f"- 语言风格：{conversation.style_preset.name}")
    return lines + [
        f"- 开始于：{_local(conversation.created_at)}",
        f"- 最后更新：{_local(conversation.updated_at)}",
        f"- 导出于：{_local(timezone.now())}",
    ]


def _speaker(message: Message, conversation: Conversation) -> str:
    return speaker_of(message, conversation).name if message.role == Message.Role.ASSISTANT else "我"


def _cited(messages: list[Message]) -> dict[int, Citation]:
    return citations_for(m.content for m in messages if m.role == Message.Role.ASSISTANT)


def _text(message: Message, conversation: Conversation, cited: dict[int, Citation]) -> str:
    """The words as the page shows them: a figure's source ids become 〔史载·《书》·篇〕 (chat/citations.py)."""
    if message.role != Message.Role.ASSISTANT:
        return message.content
    return plain_marks(message.content, citable(cited, speaker_of(message, conversation)))


def _message_lines(message: Message, conversation: Conversation, cited: dict[int, Citation]) -> list[str]:
    lines = [f"**{_speaker(message, conversation)}**: {_text(message, conversation, cited)}".rstrip(), ""]
    note = _status_note(message)
    return lines + [note, ""] if note else lines


def branch_markdown(conversation: Conversation, messages: list[Message]) -> str:
    lines = [*_header(conversation), "", "---", ""]
    cited = _cited(messages)
    for message in messages:
        lines += _message_lines(message, conversation, cited)
    return "\n".join(lines)


def excerpt(text: str, limit: int = 24) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "……"


def tree_markdown(conversation: Conversation, messages: list[Message]) -> str:
    """Every branch as a section: the shown one first and whole, each other one from where it
    parts from a branch already written, so no message is written twice."""
    by_id = {m.pk: m for m in messages}
    tree = Tree(Node(m.pk, m.parent_id) for m in messages)
    leaves = tree.leaves()
    if conversation.active_leaf_id in by_id:
        leaves.remove(conversation.active_leaf_id)
        leaves.insert(0, conversation.active_leaf_id)
    lines = [*_header(conversation), f"- 分支：共 {len(leaves)} 条", ""]
    cited = _cited(messages)
    written: list[list[int]] = []
    for number, leaf in enumerate(leaves, start=1):
        path = tree.path_to(leaf)
        shared, source = 0, 0
        for index, earlier in enumerate(written, start=1):
            common = next((i for i, (a, b) in enumerate(zip(path, earlier, strict=False)) if a != b),
                          min(len(path), len(earlier)))
            if common > shared:
                shared, source = common, index
        title = f"## 分支 {number}" + ("（当前显示）" if leaf == conversation.active_leaf_id else "")
        lines += ["---", "", title, ""]
        if shared:
            fork = by_id[path[shared - 1]]
            lines += [f"*前 {shared} 条同分支 {source}（至{_speaker(fork, conversation)}：「{excerpt(fork.content)}」），"
                      "此后：*", ""]
        for pk in path[shared:]:
            lines += _message_lines(by_id[pk], conversation, cited)
        written.append(path)
    return "\n".join(lines)


def _row(message: Message, conversation: Conversation, cited: dict[int, Citation]) -> dict:
    return {
        "id": message.pk, "parent_id": message.parent_id, "role": message.role,
        "speaker": speaker_of(message, conversation).name if message.role == Message.Role.ASSISTANT else None,
        "content": _text(message, conversation, cited), "status": message.status, "error_kind": message.error_kind,
        "model": message.model, "created_at": message.created_at.isoformat(),
        # The shown branch is root → this message; a reader rebuilds it from the parent ids.
        "active_leaf": message.pk == conversation.active_leaf_id,
    }


def messages_jsonl(conversation: Conversation, messages: list[Message]) -> str:
    """One object per message, in the order given (a branch root first, or the tree by id, so a
    parent always comes before its children)."""
    cited = _cited(messages)
    return "".join(json.dumps(_row(m, conversation, cited), ensure_ascii=False) + "\n" for m in messages)


def export_filename(conversation: Conversation, extension: str, *, tree: bool = False) -> str:
    # ASCII only: the slug and id make it unique and need no RFC 5987 encoding.
    return f"guyue-{conversation.persona.slug}-{conversation.pk}{'-tree' if tree else ''}.{extension}"
