"""Steps the browser journeys share: a new account, a new conversation, a one-piece scripted reply."""

from __future__ import annotations

import re

from tests.fakes.upstream import sse_reply

PASSWORD = "Moon-over-river-7"


def sign_up(page, base: str, username: str) -> None:
    page.goto(base + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(base + "/")


def start_chat(page, base: str, slug: str = "li-bai") -> None:
    """Open the figure's page and start a new conversation from the start page (which offers the
    last one too, once there is one); returns once on the chat page."""
    page.goto(f"{base}/figures/{slug}/")
    page.get_by_role("link", name="开始对话").click()
    page.wait_for_url(f"**/chat/start/{slug}/")
    page.get_by_role("button", name=re.compile(r"^开始(新)?对话$")).click()
    page.wait_for_url("**/chat/*/")


def whole_reply(text: str):
    """A streamed reply that arrives in one chunk."""
    return sse_reply([
        {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        "data: [DONE]\n\n",
    ])
