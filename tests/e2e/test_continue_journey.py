"""The server dies mid-reply (SIGKILL), comes back, and the reader still has the text: the bubble
turns 已中断, and 续写 carries the reply on from its last saved word, in a real Chromium."""

from __future__ import annotations

import signal

import pytest

from tests.chat.test_restart import slow_stream  # 40 s of sentences: still streaming when killed
from tests.e2e.journeys import sign_up, start_chat, whole_reply
from tests.e2e.live_app import LiveApp

COMPLETIONS = "/api/v1/chat/completions"
ENDING = "且听下回分解。"


@pytest.fixture
def app(tmp_path, upstream):
    live = LiveApp(tmp_path, upstream.url + "/api/v1", REPLY_CHECKPOINT_SECONDS="1", REPLY_LEASE_SECONDS="2").start()
    yield live
    live.stop()


def test_a_reply_cut_by_a_crash_is_kept_and_continued(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, slow_stream(), whole_reply(ENDING))
    sign_up(page, app.url, "crashed")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "讲一个很长的故事")
    page.keyboard.press("Enter")

    # Some sentences are on the page and at least one checkpoint holds them.
    page.wait_for_function("() => (document.querySelector('.streaming-text')?.textContent ?? '').includes('第12句')",
                           timeout=60_000)
    page.wait_for_timeout(1500)  # one checkpoint interval more: what is shown is (almost all) saved
    seen = page.evaluate("() => document.querySelector('.streaming-text').textContent")
    app.kill(signal.SIGKILL)
    app.serve()

    page.reload()
    interrupted = page.locator("article.message-assistant[data-status=interrupted]")
    interrupted.wait_for(timeout=60_000)  # at once, or after the bubble's poll once the lease lapsed
    kept = interrupted.locator(".message-body").inner_text().strip()
    assert kept and seen.startswith(kept) and "第12句" in kept
    assert "已中断" in interrupted.locator(".badge").inner_text()
    assert interrupted.get_by_role("button", name="重新生成").is_visible()
    shot("chat-interrupted")

    page.wait_for_selector("#chat-send:not([disabled])")
    interrupted.get_by_role("button", name="续写").click()
    done = page.locator(f"article.message-assistant[data-status=complete] >> text={ENDING}")
    done.wait_for(timeout=60_000)
    text = page.locator("article.message-assistant").last.locator(".message-body").inner_text().strip()
    assert text.startswith(kept) and text.endswith(ENDING)
    assert page.locator("article.message-assistant").last.locator(".switch-position").inner_text() == "2/2"
    # The model was given the partial reply to carry on from, as its own words.
    history = upstream.requests[-1].json()["messages"]
    assert {"role": "assistant", "content": kept} in history
    shot("chat-continued")
    assert "Traceback" not in app.server_log()
