"""语音对话 in Chromium with a fake microphone: the page hears an utterance end in silence, the
transcription is sent as a message (through the same path and guards as a typed one), the reply is
read aloud, and the page listens again; the same button ends it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e.conftest import chromium, fake_microphone
from tests.e2e.journeys import sign_up, start_chat, whole_reply
from tests.fakes.speech import speech_handler
from tests.fakes.upstream import json_reply

HEARD = "太白兄，今夜月色如何？"
ENABLE = ("from accounts.models import ApiCredential; ApiCredential.objects.filter(owner=None)"
          ".update(transcription_model='whisper-1', speech_model='tts-1')")


@pytest.fixture(scope="module")
def utterance_wav(tmp_path_factory):
    """Speech, then three seconds of silence: Chromium loops the file, so each turn ends in quiet."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed (make test-setup installs them)")
    folder = tmp_path_factory.mktemp("mic")
    spoken, padded = folder / "spoken.wav", folder / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(spoken), HEARD], check=True, capture_output=True, timeout=60)
    subprocess.run(["sox", str(spoken), str(padded), "pad", "0", "3"], check=True, capture_output=True, timeout=60)
    return padded


@pytest.fixture(scope="module")
def browser(utterance_wav):
    """This module's own Chromium: a fake microphone that plays the wav."""
    with chromium(*fake_microphone(utterance_wav)) as recording:
        yield recording


def test_a_spoken_turn_is_sent_answered_read_and_the_page_listens_again(app, page, upstream, shot):
    sign_up(page, app.url, "duihua")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    mode = page.locator("#chat-voice-mode")
    assert mode.is_disabled()  # no transcription or speech model yet: the button says why
    assert "听写模型与朗读模型" in mode.get_attribute("title")

    app.manage_output("shell", "-c", ENABLE)
    upstream.route("POST", "/api/v1/audio/transcriptions", json_reply(200, {"text": HEARD}), repeat=True)
    upstream.route("POST", "/api/v1/chat/completions", whole_reply("月明如昼，正好举杯。"))
    upstream.route("POST", "/api/v1/audio/speech", speech_handler(seconds=1.5), repeat=True)
    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    assert not page.locator("#chat-auto-read").is_checked()  # 语音对话 reads without the switch
    mode.click()
    page.wait_for_selector("#chat-voice-mode[aria-pressed=true]")

    # The utterance ends in silence: its text is sent as the user's message, never typed by anyone.
    page.wait_for_selector(f"article.message-user >> text={HEARD}", timeout=60_000)
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=月明如昼", timeout=60_000)
    page.wait_for_function("() => document.getElementById('chat-speech').currentTime > 0.2", timeout=60_000)
    shot("handsfree-reading")
    # Read to its end, the page listens for the next turn.
    page.wait_for_function("() => document.getElementById('chat-voice-status').textContent.includes('正在聆听')"
                           " && document.getElementById('chat-speech').ended", timeout=60_000)
    chat_calls = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert len(chat_calls) == 1 and HEARD in chat_calls[0].json()["messages"][-1]["content"]
    assert [r.json()["input"] for r in upstream.requests if r.path.endswith("/audio/speech")] == ["月明如昼，正好举杯。"]

    mode.click()
    assert mode.get_attribute("aria-pressed") == "false" and "语音对话已结束" in page.inner_text("#chat-voice-status")
    shot("handsfree-ended")
