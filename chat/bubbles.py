"""The one renderer for a message bubble: the page and the websocket consumer both use it.

Pure rendering: it reads only the message's own fields and what is passed in (no relation is
touched), so the consumer can call it through sync_to_async without extra queries.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.template.loader import render_to_string
from django.utils.html import linebreaks
from django.utils.safestring import SafeString, mark_safe

from chat.citations import Citation, citable
from chat.models import Message
from chat.rendering import has_vertical_text, render_markdown
from chat.tools.runner import render_card
from chat.vision.services import file_url
from personas.models import Persona

# Why a reply failed, for the person reading it. Kinds come from the streaming layer.
ERROR_EXPLANATIONS = {
    "no_key": "尚未配置可用的大模型密钥，因此没有请人物作答。请先添加密钥，再重新生成。",
    "auth": "密钥无效、已失效或无权使用该模型，服务商拒绝了请求。请检查或替换密钥。",
    "billing": "模型服务账户余额不足或已欠费。请到服务商处充值后再重新生成。",
    "rate_limit": "请求过于频繁，服务商暂时限制了调用。请稍候片刻再重新生成。",
    "moderation": "内容未通过服务商的安全审核，回答被拦截。请换个说法再试。",
    "timeout": "模型服务长时间没有回应，请求已超时。请稍后重新生成。",
    "upstream": "模型服务暂时出错。请稍后重新生成。",
    "bad_request": "模型服务没有接受这次请求，可能是模型名称或接口设置有误。请检查密钥设置。",
    "unavailable": "所选模型暂时不可用。请稍后再试，或在设置中更换模型。",
    "no_vision": "当前密钥不支持识图，因此没有请人物看这幅图。请在设置中为密钥填写识图模型，再重新生成。",
    "interrupted": "回答中途断开，以上是已经写下的部分。可以续写或重新生成。",
    "internal": "本站内部出错，回答没有完成。请稍后重新生成。",
}
DEFAULT_EXPLANATION = "回答出错了，请稍后重新生成。"
# The process writing the reply went away (a restart, a crash): what was saved is shown.
INTERRUPTED_EXPLANATION = "书写途中本站服务中断，以上是已经保存的部分。可以续写，或重新生成。"
# A reply without an end yet: 续写 carries it on from its last word.
UNFINISHED = frozenset({Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.ERROR})


def can_continue(message: Message) -> bool:
    """续写 is offered (and accepted) for a figure's reply that ended unfinished with some text."""
    return (message.role == Message.Role.ASSISTANT and message.provider not in ("greeting", "guard")
            and message.parent_id is not None and message.status in UNFINISHED and bool(message.content))
# These two are fixed on the key settings page, so the bubble links there.
KEY_ERRORS = frozenset({"no_key", "auth", "no_vision"})


def error_explanation(error_kind: str) -> str:
    return ERROR_EXPLANATIONS.get(error_kind, DEFAULT_EXPLANATION)


def _body_html(message: Message, citations: Mapping[int, Citation]) -> SafeString:
    if message.role == Message.Role.ASSISTANT:
        # Model text is untrusted; it is safe only after render_markdown's nh3 pass (the source marks
        # are added after it, from the entries, escaped).
        return mark_safe(render_markdown(message.content, citations))
    # The user's words are shown as typed: escaped, with their line breaks.
    return mark_safe(linebreaks(message.content, autoescape=True))


def _switcher(message: Message, siblings: list[int]) -> dict | None:
    if len(siblings) < 2 or message.pk not in siblings:
        return None
    index = siblings.index(message.pk)
    return {
        "position": index + 1,
        "total": len(siblings),
        "previous": siblings[index - 1] if index > 0 else None,
        "next": siblings[index + 1] if index + 1 < len(siblings) else None,
    }


def _explanation(message: Message) -> str:
    if message.status == Message.Status.INTERRUPTED:
        return INTERRUPTED_EXPLANATION
    return error_explanation(message.error_kind) if message.status == Message.Status.ERROR else ""


def render_bubble(message: Message, *, siblings: list[int], persona: Persona, tool_runs=(), image=None,
                  citations: Mapping[int, Citation] | None = None, note: str = "") -> str:
    """`citations`: entries named in the text (chat.citations.citations_for); only those `persona` may
    cite become marks. `note`: the site's ruling on a verse game's line (chat/games.py)."""
    is_error = message.status == Message.Status.ERROR
    body = _body_html(message, citable(citations or {}, persona))
    context = {
        "message": message,
        "persona": persona,
        "is_assistant": message.role == Message.Role.ASSISTANT,
        "body": body,
        # 竖排 is offered where the reply holds a poem or a quoted passage (chat/rendering.py).
        "has_vertical": message.role == Message.Role.ASSISTANT and has_vertical_text(body),
        "explanation": _explanation(message),
        "links_to_keys": is_error and message.error_kind in KEY_ERRORS,
        "switcher": _switcher(message, siblings),
        # Greetings are the card's own words (a scene's second greeting has a parent too).
        "can_regenerate": message.role == Message.Role.ASSISTANT and message.parent_id is not None
        and message.provider != "greeting",
        "can_edit": message.role == Message.Role.USER,
        "can_continue": can_continue(message),
        # Written by a process elsewhere (another tab, or one that may have died): the bubble
        # follows the saved text until it ends or is found interrupted.
        "is_streaming": message.status == Message.Status.STREAMING,
        "tool_cards": [mark_safe(render_card(run)) for run in tool_runs],  # its template escapes the data
        "image": image,  # the picture the user showed with it (docs/vision.md)
        "image_url": file_url(image) if image is not None else "",
        "game_note": note,
    }
    return render_to_string("chat/_message.html", context)


def message_payload(message: Message, *, siblings: list[int], persona: Persona, tool_runs=(), image=None,
                    citations: Mapping[int, Citation] | None = None, note: str = "") -> dict:
    """The `M` object of docs/websocket.md."""
    return {
        "id": message.pk,
        "parent_id": message.parent_id,
        "role": message.role,
        "status": message.status,
        "error_kind": message.error_kind,
        "html": render_bubble(message, siblings=siblings, persona=persona, tool_runs=tool_runs, image=image,
                              citations=citations, note=note),
    }
