"""Suno music through the relay's Suno-API proxy (/suno/submit/music, /suno/fetch/{id})."""

from __future__ import annotations

import httpx
import pytest

from chat.media.errors import MediaError
from chat.media.kinds import MusicRequest
from chat.media.suno import SunoBackend
from chat.providers.errors import ProviderError
from tests.fakes.upstream import json_reply
from tests.media.helpers import KEY, MP3, PNG, WAV, config, file_reply, no_sleep, wait

TASK = "736a6f88-bd29-4b1e-b110-37132a5325ac"
POEM = MusicRequest(lyrics="[Verse]\n床前明月光\n疑是地上霜", style_tags=["古风", "古琴"], title="静夜思")


def backend(upstream, http, **extra) -> SunoBackend:
    return SunoBackend(config(upstream, model="chirp-v4", **extra), http, sleep=no_sleep)


def task(status: str, progress: str, clips=(), fail_reason: str = "") -> object:
    data = {"task_id": TASK, "notify_hook": "", "action": "MUSIC", "status": status, "fail_reason": fail_reason,
            "submit_time": 1716191749, "start_time": 1716191786, "finish_time": 0, "progress": progress,
            "data": list(clips)}
    return json_reply(200, {"code": "success", "message": "", "data": data})


def clip(upstream, path: str = "/suno/cdn/a.mp3", status: str = "complete") -> dict:
    return {"id": "e9893d04", "title": "静夜思", "status": status, "metadata": {"tags": "古风,古琴"},
            "audio_url": upstream.url + path, "image_url": "https://cdn1.suno.ai/image_e9893d04.png", "video_url": ""}


def script(upstream, *polls) -> None:
    upstream.route("POST", "/suno/submit/music", json_reply(200, {"code": "success", "message": "", "data": TASK}))
    upstream.route("GET", f"/suno/fetch/{TASK}", *polls)


def test_a_song_runs_through_progress_to_success_and_downloads_the_mp3(upstream):
    streaming = clip(upstream, "/suno/stream", status="streaming")
    script(upstream, task("NOT_START", "0%"), task("IN_PROGRESS", "40%", [streaming]),
           task("SUCCESS", "100%", [clip(upstream), clip(upstream, "/suno/cdn/b.mp3")]))
    upstream.route("GET", "/suno/cdn/a.mp3", file_reply(MP3, "audio/mpeg"))
    with httpx.Client() as http:
        suno = backend(upstream, http)
        task_id = suno.submit(POEM)
        states = [suno.poll(task_id), suno.poll(task_id)]
        final = wait(suno, task_id)
        result = suno.fetch(final)

    assert task_id == TASK
    assert [(s.status, s.progress) for s in states] == [("PENDING", 0), ("RUNNING", 40)]
    assert final.urls == [upstream.url + "/suno/cdn/a.mp3", upstream.url + "/suno/cdn/b.mp3"]
    assert result.data == MP3 and result.mime == "audio/mpeg" and result.extra["tracks"][0]["title"] == "静夜思"
    create, *polls, download = upstream.requests
    assert (create.method, create.path) == ("POST", "/suno/submit/music")
    assert create.headers["authorization"] == f"Bearer {KEY}" and create.headers["content-type"] == "application/json"
    assert create.json() == {"prompt": POEM.lyrics, "tags": "古风,古琴", "title": "静夜思", "mv": "chirp-v4"}
    assert [(p.method, p.path) for p in polls] == [("GET", f"/suno/fetch/{TASK}")] * 3
    assert "authorization" not in download.headers and not upstream.unscripted


def test_a_wav_is_accepted_as_audio(upstream):
    script(upstream, task("SUCCESS", "100%", [clip(upstream, "/suno/cdn/a.wav")]))
    upstream.route("GET", "/suno/cdn/a.wav", file_reply(WAV, "audio/wav"))
    with httpx.Client() as http:
        suno = backend(upstream, http)
        assert suno.fetch(suno.poll(TASK)).mime == "audio/wav"


def test_a_failed_song_raises_its_reason(upstream):
    script(upstream, task("IN_PROGRESS", "10%"), task("FAIL", "100%", fail_reason="歌词包含敏感内容"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        wait(backend(upstream, http), TASK)
    assert caught.value.reason == "task_failed" and caught.value.message == "生成失败：歌词包含敏感内容"
    assert caught.value.state.status == "FAILED" and len(upstream.requests) == 2


def test_a_download_that_is_not_audio_is_refused(upstream):
    script(upstream, task("SUCCESS", "100%", [clip(upstream)]))
    upstream.route("GET", "/suno/cdn/a.mp3", file_reply(PNG, "audio/mpeg"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        suno = backend(upstream, http)
        suno.fetch(suno.poll(TASK))
    assert caught.value.reason == "not_media" and "不是音频" in caught.value.message


def test_a_download_over_the_limit_is_stopped(upstream):
    script(upstream, task("SUCCESS", "100%", [clip(upstream)]))
    upstream.route("GET", "/suno/cdn/a.mp3", file_reply(MP3 + bytes(5000), "audio/mpeg"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        suno = backend(upstream, http, max_bytes=1024)
        suno.fetch(suno.poll(TASK))
    assert caught.value.reason == "too_large"


def test_a_200_with_a_failure_code_is_an_error(upstream):
    upstream.route("POST", "/suno/submit/music",
                   json_reply(200, {"code": "insufficient_user_quota", "message": "用户额度不足", "data": None}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(POEM)
    assert caught.value.kind == "billing" and not caught.value.retryable


def test_http_401_is_auth(upstream):
    upstream.route("POST", "/suno/submit/music", json_reply(401, {"error": {"message": "未提供令牌 (request id: 1)",
                                                                            "type": "new_api_error"}}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(POEM)
    assert caught.value.kind == "auth" and len(upstream.requests) == 1


def test_http_429_is_rate_limit(upstream):
    upstream.route("POST", "/suno/submit/music", json_reply(429, {"error": {"message": "busy", "type": "new_api_error"}}),
                   repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(POEM)
    assert caught.value.kind == "rate_limit" and len(upstream.requests) == 3
