"""Memory in a real Chromium: "记住……" in a message, 记住这句 under a reply, preferences on the
figure's card, and the 记忆 page (edit, pin, delete), against daphne and a scripted upstream."""

from __future__ import annotations

import json

from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def _system(request) -> str:
    return "\n".join(m["content"] for m in request.json()["messages"] if m["role"] == "system")


def test_remember_prefer_and_manage_memories(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("好，白记下了：边塞诗，君之所爱。"), whole_reply("大漠孤烟直，长河落日圆。"))
    base = app.url
    sign_up(page, base, "rememberer")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")

    page.fill("#chat-input", "记住我喜欢边塞诗")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat-memory:has-text('已记住：我喜欢边塞诗')")
    page.wait_for_selector("article.message-assistant[data-status='complete'] >> text=君之所爱")

    # Preferences on the figure's card shape the next request.
    page.fill("#pref-personality", "温和耐心")
    page.fill("#pref-language_style", "白话为主")
    page.get_by_role("button", name="保存偏好").click()
    page.wait_for_selector("#figure-preferences >> text=已保存")
    page.fill("#chat-input", "说一句边塞诗")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=长河落日圆")
    second = _system(upstream.requests[1])
    assert "个性倾向：温和耐心" in second and "我喜欢边塞诗" in second

    # 记住这句 under the figure's reply (a bubble that arrived over the websocket).
    reply = page.locator("article.message-assistant", has_text="长河落日圆")
    reply.get_by_role("button", name="记住这句").click()
    reply.locator("text=已记住").wait_for()
    shot("memory-chat")

    page.get_by_role("link", name="记忆", exact=True).click()
    page.wait_for_url("**/chat/memories/")
    items = page.locator(".memory-item")
    assert items.count() == 2
    assert page.locator(".memory-content", has_text="李白曾说：大漠孤烟直，长河落日圆。").count() == 1

    first = items.filter(has_text="我喜欢边塞诗")
    first.locator("summary", has_text="修改").click()
    first.locator("textarea").fill("我喜欢边塞诗，尤爱王昌龄")
    first.get_by_role("button", name="保存").click()
    page.wait_for_selector(".memory-content:has-text(\"尤爱王昌龄\")")
    page.locator(".memory-item", has_text="尤爱王昌龄").get_by_role("button", name="置顶").click()
    page.wait_for_selector(".memory-item.is-pinned .memory-content:has-text(\"尤爱王昌龄\")")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".memory-item", has_text="李白曾说").get_by_role("button", name="删除").click()
    page.wait_for_function("() => document.querySelectorAll('.memory-item').length === 1")
    shot("memory-page")

    exported = page.request.get(base + "/chat/memories/export.json").json()
    assert [m["content"] for m in exported["memories"]] == ["我喜欢边塞诗，尤爱王昌龄"]
    assert json.dumps(exported, ensure_ascii=False).count("温和耐心") == 1
