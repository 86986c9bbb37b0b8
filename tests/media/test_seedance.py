"""Seedance video tasks against the scripted upstream, in the shapes of the nano-banana/Seedance relay document."""

from __future__ import annotations

import base64

import httpx
import pytest

from chat.media.errors import MediaError
from chat.media.kinds import VideoRequest
from chat.media.seedance import TASKS_PATH, SeedanceBackend
from chat.providers.errors import ProviderError
from tests.fakes.upstream import json_reply
from tests.media.helpers import HTML, KEY, MP4, PNG, config, file_reply, no_sleep, wait

TASK = "cgt-20250629201507-n6k56"


def backend(upstream, http, **extra) -> SeedanceBackend:
    return SeedanceBackend(config(upstream, model="doubao-seedance-1-0-pro-250528", **extra), http, sleep=no_sleep)


def query(status: str, **fields) -> object:
    return json_reply(200, {"id": TASK, "model": "doubao-seedance-1-0-pro-250528", "status": status,
                            "created_at": 1751199308, "updated_at": 1751199347, **fields})


def succeeded(upstream, path: str = "/tos/v.mp4") -> object:
    url = upstream.url + path + "?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Signature=sig"
    return query("succeeded", content={"video_url": url}, usage={"completion_tokens": 108900, "total_tokens": 108900})


def script(upstream, *polls) -> None:
    upstream.route("POST", TASKS_PATH, json_reply(200, {"id": TASK}))
    upstream.route("GET", f"{TASKS_PATH}/{TASK}", *polls)


def test_text_to_video_runs_queued_running_succeeded_and_downloads_the_mp4(upstream):
    script(upstream, query("queued"), query("running"), succeeded(upstream))
    upstream.route("GET", "/tos/v.mp4", file_reply(MP4, "video/mp4"))
    with httpx.Client() as http:
        seedance = backend(upstream, http)
        task_id = seedance.submit(VideoRequest("李白舟中望月，江面微波", duration=5, resolution="720p", aspect_ratio="16:9"))
        states = [seedance.poll(task_id), seedance.poll(task_id)]
        final = wait(seedance, task_id)
        result = seedance.fetch(final)

    assert task_id == TASK
    assert [(s.status, s.progress) for s in states] == [("PENDING", None), ("RUNNING", None)]
    assert final.status == "SUCCEEDED" and final.progress == 100
    assert result.data == MP4 and result.mime == "video/mp4" and result.extra["tokens"] == 108900
    create, *polls, download = upstream.requests
    assert (create.method, create.path) == ("POST", TASKS_PATH)
    assert create.headers["authorization"] == f"Bearer {KEY}" and create.headers["content-type"] == "application/json"
    assert create.json() == {"model": "doubao-seedance-1-0-pro-250528", "content": [
        {"type": "text", "text": "李白舟中望月，江面微波 --ratio 16:9 --duration 5 --resolution 720p"}]}
    assert [(p.method, p.path) for p in polls] == [("GET", f"{TASKS_PATH}/{TASK}")] * 3
    assert all(p.headers["authorization"] == f"Bearer {KEY}" for p in polls)
    assert download.path == "/tos/v.mp4" and "authorization" not in download.headers
    assert "X-Tos-Signature=sig" in download.query and not upstream.unscripted


def test_image_to_video_sends_the_first_frame_as_an_image_url_part(upstream):
    upstream.route("POST", TASKS_PATH, json_reply(200, {"id": TASK}))
    with httpx.Client() as http:
        backend(upstream, http).submit(VideoRequest("让画中人缓缓回首", image=PNG, aspect_ratio="9:16", duration=10))
    [create] = upstream.requests
    text, image = create.json()["content"]
    assert text == {"type": "text", "text": "让画中人缓缓回首 --ratio 9:16 --duration 10 --resolution 720p"}
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}


def test_a_failed_task_raises_its_reason_in_chinese_and_is_not_polled_again(upstream):
    failed = query("failed", error={"code": "OutputVideoSensitiveContentDetected", "message": "视频内容未通过审核"})
    script(upstream, query("running"), failed)
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        wait(backend(upstream, http), TASK)
    error = caught.value
    assert error.reason == "task_failed" and error.task_id == TASK and not error.retryable
    assert error.message == "生成失败：视频内容未通过审核" and error.state.status == "FAILED"
    assert len(upstream.requests) == 2


def test_a_cancelled_task_raises(upstream):
    script(upstream, query("cancelled"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        backend(upstream, http).poll(TASK)
    assert caught.value.reason == "canceled" and "取消" in caught.value.message


@pytest.mark.parametrize("served", [PNG, HTML])
def test_a_download_that_is_not_a_video_is_refused(upstream, served):
    upstream.route("GET", "/tos/v.mp4", file_reply(served, "video/mp4"))
    script(upstream, succeeded(upstream))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        seedance = backend(upstream, http)
        seedance.fetch(seedance.poll(TASK))
    assert caught.value.reason == "not_media" and "不是视频" in caught.value.message


def test_a_download_over_the_size_limit_is_stopped(upstream):
    upstream.route("GET", "/tos/v.mp4", file_reply(MP4 + bytes(4096), "video/mp4"))
    script(upstream, succeeded(upstream))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        seedance = backend(upstream, http, max_bytes=2048)
        seedance.fetch(seedance.poll(TASK))
    assert caught.value.reason == "too_large" and "上限" in caught.value.message


def test_a_private_host_not_allowlisted_is_refused_at_connect(upstream):
    script(upstream, succeeded(upstream))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        seedance = backend(upstream, http, allowed=())
        seedance.fetch(seedance.poll(TASK))
    assert caught.value.reason == "refused_url" and "内网" in caught.value.message
    assert not [r for r in upstream.requests if r.path == "/tos/v.mp4"]


def test_http_401_is_auth_and_keeps_the_key_out(upstream):
    upstream.route("POST", TASKS_PATH, json_reply(401, {"error": {"code": "AuthenticationError",
                                                                  "message": f"the API key {KEY} is invalid"}}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(VideoRequest("江雪"))
    assert caught.value.kind == "auth" and "密钥" in caught.value.message
    assert KEY not in str(caught.value) and KEY not in caught.value.detail and len(upstream.requests) == 1


def test_http_429_is_rate_limit_after_the_allowed_retries(upstream):
    upstream.route("POST", TASKS_PATH, json_reply(429, {"error": {"code": "RateLimitExceeded", "message": "slow down"}}),
                   repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(VideoRequest("江雪"))
    assert caught.value.kind == "rate_limit" and caught.value.message == "请求过于频繁，请稍后再试。"
    assert len(upstream.requests) == 3  # two retries: a 429 provably created nothing


def test_a_poll_429_is_retried_by_the_wait_loop(upstream):
    script(upstream, json_reply(429, {"error": {"code": "RateLimitExceeded", "message": "slow"}}), succeeded(upstream))
    with httpx.Client() as http:
        assert wait(backend(upstream, http), TASK).status == "SUCCEEDED"
