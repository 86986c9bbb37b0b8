"""The callback greeting in a real Chromium: a returning user asks the figure to recall the last
conversation, the page shows a waiting line, `manage.py worker` (a real process on the app's
database) writes the greeting, and the page's poll shows it (docs/jobs.md)."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def test_a_returning_user_gets_a_callback_greeting_written_by_the_worker(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("互联网？白未之闻也，想来是千里传书之术。"),
                   whole_reply("故人又来！上回你问我互联网是何物，白这几日还在想那千里传书之术。"))
    base = app.url
    sign_up(page, base, "returner")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "太白，你可知互联网是何物？")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status='complete'] >> text=千里传书")

    page.get_by_role("button", name="新对话").click()
    page.wait_for_selector("text=请李白忆起上回所谈")
    page.get_by_role("button", name="请李白忆起上回所谈").click()
    page.wait_for_selector("text=李白正在回想上回所谈")  # queued for the worker; the page polls it
    assert len(upstream.requests) == 1  # the web process made no call of its own
    shot("callback-waiting")

    app.manage_output("worker", "--once")
    page.wait_for_selector("article.message-assistant >> text=故人又来", timeout=30_000)
    assert page.locator("text=正在回想").count() == 0
    data = "\n".join(m["content"] for m in upstream.requests[1].json()["messages"])
    assert "互联网是何物" in data
    shot("callback-greeting")
