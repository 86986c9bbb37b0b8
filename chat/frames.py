"""Frames from the chat socket, checked by shape before anything acts on them (docs/websocket.md).

A frame of the wrong shape is refused here with a message fit to show, before the conversation's
reply lock is taken, so no input can leave the conversation busy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chat.scenes import ALL, FIRST_GUEST, HOST
from chat.services import MessageRejected, clean_user_text

KINDS = ("send", "regenerate", "edit", "continue", "stop")
ADDRESSEES = (*ALL, HOST, FIRST_GUEST)  # the words the turn planner knows (chat/scenes.py)
_SLUG = re.compile(r"^[-a-z0-9_]{1,50}$")
MAX_ADDRESSEES = 4  # a salon's figures (docs/salon.md)
_NEEDS_TEXT = ("send", "edit")
_NEEDS_MESSAGE = ("regenerate", "edit", "continue")
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Frame:
    type: str
    text: str = ""
    parent_id: int | None = None
    message_id: int | None = None
    tool: str | None = None
    tools: bool = False
    to: str | tuple[str, ...] | None = None  # one of ADDRESSEES, or figures' slugs
    image_id: int | None = None  # a picture attached to a `send` (docs/vision.md)


def _id(value, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    # bool is an int in Python; an id is never true or false.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
        raise MessageRejected("消息编号无效。")
    return value


def _optional(content: dict, name: str, kind: type, allowed=None):
    value = content.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (allowed is not None and value not in allowed):
        raise MessageRejected("无法识别的请求。")
    return value


def _addressees(content: dict):
    """Who the user speaks to: a word the turn planner knows, or a list of figures' slugs."""
    value = content.get("to")
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in ADDRESSEES:
        return value
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ADDRESSEES \
            or not all(isinstance(name, str) and _SLUG.match(name) for name in value):
        raise MessageRejected("无法识别的请求。")
    return tuple(value)


def parse_frame(content) -> Frame:
    if not isinstance(content, dict) or content.get("type") not in KINDS:
        raise MessageRejected("无法识别的请求。")
    kind = content["type"]
    return Frame(
        type=kind,
        text=clean_user_text(content.get("text")) if kind in _NEEDS_TEXT else "",
        parent_id=_id(content.get("parent_id"), required=False) if kind == "send" else None,
        message_id=_id(content.get("message_id"), required=True) if kind in _NEEDS_MESSAGE else None,
        tool=_optional(content, "tool", str) if kind == "send" else None,
        tools=bool(_optional(content, "tools", bool)) if kind == "send" else False,
        to=_addressees(content) if kind in _NEEDS_TEXT else None,
        image_id=_id(content.get("image_id"), required=False) if kind == "send" else None,
    )
