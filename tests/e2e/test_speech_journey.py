"""朗读 in a real Chromium: with 自动朗读 on, the first sentence of a reply sounds while the rest is
still being written (an <audio> whose currentTime advances on the scripted mp3), and 朗读 on the
finished reply reads it again from the cache, sentence by sentence."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, start_chat
from tests.fakes.speech import speech_handler
from tests.fakes.upstream import sse_reply

COMPLETIONS = "/api/v1/chat/completions"
SPEECH = "/api/v1/audio/speech"
WRITE_PAUSE = 12.0  # the model stops after the first sentence this long: a hang bound, not a timing


def chunk(text: str) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


def paused_reply():
    return sse_reply([chunk("君问何事？且"), WRITE_PAUSE, chunk("听白道来。"), chunk("明月几时有。"),
                      {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      "data: [DONE]\n\n"])


def speech_requests(upstream) -> list[str]:
    return [r.json()["input"] for r in upstream.requests if r.path == SPEECH]


def test_a_reply_is_read_aloud_as_it_is_written_and_again_on_request(app, upstream, page, shot):
    app.manage_output("shell", "-c", "from accounts.models import ApiCredential; "
                      "ApiCredential.objects.filter(owner=None).update(speech_model='tts-1')")
    upstream.route("POST", COMPLETIONS, paused_reply())
    upstream.route("POST", SPEECH, speech_handler(seconds=1.5), repeat=True)
    sign_up(page, app.url, "listener")
    start_chat(page, app.url)
    page.check("#chat-auto-read")
    page.wait_for_selector("#auto-read .saved")  # saved by htmx
    assert "已开启" in page.inner_text("#auto-read")

    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "太白，近来可好")
    page.keyboard.press("Enter")
    # The first sentence sounds while the model is still pausing before the second.
    page.wait_for_function("() => document.getElementById('chat-speech').currentTime > 0.2", timeout=60_000)
    assert page.locator(".streaming-text").count() == 1
    assert page.locator("article.message-assistant[data-status=complete]").count() == 1  # the greeting only
    assert speech_requests(upstream) == ["君问何事？"]
    shot("speech-auto-read-while-writing")

    done = page.locator("article.message-assistant[data-status=complete]").last
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=明月几时有", timeout=60_000)
    # The rest is read to its end, each sentence asked of the endpoint once (two fetched ahead at once).
    page.wait_for_function("() => { const a = document.getElementById('chat-speech');"
                           " return a.src.endsWith('/2.mp3') && a.ended; }", timeout=60_000)
    assert sorted(speech_requests(upstream)) == sorted(["君问何事？", "且听白道来。", "明月几时有。"])

    button = done.get_by_role("button", name="朗读")
    button.click()
    page.wait_for_function("() => { const a = document.getElementById('chat-speech');"
                           " return a.src.endsWith('/0.mp3') && a.currentTime > 0.2; }", timeout=60_000)
    assert done.get_by_role("button", name="停止朗读").get_attribute("aria-pressed") == "true"
    shot("speech-read-on-request")
    done.get_by_role("button", name="停止朗读").click()
    assert page.evaluate("() => document.getElementById('chat-speech').paused")
    assert done.get_by_role("button", name="朗读").is_visible()
    assert len(speech_requests(upstream)) == 3  # read again from the cache: no new call
    assert "Traceback" not in app.server_log()
