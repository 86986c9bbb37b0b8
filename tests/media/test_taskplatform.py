"""The task platform's video and music endpoints and its task query, in the shapes of its document."""

from __future__ import annotations

import httpx
import pytest

from chat.media.errors import MediaError
from chat.media.kinds import MusicRequest, VideoRequest
from chat.media.taskplatform import TaskPlatformBackend
from chat.providers.errors import ProviderError
from tests.fakes.upstream import json_reply
from tests.media.helpers import HTML, KEY, MP3, MP4, PNG, config, file_reply, form, no_sleep, wait

TASK = "dd01fc69-e1f7-4b68-aa8c-463f6b748d11"
POEM = MusicRequest(lyrics="床前明月光，疑是地上霜。\n举头望明月，低头思故乡。", style_tags=["古风", "古琴"], title="静夜思")


def backend(upstream, http, platform: str = "kling", **extra) -> TaskPlatformBackend:
    return TaskPlatformBackend(config(upstream, **extra), http, platform=platform, sleep=no_sleep)


def query(status: str, **fields) -> object:
    return json_reply(200, {"task_id": TASK, "status": status, "created_at": "2026-01-24T10:30:00+08:00", **fields})


def video_done(upstream, path: str = "/cdn/video.mp4") -> object:
    return query("succeeded", completed_at="2026-01-24T10:35:00+08:00", video={"url": upstream.url + path, "duration": 5})


def music_done(upstream, path: str = "/cdn/song.mp3") -> object:
    return query("succeeded", music=[{"url": upstream.url + path, "title": "静夜思", "duration": 180}])


def envelope(status: int, code: str, message: str) -> object:
    return json_reply(status, {"success": False, "error": {"code": code, "message": message}, "trace_id": "abc123"})


def test_text_to_video_runs_pending_queued_processing_succeeded_and_downloads(upstream):
    upstream.route("POST", "/api/kling/videos", json_reply(200, {"task_id": TASK}))
    upstream.route("POST", "/api/kling/tasks", query("pending"), query("queued"), query("processing"), video_done(upstream))
    upstream.route("GET", "/cdn/video.mp4", file_reply(MP4, "video/mp4"))
    with httpx.Client() as http:
        platform = backend(upstream, http, model="kling-v1")
        task_id = platform.submit(VideoRequest("a cat playing with a ball", duration=5, aspect_ratio="16:9"))
        states = [platform.poll(task_id) for _ in range(3)]
        final = wait(platform, task_id)
        result = platform.fetch(final)

    assert task_id == TASK and [s.status for s in states] == ["PENDING", "PENDING", "RUNNING"]
    assert all(s.progress is None for s in states) and final.progress == 100
    assert result.data == MP4 and result.mime == "video/mp4" and result.extra["duration"] == 5
    create, *polls, download = upstream.requests
    assert (create.method, create.path) == ("POST", "/api/kling/videos")
    assert create.headers["authorization"] == f"Bearer {KEY}" and create.headers["content-type"] == "application/json"
    assert create.json() == {"action": "text2video", "prompt": "a cat playing with a ball", "model": "kling-v1",
                             "duration": 5, "aspect_ratio": "16:9"}
    assert [(p.method, p.path, p.json()) for p in polls] == [("POST", "/api/kling/tasks", {"task_id": TASK})] * 4
    assert "authorization" not in download.headers and not upstream.unscripted


def test_image_to_video_uploads_the_image_first(upstream):
    upload = {"success": True, "data": [{"url": "https://cdn.example.com/uploads/abc123.png", "filename": "f.png",
                                         "size": len(PNG), "content_type": "image/png"}], "trace_id": "x"}
    upstream.route("POST", "/api/upload/file", json_reply(200, upload))
    upstream.route("POST", "/api/sora/videos", json_reply(200, {"task_id": TASK}))
    with httpx.Client() as http:
        backend(upstream, http, platform="sora").submit(VideoRequest("animate this scene", image=PNG, duration=10))
    sent_upload, create = upstream.requests
    assert sent_upload.headers["authorization"] == f"Bearer {KEY}"
    assert sent_upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form(sent_upload) == [("file", "first-frame.png", "image/png", PNG)]
    assert create.json() == {"action": "image2video", "prompt": "animate this scene",
                             "image_url": "https://cdn.example.com/uploads/abc123.png", "duration": 10}


def test_music_goes_to_suno_and_downloads_the_mp3(upstream):
    upstream.route("POST", "/api/suno/music", json_reply(200, {"task_id": TASK}))
    upstream.route("POST", "/api/suno/tasks", query("processing"), music_done(upstream))
    upstream.route("GET", "/cdn/song.mp3", file_reply(MP3, "audio/mpeg"))
    with httpx.Client() as http:
        platform = backend(upstream, http, platform="suno")
        result = platform.fetch(wait(platform, platform.submit(POEM)))
    assert result.data == MP3 and result.mime == "audio/mpeg"
    assert result.extra["tracks"] == [{"title": "静夜思", "duration": 180}]
    assert upstream.requests[0].json() == {"prompt": "古风、古琴歌曲《静夜思》", "lyrics": POEM.lyrics, "style": "古风, 古琴"}


def test_a_failed_task_raises_its_message(upstream):
    failed = query("failed", error={"code": "GENERATION_FAILED", "message": "图片生成失败，请重试"})
    upstream.route("POST", "/api/kling/tasks", query("processing"), failed)
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        wait(backend(upstream, http), TASK)
    assert caught.value.reason == "task_failed" and caught.value.code == "GENERATION_FAILED"
    assert caught.value.message == "生成失败：图片生成失败，请重试" and not caught.value.retryable
    assert len(upstream.requests) == 2


@pytest.mark.parametrize(("status", "reason", "kind"), [("cancelled", "canceled", "upstream"),
                                                        ("timeout", "task_timeout", "timeout")])
def test_cancelled_and_timed_out_tasks_raise(upstream, status, reason, kind):
    upstream.route("POST", "/api/kling/tasks", query(status))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        backend(upstream, http).poll(TASK)
    assert (caught.value.reason, caught.value.kind) == (reason, kind) and not caught.value.retryable


def test_a_music_download_that_is_not_audio_is_refused(upstream):
    upstream.route("POST", "/api/suno/tasks", music_done(upstream))
    upstream.route("GET", "/cdn/song.mp3", file_reply(HTML, "audio/mpeg"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        platform = backend(upstream, http, platform="suno")
        platform.fetch(platform.poll(TASK))
    assert caught.value.reason == "not_media" and "不是音频" in caught.value.message


def test_a_video_download_over_the_limit_is_stopped(upstream):
    upstream.route("POST", "/api/kling/tasks", video_done(upstream))
    upstream.route("GET", "/cdn/video.mp4", file_reply(MP4 + bytes(8192), "video/mp4"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        platform = backend(upstream, http, max_bytes=4096)
        platform.fetch(platform.poll(TASK))
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(("status", "code", "kind", "calls"), [
    (401, "UNAUTHORIZED", "auth", 1), (402, "INSUFFICIENT_BALANCE", "billing", 1),
    (429, "RATE_LIMIT_EXCEEDED", "rate_limit", 3), (400, "MISSING_REQUIRED_FIELD", "bad_request", 1),
])  # fmt: skip
def test_the_error_envelope_maps_to_kinds(upstream, status, code, kind, calls):
    upstream.route("POST", "/api/kling/videos", envelope(status, code, f"refused for {KEY}"), repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(VideoRequest("江雪"))
    assert caught.value.kind == kind and caught.value.code == code and caught.value.status == status
    assert KEY not in caught.value.detail and len(upstream.requests) == calls


def test_a_query_401_is_auth(upstream):
    upstream.route("POST", "/api/kling/tasks", envelope(401, "INVALID_TOKEN", "Token 验证失败"))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        wait(backend(upstream, http), TASK)
    assert caught.value.kind == "auth" and not caught.value.retryable
