"""The input tells its limit: a counter near it, a paste over it refused with a message, never cut."""

from __future__ import annotations

import pytest

from tests.e2e.journeys import sign_up, start_chat

LIMIT = 4000


@pytest.fixture
def chat_page(app, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.url)
    sign_up(page, app.url, "longwriter")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    return page


def paste(page, text: str) -> None:
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.focus("#chat-input")
    page.keyboard.press("Control+V")


def test_counter_and_refused_paste(chat_page, upstream, shot):
    page = chat_page
    counter = page.locator("#chat-input + .char-count")
    paste(page, "月" * 100)
    assert page.input_value("#chat-input") == "月" * 100  # a paste that fits goes in
    assert counter.inner_text() == ""  # far from the limit: no counter

    page.fill("#chat-input", "")
    paste(page, "江" * 3300)
    page.wait_for_function("() => document.querySelector('#chat-input + .char-count')?.textContent.includes('3300')")
    assert counter.inner_text().strip() == f"3300 / {LIMIT} 字"

    paste(page, "风" * 800)  # 4100 in all: refused whole, nothing cut
    page.wait_for_selector("#chat-input + .char-count.is-over")
    assert page.input_value("#chat-input") == "江" * 3300
    assert "未粘贴" in counter.inner_text() and "4100" in counter.inner_text()
    shot("input-limit-paste-refused")

    # Typed past the limit (no maxlength cuts it): red, and sending says why instead of sending.
    page.fill("#chat-input", "山" * (LIMIT + 5))
    page.dispatch_event("#chat-input", "input")
    assert "超出 5 字" in counter.inner_text()
    page.get_by_role("button", name="发送").click()
    page.wait_for_selector("#chat-notice >> text=消息太长了")
    assert page.locator("article.message-user").count() == 0
    assert page.input_value("#chat-input") == "山" * (LIMIT + 5)
    assert not [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    shot("input-limit-over")
