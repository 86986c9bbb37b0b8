"""The media studio in a real Chromium: a poem set to music, a clip confirmed at its estimate, a
Midjourney grid and its U1 button, each card following its job without a reload; the worker is its
own process and the relay (Suno proxy, Seedance, /mj) is scripted on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chat.media.cost import estimate_video
from chat.media.seedance import TASKS_PATH
from tests.e2e.journeys import sign_up, start_chat
from tests.e2e.live_app import ROOT, LiveApp
from tests.e2e.test_chat_journey import _stream
from tests.fakes.imagetasks import png_bytes
from tests.fakes.upstream import json_reply
from tests.media.helpers import MP3, MP4, file_reply

RELAY = "/relay"
POEM = "且听白吟来：\n\n床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。"
GRID, UPSCALED = png_bytes(8, 8, rgb=(120, 90, 40)), png_bytes(8, 8, rgb=(30, 60, 90))
ENABLE = (
    "from accounts.models import ApiCredential as C; C.objects.update(is_default=False); "
    "c = C(owner=None, kind='openai_compatible', label='中转', base_url='{base}', status='valid', is_default=True, "
    "text_model='qwen-plus', video_model='doubao-seedance-1-0-pro-250528', music_model='chirp-v4', "
    "midjourney_model='midjourney', edit_model='nano-banana'); c.set_key('sk-relay-e2e-0123456789'); c.save()"
)


@pytest.fixture
def app(tmp_path, upstream):
    live = LiveApp(tmp_path, upstream.url + "/api/v1", IMAGE_DOWNLOAD_ALLOWED_HOSTS="127.0.0.1",
                   IMAGE_POLL_INTERVAL="0.3", IMAGE_POLL_MAX_INTERVAL="0.3").start()
    live.manage_output("shell", "-c", ENABLE.format(base=upstream.url + RELAY + "/v1"))
    worker = subprocess.Popen([sys.executable, "manage.py", "mediaworker"], cwd=ROOT, env=live.env,
                              stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    yield live
    worker.terminate()
    worker.wait(15)
    live.stop()


def script_relay(upstream) -> None:
    url = upstream.url
    upstream.route("POST", RELAY + "/v1/chat/completions", _stream(POEM, 0.005))
    upstream.route("POST", RELAY + "/suno/submit/music", json_reply(200, {"code": "success", "data": "s1"}))
    clip = {"id": "c1", "title": "静夜思", "audio_url": url + "/cdn/a.mp3"}
    upstream.route("GET", RELAY + "/suno/fetch/s1", json_reply(200, {"code": "success", "data": {
        "status": "SUCCESS", "progress": "100%", "data": [clip]}}), repeat=True)
    upstream.route("GET", "/cdn/a.mp3", file_reply(MP3, "audio/mpeg"), repeat=True)
    upstream.route("POST", RELAY + TASKS_PATH, json_reply(200, {"id": "cgt-1"}))
    upstream.route("GET", f"{RELAY}{TASKS_PATH}/cgt-1", json_reply(200, {
        "id": "cgt-1", "status": "succeeded", "content": {"video_url": url + "/tos/v.mp4"}}), repeat=True)
    upstream.route("GET", "/tos/v.mp4", file_reply(MP4, "video/mp4"), repeat=True)
    buttons = [{"customId": f"MJ::JOB::upsample::{i}::h", "label": f"U{i}"} for i in (1, 2, 3, 4)]
    buttons += [{"customId": f"MJ::JOB::variation::{i}::h", "label": f"V{i}"} for i in (1, 2, 3, 4)]
    upstream.route("POST", RELAY + "/mj/submit/imagine", json_reply(200, {"code": 1, "result": "71"}))
    upstream.route("GET", RELAY + "/mj/task/71/fetch", json_reply(200, {
        "status": "SUCCESS", "imageUrl": url + "/mj/grid.png", "buttons": buttons}), repeat=True)
    upstream.route("GET", "/mj/grid.png", file_reply(GRID, "image/png"), repeat=True)
    upstream.route("POST", RELAY + "/mj/submit/action", json_reply(200, {"code": 1, "result": "72"}))
    upstream.route("GET", RELAY + "/mj/task/72/fetch", json_reply(200, {
        "status": "SUCCESS", "imageUrl": url + "/mj/u1.png"}), repeat=True)
    upstream.route("GET", "/mj/u1.png", file_reply(UPSCALED, "image/png"), repeat=True)


def wait_done(page, kind: str, count: int = 1) -> None:
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#image-jobs .media-job[data-kind={kind}]')]"
        f".filter(c => c.dataset.status === 'done').length >= {count}", timeout=60000)


def test_music_a_confirmed_clip_and_midjourney_follow_their_jobs(app, upstream, page, shot):
    script_relay(upstream)
    sign_up(page, app.url, "studio")
    start_chat(page, app.url)
    page.wait_for_selector("#image-panel")
    page.evaluate("() => { window.__sameDocument = true; }")
    assert "music" in page.get_attribute("body", "data-offers")

    page.fill("#chat-input", "太白兄，吟一首吧")
    page.keyboard.press("Enter")
    reply = page.locator("article.message-assistant[data-status=complete]").nth(1)
    reply.wait_for()

    # 谱曲: the poem's own lines become the song.
    reply.locator("details.offer-music summary").click()
    reply.locator("details.offer-music").get_by_role("button", name="谱曲").click()
    wait_done(page, "music")
    assert page.locator("#image-jobs audio[controls]").count() == 1
    submit = next(r for r in upstream.requests if r.path == RELAY + "/suno/submit/music").json()
    assert submit["prompt"].startswith("且听白吟来：\n床前明月光，") and submit["tags"] == "古风,古琴"

    # 成片: the estimate first; a changed choice re-estimates; only 确认生成 submits.
    reply.locator("details.offer-video summary").click()
    form = reply.locator("form.video-form")
    form.wait_for()
    assert f"{estimate_video(5).tokens:,}" in form.inner_text()
    assert not [r for r in upstream.requests if r.path == RELAY + TASKS_PATH]
    form.locator("select[name=duration]").select_option("10")
    page.wait_for_function(f"() => document.querySelector('form.video-form')?.innerText.includes('{estimate_video(10).tokens:,}')")
    reply.scroll_into_view_if_needed()
    shot("studio-video-estimate")
    reply.locator("form.video-form").get_by_role("button", name="确认生成").click()
    wait_done(page, "video")
    assert page.locator("#image-jobs video[controls]").count() == 1
    created = next(r for r in upstream.requests if r.path == RELAY + TASKS_PATH).json()
    assert "--duration 10" in created["content"][0]["text"]

    # Midjourney as another engine, then its U1 button.
    page.fill("#image-panel input[name=prompt]", "长安城夜景")
    page.check("#image-panel input[name=engine]")
    page.locator("#image-panel form.image-form").get_by_role("button", name="作画").click()
    wait_done(page, "midjourney")
    grid = page.locator("#image-jobs .media-job[data-kind=midjourney][data-status=done]").first
    grid.get_by_role("button", name="U1").click()
    wait_done(page, "midjourney", 2)
    action = next(r for r in upstream.requests if r.path == RELAY + "/mj/submit/action").json()
    assert action == {"customId": "MJ::JOB::upsample::1::h", "taskId": "71", "chooseSameChannel": True}
    page.wait_for_function("() => [...document.querySelectorAll('#image-jobs img')].every(i => i.naturalWidth > 0)")
    assert page.evaluate("() => window.__sameDocument === true")  # nothing needed a reload
    page.evaluate("() => document.querySelector('#image-panel').scrollIntoView()")
    shot("studio-done")
