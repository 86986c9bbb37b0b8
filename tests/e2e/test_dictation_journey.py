"""语音输入 in Chromium with a fake microphone: record, stop, and the scripted transcription lands in
the input box, unsent. The microphone plays a wav made here with Debian's espeak-ng (or sox)."""

from __future__ import annotations

import shutil
import subprocess
from email.parser import BytesParser
from email.policy import HTTP

import pytest

from chat.speech_input import formats
from tests.e2e.conftest import chromium, fake_microphone
from tests.e2e.journeys import sign_up, start_chat
from tests.fakes.upstream import json_reply

HEARD = "床前明月光，疑是地上霜。"
ENABLE_TRANSCRIPTION = ("from accounts.models import ApiCredential; "
                        "ApiCredential.objects.filter(owner=None).update(transcription_model='whisper-1')")


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("mic") / "spoken.wav"
    if shutil.which("espeak-ng"):
        command = ["espeak-ng", "-v", "cmn", "-w", str(path), HEARD]
    elif shutil.which("sox"):
        command = ["sox", "-n", "-r", "48000", "-c", "1", str(path), "synth", "3", "sine", "440"]
    else:
        pytest.skip("neither espeak-ng nor sox is installed (make test-setup installs them)")
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def browser(spoken_wav):
    """This module's own Chromium: a fake microphone that plays the wav."""
    with chromium(*fake_microphone(spoken_wav)) as recording:
        yield recording


def form_parts(request) -> dict[str, bytes]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


def test_dictation_fills_the_input_and_sends_nothing(app, page, upstream, shot):
    sign_up(page, app.url, "shuohua")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    # The site key has no transcription model yet: the button says why it is off.
    mic = page.locator("#chat-mic")
    assert mic.is_disabled() and mic.get_attribute("title") == "当前密钥不支持语音输入"
    shot("dictation-not-offered")

    app.manage_output("shell", "-c", ENABLE_TRANSCRIPTION)
    upstream.route("POST", "/api/v1/audio/transcriptions", json_reply(200, {"text": HEARD}))
    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "先说一句：")
    mic.click()
    page.wait_for_selector("#chat-mic[aria-pressed=true]")
    # Wait until two seconds of sound are in (the page counts them), then stop.
    page.wait_for_function("() => /正在录音 [2-9] /.test(document.getElementById('chat-dictation').textContent)")
    assert mic.inner_text() == "停止录音"
    shot("dictation-recording")
    mic.click()

    page.wait_for_function("text => document.getElementById('chat-input').value.endsWith(text)", arg=HEARD)
    assert page.input_value("#chat-input") == "先说一句：" + HEARD
    assert "已填入输入框" in page.inner_text("#chat-dictation")
    assert page.inner_text("#chat-dictation-error") == ""
    assert mic.inner_text() == "语音输入" and mic.is_enabled()
    shot("dictation-filled")

    # Nothing was sent: no message on the page, no chat call upstream.
    assert page.locator("article.message-user").count() == 0
    assert not [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    [request] = [r for r in upstream.requests if r.path.endswith("/audio/transcriptions")]
    parts = form_parts(request)
    assert parts["model"] == b"whisper-1" and parts["language"] == b"zh"
    # What Chromium's MediaRecorder wrote: WebM, whose length the server read from the clusters.
    fmt = formats.sniff(parts["file"])
    assert fmt == formats.WEBM
    assert 1.5 < formats.duration(fmt, parts["file"]) < 60
