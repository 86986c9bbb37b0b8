"""The heart of the product in a real Chromium: talk to 李白, watch the reply stream, stop it,
reload, regenerate, and switch between the two versions. The app runs under daphne (websockets)
and the model is a scripted upstream on loopback."""

from __future__ import annotations

import time

from tests.e2e.journeys import sign_up, start_chat
from tests.fakes.upstream import sse_reply

COMPLETIONS = "/api/v1/chat/completions"
SLOW = "床前明月光，疑是地上霜。举头望明月，低头思故乡。" * 4  # 96 characters, one every 80 ms
SECOND = "且放白鹿青崖间，须行即骑访名山。"


def _chunk(text: str) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


def _stream(text: str, gap: float):
    parts = []
    for char in text:
        parts += [_chunk(char), gap]
    parts += [{"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"id": "c1", "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": len(text)}},
              "data: [DONE]\n\n"]
    return sse_reply(parts)


def _user_bubbles(page):
    return page.locator("article.message-user")


def _streamed_states(page, wanted: int, timeout: float = 30.0) -> list[str]:
    """Distinct texts of the streaming bubble, polled while it grows."""
    states: list[str] = []
    deadline = time.monotonic() + timeout
    while len(states) < wanted and time.monotonic() < deadline:
        text = page.evaluate("() => document.querySelector('.streaming-text')?.textContent ?? null")
        if text and (not states or text != states[-1]):
            states.append(text)
        time.sleep(0.03)
    return states


def test_talk_stream_stop_reload_regenerate_switch(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, _stream(SLOW, 0.08), _stream(SECOND, 0.02))
    base = app.url

    sign_up(page, base, "traveller")

    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")  # the socket is open

    # Type through an input method: Enter while a composition is open must not send.
    page.focus("#chat-input")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "taibai", "selectionStart": 6, "selectionEnd": 6})
    page.keyboard.press("Enter")
    cdp.send("Input.imeSetComposition", {"text": "太白兄", "selectionStart": 3, "selectionEnd": 3})
    page.wait_for_timeout(300)
    assert _user_bubbles(page).count() == 0, "Enter during an IME composition sent the message"
    cdp.send("Input.insertText", {"text": "太白兄，月下独酌否？"})  # commits the composition
    # (Headless Chromium has no real IME to swallow that Enter, so the textarea may keep a newline.)
    assert page.input_value("#chat-input").strip() == "太白兄，月下独酌否？"
    page.keyboard.press("Enter")

    page.wait_for_selector("article.message-user >> text=太白兄，月下独酌否？")
    assert page.input_value("#chat-input") == ""
    states = _streamed_states(page, 4)
    assert len(states) >= 4, f"the reply did not grow progressively: {states}"
    assert all(SLOW.startswith(s) for s in states) and len(states[0]) < len(states[-1]) < len(SLOW)
    shot("chat-mid-stream")
    assert page.is_visible("#chat-stop")
    page.get_by_role("button", name="停止").click()
    stopped = page.locator("article.message-assistant[data-status=stopped]")
    stopped.wait_for()
    kept = stopped.locator(".message-body").inner_text().strip()
    assert 0 < len(kept) < len(SLOW) and SLOW.startswith(kept)
    assert upstream.requests[0].json()["messages"][-1]["content"].endswith("太白兄，月下独酌否？\n</用户消息>")
    # Stopping hung up on the model; the fake upstream's thread may notice a moment after the page.
    assert upstream.requests[0].closed_event.wait(30)

    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    last = page.locator("article.message").last
    assert last.get_attribute("data-status") == "stopped"
    assert "已停止" in last.locator(".badge").inner_text()
    assert last.locator(".message-body").inner_text().strip() == kept

    last.get_by_role("button", name="重新生成").click()
    done = page.locator("article.message-assistant[data-status=complete]").last
    page.wait_for_selector(f"article.message-assistant[data-status=complete] >> text={SECOND}")
    assert page.locator("article.message-assistant").last.locator(".switch-position").inner_text() == "2/2"
    assert not page.is_visible("#chat-stop")  # nothing left to stop
    assert len(upstream.requests) == 2
    # The regenerated reply answers the same question; the stopped one is not in its history.
    history = upstream.requests[1].json()["messages"]
    assert history[-1]["content"].endswith("太白兄，月下独酌否？\n</用户消息>") and kept not in str(history)

    page.locator("article.message-assistant").last.get_by_role("button", name="上一个版本").click()
    page.locator("article.message-assistant").last.locator(".switch-position >> text=1/2").wait_for()
    last = page.locator("article.message").last
    assert last.get_attribute("data-status") == "stopped"
    assert last.locator(".message-body").inner_text().strip() == kept
    last.get_by_role("button", name="下一个版本").click()
    page.locator("article.message-assistant").last.locator(".switch-position >> text=2/2").wait_for()
    # The swap settles a moment after the switcher shows 2/2: wait for the text, do not sample it.
    page.locator("article.message").last.get_by_text(SECOND).wait_for()
    assert done.is_visible()
    shot("chat-after-switch")

    page.reload()  # the switch was saved on the server
    assert SECOND in page.locator("article.message").last.inner_text()
    assert "Traceback" not in app.server_log()
