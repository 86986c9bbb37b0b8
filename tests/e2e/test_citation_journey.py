"""Source marks in a real Chromium: a reply that cites a knowledge entry shows the entry's mark while it
streams (never the raw id), keeps it after a reload, and an invented id is never shown."""

from __future__ import annotations

import sqlite3

from tests.e2e.journeys import sign_up, start_chat
from tests.fakes.upstream import sse_reply

COMPLETIONS = "/api/v1/chat/completions"

WATCH = """() => {
  window.__cites = {marks: 0, raw: false};
  new MutationObserver(() => {
    const live = document.querySelector("article.streaming .streaming-text");
    if (!live) return;
    if (live.textContent.includes("〔K")) window.__cites.raw = true;
    window.__cites.marks = Math.max(window.__cites.marks, live.querySelectorAll(".cite").length);
  }).observe(document.getElementById("message-list"), {childList: true, subtree: true, characterData: true});
}"""


def _entry(app) -> tuple[int, str]:
    with sqlite3.connect(app.env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute(
            "SELECT k.id, k.label FROM personas_knowledgeentry k JOIN personas_persona p ON p.id = k.persona_id "
            "WHERE p.slug = 'li-bai' AND (k.title LIKE '%赐金放还%' OR k.content LIKE '%赐金放还%') ORDER BY k.id"
        ).fetchone()


def _reply(*pieces: str):
    chunks = [{"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}}]}
              for p in pieces]
    return sse_reply([*chunks, {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      "data: [DONE]\n\n"])


def test_a_cited_reply_shows_its_mark_in_the_stream_and_after_a_reload(app, upstream, page, shot):
    sign_up(page, app.url, "reader")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    ref, label = _entry(app)
    # The id is split across chunks, as a model's tokens would split it.
    upstream.route("POST", COMPLETIONS, _reply("天宝三载，白蒙赐金放还〔K", f"{ref}", "〕。此外种种〔K99", "9999〕，不足道也。"))
    page.evaluate(WATCH)

    page.fill("#chat-input", "/查 赐金放还")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status='complete'] .message-body .cite")
    seen = page.evaluate("window.__cites")
    assert seen == {"marks": 1, "raw": False}, seen  # drawn while streaming, the raw id never shown

    mark = page.locator("article.message-assistant .message-body .cite").first
    assert mark.inner_text().startswith(label)  # the label is the entry's
    mark.focus()
    note = mark.locator(".cite-note")
    note.wait_for(state="visible")
    assert "《" in note.inner_text()
    shot("citation-mark-open")
    assert "K999999" not in page.inner_text("#message-list")

    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    marks = page.locator("article.message-assistant .message-body .cite")
    assert marks.count() == 1 and marks.first.get_attribute("data-ref") == f"K{ref}"
    assert "〔K" not in page.inner_text("#message-list")
