"""Tools in a real Chromium: a toolbar button and a slash command each run their tool, the card
shows during the stream and after a reload, and a plain message sends no tools."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def test_button_and_slash_command(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("天宝三载，白离长安。"), whole_reply("互联网？白未之闻也。"), whole_reply("好。"))
    base = app.url
    sign_up(page, base, "toolsmith")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")

    page.fill("#chat-input", "赐金放还")
    page.locator(".tool-button[data-tool='history_search']").click()
    page.wait_for_selector("article.message-assistant[data-status='complete'] .tool-card")
    card = page.locator("article.message-assistant .tool-card").first
    assert "历史知识库" in card.inner_text()
    card.locator("summary").click()
    assert "《" in card.inner_text()  # the citation's book
    first = upstream.requests[0].json()
    assert first["messages"][-1]["role"] == "tool" and "tools" not in first

    page.fill("#chat-input", "/考据 你怎么看互联网")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=白未之闻也")
    page.wait_for_selector("article.message-assistant .tool-card >> text=历史语义匹配")

    page.check("#chat-allow-tools")
    page.fill("#chat-input", "今天天气如何")
    page.uncheck("#chat-allow-tools")  # changed its mind: a plain message
    page.keyboard.press("Enter")
    page.wait_for_selector("text=好。")
    assert "tools" not in upstream.requests[2].json()

    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    assert page.locator(".tool-card").count() == 2
    shot("tools-chat")
