"""Midjourney through the relay's midjourney-proxy: imagine, fetch task, and the U/V button actions."""

from __future__ import annotations

import httpx
import pytest

from chat.media.errors import MediaError
from chat.media.kinds import MidjourneyAction, MidjourneyRequest
from chat.media.midjourney import MidjourneyBackend, action_for
from chat.providers.errors import ProviderError
from tests.fakes.upstream import json_reply
from tests.media.helpers import HTML, KEY, MP4, PNG, config, file_reply, no_sleep, wait

TASK = "1320098173412546"
HASH = "82c51c9d-bc33-4c07-a471-36c3dcb1a6f0"
BUTTONS = [
    {"customId": f"MJ::JOB::upsample::1::{HASH}", "emoji": "", "label": "U1", "style": 2, "type": 2},
    {"customId": f"MJ::JOB::upsample::2::{HASH}", "emoji": "", "label": "U2", "style": 2, "type": 2},
    {"customId": f"MJ::JOB::variation::2::{HASH}", "emoji": "", "label": "V2", "style": 2, "type": 2},
    {"customId": f"MJ::JOB::reroll::0::{HASH}::SOLO", "emoji": "🔄", "label": "", "style": 2, "type": 2},
]


def backend(upstream, http, **extra) -> MidjourneyBackend:
    return MidjourneyBackend(config(upstream, **extra), http, sleep=no_sleep)


def submitted(code: int = 1, result: object = 1320098173412546) -> object:
    return json_reply(200, {"code": code, "description": "提交成功", "properties": {}, "result": result})


def task(upstream, status: str, progress: str, **fields) -> object:
    return json_reply(200, {"action": "IMAGINE", "buttons": [], "description": "", "failReason": "", "finishTime": 0,
                            "id": TASK, "imageUrl": "", "progress": progress, "prompt": "长安城上元灯会",
                            "promptEn": "Lantern festival in Chang'an", "properties": {}, "startTime": 0,
                            "state": "", "status": status, "submitTime": 0, **fields})  # fmt: skip


def done(upstream, path: str = "/mj/cdn/grid.png") -> object:
    return task(upstream, "SUCCESS", "100%", imageUrl=upstream.url + path, buttons=BUTTONS, finishTime=1)


def test_imagine_runs_through_progress_to_success_and_downloads_the_grid(upstream):
    upstream.route("POST", "/mj/submit/imagine", submitted())
    upstream.route("GET", f"/mj/task/{TASK}/fetch", task(upstream, "NOT_START", "0%"), task(upstream, "SUBMITTED", "0%"),
                   task(upstream, "IN_PROGRESS", "45%"), done(upstream))
    upstream.route("GET", "/mj/cdn/grid.png", file_reply(PNG, "image/png"))
    with httpx.Client() as http:
        mj = backend(upstream, http)
        task_id = mj.submit(MidjourneyRequest("长安城上元灯会 --ar 16:9"))
        states = [mj.poll(task_id) for _ in range(3)]
        final = wait(mj, task_id)
        result = mj.fetch(final)

    assert task_id == TASK  # the proxy's number, kept as text
    assert [(s.status, s.progress) for s in states] == [("PENDING", 0), ("PENDING", 0), ("RUNNING", 45)]
    assert final.status == "SUCCEEDED" and final.buttons == BUTTONS
    assert result.data == PNG and result.mime == "image/png" and result.extra["buttons"] == BUTTONS
    create, *polls, download = upstream.requests
    assert (create.method, create.path) == ("POST", "/mj/submit/imagine")
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.headers["accept"] == "application/json" and create.headers["content-type"] == "application/json"
    assert create.json() == {"botType": "MID_JOURNEY", "prompt": "长安城上元灯会 --ar 16:9", "base64Array": []}
    assert [(p.method, p.path) for p in polls] == [("GET", f"/mj/task/{TASK}/fetch")] * 4
    assert "authorization" not in download.headers and not upstream.unscripted


@pytest.mark.parametrize(("action", "custom_id"), [("UPSCALE::1", f"MJ::JOB::upsample::1::{HASH}"),
                                                   ("VARIATION::2", f"MJ::JOB::variation::2::{HASH}")])
def test_a_button_action_is_submitted_with_its_custom_id(upstream, action, custom_id):
    upstream.route("POST", "/mj/submit/action", submitted(code=22, result="1728781324658687"))
    chosen = action_for(TASK, BUTTONS, action)
    assert chosen == MidjourneyAction(task_id=TASK, custom_id=custom_id)
    with httpx.Client() as http:
        assert backend(upstream, http).submit(chosen) == "1728781324658687"  # 22: queued, still a task
    [sent] = upstream.requests
    assert sent.path == "/mj/submit/action" and sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {"customId": custom_id, "taskId": TASK, "chooseSameChannel": True}


def test_a_button_the_task_does_not_have_is_refused_without_a_call(upstream):
    with pytest.raises(MediaError) as caught:
        action_for(TASK, BUTTONS, "VARIATION::4")
    assert caught.value.kind == "bad_request" and "没有该按钮" in caught.value.message and not upstream.requests


def test_a_failed_task_raises_its_reason(upstream):
    upstream.route("GET", f"/mj/task/{TASK}/fetch", task(upstream, "IN_PROGRESS", "10%"),
                   task(upstream, "FAILURE", "", failReason="Banned prompt detected"))
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        wait(backend(upstream, http), TASK)
    assert caught.value.reason == "task_failed" and caught.value.message == "生成失败：Banned prompt detected"
    assert caught.value.task_id == TASK and len(upstream.requests) == 2


@pytest.mark.parametrize(("code", "kind"), [(25, "billing"), (21, "bad_request"), (24, "unavailable"), (23, "upstream")])
def test_submit_codes_other_than_1_and_22_are_errors(upstream, code, kind):
    upstream.route("POST", "/mj/submit/imagine", json_reply(200, {"code": code, "description": "失败", "result": None}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(MidjourneyRequest("cat"))
    assert caught.value.kind == kind and caught.value.code == str(code) and not caught.value.retryable
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("served", [MP4, HTML])
def test_a_download_that_is_not_an_image_is_refused(upstream, served):
    upstream.route("GET", f"/mj/task/{TASK}/fetch", done(upstream))
    upstream.route("GET", "/mj/cdn/grid.png", file_reply(served, "image/png"))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        mj = backend(upstream, http)
        mj.fetch(mj.poll(TASK))
    assert caught.value.kind == "no_image" and "没有返回图片" in caught.value.message


def test_a_download_over_the_limit_is_stopped(upstream):
    upstream.route("GET", f"/mj/task/{TASK}/fetch", done(upstream))
    upstream.route("GET", "/mj/cdn/grid.png", file_reply(PNG + bytes(4096), "image/png"))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        mj = backend(upstream, http, max_bytes=1024)
        mj.fetch(mj.poll(TASK))
    assert caught.value.kind == "no_image" and "larger than 1024" in caught.value.detail


def test_a_private_host_not_allowlisted_is_refused(upstream):
    upstream.route("GET", f"/mj/task/{TASK}/fetch", done(upstream))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        mj = backend(upstream, http, allowed=())
        mj.fetch(mj.poll(TASK))
    assert caught.value.kind == "refused_url" and "内网" in caught.value.message


def test_http_401_is_auth(upstream):
    upstream.route("POST", "/mj/submit/imagine", json_reply(401, {"code": 401, "description": "无效的令牌", "result": None}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(MidjourneyRequest("cat"))
    assert caught.value.kind == "auth" and len(upstream.requests) == 1


def test_http_429_is_rate_limit(upstream):
    upstream.route("POST", "/mj/submit/imagine", json_reply(429, {"code": 429, "description": "too many", "result": None}),
                   repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        backend(upstream, http).submit(MidjourneyRequest("cat"))
    assert caught.value.kind == "rate_limit" and len(upstream.requests) == 3
