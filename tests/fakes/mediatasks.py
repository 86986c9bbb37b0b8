"""Scripted media task services on the scripted upstream, in the shapes chat/media/*.py document: each
task succeeds `delay` seconds after its create call, and its result file downloads from the upstream.

    media = MediaTasks(upstream, delay=2.0)     # all four; or SeedanceTasks(upstream, delay=...) alone
    ... a relay credential at f"{upstream.url}/v1" (its root is upstream.url) ...
    media.seedance.created                      → create calls that made a task (per service)
    media.succeeded_at(task_id)                 → wall-clock time that task reached success upstream
    media.downloads_with_auth                   → result downloads that carried an Authorization header

- Seedance: `POST /seedance/v3/contents/generations/tasks` → `{"id": "cgt-…"}`; the query answers
  queued, running, then succeeded with `content.video_url` (a signed link under /tos/, MP4 bytes);
- Suno proxy: `POST /suno/submit/music` → `{"code": "success", "data": <id>}`; `GET /suno/fetch/{id}`
  answers IN_PROGRESS "40%", then SUCCESS with two clips whose `audio_url` serves MP3 bytes;
- Midjourney proxy: `POST /mj/submit/imagine` and `/mj/submit/action` → `{"code": 1, "result": <id>}`;
  `GET /mj/task/{id}/fetch` answers IN_PROGRESS "50%", then SUCCESS with `imageUrl` (a PNG) and the
  U1-U4 / V1-V4 buttons;
- task platform: `POST /api/kling/videos` → `{"task_id"}`; `POST /api/kling/tasks` `{"task_id"}`
  answers pending, processing, then succeeded with `video.url` (MP4 bytes).

A create call of the wrong shape is refused with the service's own error answer and noted in
`rejected`, so a test sees a wrong request rather than a job that merely failed. A download with an
Authorization header is refused (403), as a signed CDN link would be. Stdlib only, so bench/media.py
can use it as well.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid

from tests.fakes.imagetasks import png_bytes
from tests.fakes.upstream import Reply, json_reply

# Real file heads (the worker sniffs them), the same as tests/media/helpers.py; each service serves
# bytes of its own, so a file stored from the wrong service's link shows.
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free" + bytes(200)
MP4_PLATFORM = MP4 + b"\x00\x00\x00\x08free" + bytes(64)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x0f" + bytes(15) + b"\xff\xfb\x90\x64" + bytes(200)
MJ_PNG = png_bytes(4, 4, rgb=(20, 60, 140))

SEEDANCE_PATH = "/seedance/v3/contents/generations/tasks"


class ScriptedTasks:
    """Bookkeeping shared by the services: tasks by id, refused creates, keyed downloads."""

    name = ""
    mime = ""

    def __init__(self, upstream, *, delay: float, data: bytes, key: str = ""):
        self.upstream, self.delay, self.data = upstream, delay, data
        self.key = key  # when set, API calls must carry "Bearer <key>"
        self.tasks: dict[str, dict] = {}
        self.rejected: list[str] = []
        self.downloads = 0
        self.downloads_with_auth = 0
        self.lock = threading.Lock()

    @property
    def created(self) -> int:
        return len(self.tasks)

    def succeeded_at(self, task_id: str) -> float:
        return self.tasks[task_id]["created"] + self.delay

    def _elapsed(self, task_id: str) -> float:
        return time.time() - self.tasks[task_id]["created"]

    def _done(self, task_id: str) -> bool:
        return self._elapsed(task_id) >= self.delay

    def _add(self, task_id: str, **fields) -> str:
        with self.lock:
            self.tasks[task_id] = {"created": time.time(), **fields}
        return task_id

    def _refuse(self, why: str) -> None:
        self.rejected.append(f"{self.name}: {why}")

    def _authorised(self, request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[len("Bearer "):].strip():
            return False
        return not self.key or header == f"Bearer {self.key}"

    def _body(self, request) -> dict | None:
        if "application/json" not in request.headers.get("content-type", ""):
            return None
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def download(self, request):
        self.downloads += 1
        if "authorization" in request.headers:
            self.downloads_with_auth += 1
            return Reply(403, [("Content-Type", "application/xml")], body=b"<Error>AccessDenied</Error>")
        return Reply(200, [("Content-Type", self.mime)], body=self.data)

    def _file_url(self, prefix: str, task_id: str, ext: str) -> str:
        return f"{self.upstream.url}{prefix}{task_id}.{ext}?Expires=1700000000&Signature=abc%2Bdef"


class SeedanceTasks(ScriptedTasks):
    name, mime = "seedance", "video/mp4"

    def __init__(self, upstream, *, delay: float = 1.0, data: bytes = MP4, key: str = ""):
        super().__init__(upstream, delay=delay, data=data, key=key)
        upstream.route("POST", SEEDANCE_PATH, self.create, repeat=True)
        upstream.route("GET", SEEDANCE_PATH + "/", self.query, path_prefix=True, repeat=True)
        upstream.route("GET", "/tos/seedance/", self.download, path_prefix=True, repeat=True)

    @staticmethod
    def _error(status: int, code: str, message: str):
        return json_reply(status, {"error": {"code": code, "message": message, "type": "BadRequest"}})

    def create(self, request):
        if not self._authorised(request):
            self._refuse("no or wrong Authorization")
            return self._error(401, "AuthenticationError", "the API key is missing or invalid")
        body = self._body(request)
        content = body.get("content") if body else None
        if (not body or not isinstance(body.get("model"), str) or not body["model"] or not isinstance(content, list)
                or not content or not isinstance(content[0], dict) or content[0].get("type") != "text"
                or not isinstance(content[0].get("text"), str) or not content[0]["text"].strip()
                or any(not isinstance(p, dict) or p.get("type") != "image_url" for p in content[1:])):
            self._refuse(f"bad body {request.body[:200]!r}")
            return self._error(400, "InvalidParameter", "model and a text content part are required")
        task_id = self._add(f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}", model=body["model"])
        return json_reply(200, {"id": task_id})

    def query(self, request):
        task_id = request.path.rsplit("/", 1)[-1]
        if not self._authorised(request):
            return self._error(401, "AuthenticationError", "the API key is missing or invalid")
        if task_id not in self.tasks:
            return self._error(404, "ResourceNotFound", f"task {task_id} not found")
        task = self.tasks[task_id]
        answer = {"id": task_id, "model": task["model"], "created_at": int(task["created"]),
                  "updated_at": int(time.time())}  # fmt: skip
        if self._done(task_id):
            answer.update(status="succeeded", content={"video_url": self._file_url("/tos/seedance/", task_id, "mp4")},
                          usage={"completion_tokens": 108900, "total_tokens": 108900})  # fmt: skip
        else:
            answer["status"] = "queued" if self._elapsed(task_id) < self.delay / 3 else "running"
        return json_reply(200, answer)


class SunoTasks(ScriptedTasks):
    name, mime = "suno", "audio/mpeg"

    def __init__(self, upstream, *, delay: float = 1.0, data: bytes = MP3, key: str = ""):
        super().__init__(upstream, delay=delay, data=data, key=key)
        upstream.route("POST", "/suno/submit/music", self.create, repeat=True)
        upstream.route("GET", "/suno/fetch/", self.fetch, path_prefix=True, repeat=True)
        upstream.route("GET", "/suno/cdn/", self.download, path_prefix=True, repeat=True)

    def create(self, request):
        body = self._body(request)
        if not self._authorised(request):
            self._refuse("no or wrong Authorization")
            return json_reply(401, {"code": "unauthorized", "message": "invalid token", "data": None})
        if (not body or not isinstance(body.get("prompt"), str) or not body["prompt"].strip()
                or not isinstance(body.get("tags"), str) or not isinstance(body.get("title"), str)
                or not isinstance(body.get("mv", ""), str)):
            self._refuse(f"bad body {request.body[:200]!r}")
            return json_reply(200, {"code": "invalid_request", "message": "prompt, tags and title are required",
                                    "data": None})  # fmt: skip
        task_id = self._add(str(uuid.uuid4()), title=body["title"], tags=body["tags"])
        return json_reply(200, {"code": "success", "message": "", "data": task_id})

    def fetch(self, request):
        task_id = request.path.rsplit("/", 1)[-1]
        if not self._authorised(request):
            return json_reply(401, {"code": "unauthorized", "message": "invalid token", "data": None})
        if task_id not in self.tasks:
            return json_reply(200, {"code": "task_not_exist", "message": "task_not_exist", "data": None})
        task, done = self.tasks[task_id], self._done(task_id)
        clips = [{"id": f"{task_id[:8]}-{n}", "title": task["title"], "status": "complete" if done else "streaming",
                  "metadata": {"tags": task["tags"]}, "audio_url": self._file_url("/suno/cdn/", f"{task_id}-{n}", "mp3"),
                  "image_url": "", "video_url": ""} for n in (1, 2)]  # fmt: skip
        data = {"task_id": task_id, "action": "MUSIC", "status": "SUCCESS" if done else "IN_PROGRESS",
                "progress": "100%" if done else "40%", "fail_reason": "", "submit_time": int(task["created"]),
                "data": clips if done else []}  # fmt: skip
        return json_reply(200, {"code": "success", "message": "", "data": data})


class MidjourneyTasks(ScriptedTasks):
    name, mime = "midjourney", "image/png"
    BOTS = ("MID_JOURNEY", "NIJI_JOURNEY")

    def __init__(self, upstream, *, delay: float = 1.0, data: bytes = MJ_PNG, key: str = ""):
        super().__init__(upstream, delay=delay, data=data, key=key)
        self.next_id = int(time.time() * 1000) * 1000
        upstream.route("POST", "/mj/submit/imagine", self.imagine, repeat=True)
        upstream.route("POST", "/mj/submit/action", self.action, repeat=True)
        upstream.route("GET", "/mj/task/", self.fetch, path_prefix=True, repeat=True)
        upstream.route("GET", "/mj/cdn/", self.download, path_prefix=True, repeat=True)

    @staticmethod
    def _submitted(code: int, description: str, result: str | None = None):
        return json_reply(200, {"code": code, "description": description, "properties": {}, "result": result})

    def _new(self, **fields) -> str:
        with self.lock:
            self.next_id += 1
            task_id = str(self.next_id)
        return self._add(task_id, hash=str(uuid.uuid4()), **fields)

    def imagine(self, request):
        body = self._body(request)
        if not self._authorised(request):
            self._refuse("no or wrong Authorization")
            return json_reply(401, {"error": "unauthorized"})
        if (not body or body.get("botType") not in self.BOTS or not isinstance(body.get("prompt"), str)
                or not body["prompt"].strip() or not isinstance(body.get("base64Array", []), list)):
            self._refuse(f"bad imagine body {request.body[:200]!r}")
            return self._submitted(21, "参数错误")
        return self._submitted(1, "提交成功", self._new(action="IMAGINE", prompt=body["prompt"]))

    def action(self, request):
        body = self._body(request) or {}
        parent = self.tasks.get(str(body.get("taskId")))
        if not self._authorised(request):
            self._refuse("no or wrong Authorization")
            return json_reply(401, {"error": "unauthorized"})
        custom_id = body.get("customId")
        if parent is None or not self._done(str(body["taskId"])) or custom_id not in _button_ids(parent["hash"]):
            self._refuse(f"bad action body {request.body[:200]!r}")
            return self._submitted(21, "参数错误")
        name = "UPSCALE" if "::upsample::" in custom_id else "VARIATION"
        return self._submitted(1, "提交成功", self._new(action=name, prompt=parent["prompt"]))

    def fetch(self, request):
        parts = request.path.strip("/").split("/")  # mj, task, <id>, fetch
        if len(parts) != 4 or parts[3] != "fetch" or not self._authorised(request):
            return json_reply(404 if len(parts) != 4 else 401, {"error": "not found"})
        task_id = parts[2]
        if task_id not in self.tasks:
            return json_reply(404, {"code": 4, "description": "任务不存在"})
        task, done = self.tasks[task_id], self._done(task_id)
        answer = {"id": task_id, "action": task["action"], "prompt": task["prompt"], "promptEn": task["prompt"],
                  "description": "", "failReason": "", "submitTime": int(task["created"] * 1000), "startTime": 0,
                  "finishTime": 0, "state": "", "properties": {}, "status": "SUCCESS" if done else "IN_PROGRESS",
                  "progress": "100%" if done else "50%", "imageUrl": "", "buttons": []}  # fmt: skip
        if done:
            answer.update(imageUrl=self._file_url("/mj/cdn/", task_id, "png"), finishTime=int(time.time() * 1000),
                          buttons=_buttons(task["hash"]) if task["action"] != "UPSCALE" else [])  # fmt: skip
        return json_reply(200, answer)


def _buttons(digest: str) -> list[dict]:
    # What the proxy lists under a finished grid: U1-U4, the reroll, V1-V4.
    ups = [{"customId": f"MJ::JOB::upsample::{n}::{digest}", "emoji": "", "label": f"U{n}", "style": 2, "type": 2}
           for n in range(1, 5)]  # fmt: skip
    reroll = [{"customId": f"MJ::JOB::reroll::0::{digest}::SOLO", "emoji": "🔄", "label": "", "style": 2, "type": 2}]
    variations = [{"customId": f"MJ::JOB::variation::{n}::{digest}", "emoji": "", "label": f"V{n}", "style": 2,
                   "type": 2} for n in range(1, 5)]  # fmt: skip
    return ups + reroll + variations


def _button_ids(digest: str) -> set[str]:
    return {b["customId"] for b in _buttons(digest)}


class PlatformVideoTasks(ScriptedTasks):
    name, mime = "platform", "video/mp4"
    ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4")

    def __init__(self, upstream, *, delay: float = 1.0, data: bytes = MP4_PLATFORM, platform: str = "kling",
                 key: str = ""):
        super().__init__(upstream, delay=delay, data=data, key=key)
        upstream.route("POST", f"/api/{platform}/videos", self.create, repeat=True)
        upstream.route("POST", f"/api/{platform}/tasks", self.query, repeat=True)
        upstream.route("GET", "/platform/cdn/", self.download, path_prefix=True, repeat=True)

    @staticmethod
    def _error(status: int, code: str, message: str):
        return json_reply(status, {"success": False, "error": {"code": code, "message": message}, "trace_id": "t1"})

    def create(self, request):
        if not self._authorised(request):
            self._refuse("no or wrong Authorization")
            return self._error(401, "UNAUTHORIZED", "invalid API key")
        body = self._body(request) or {}
        action = body.get("action")
        good = isinstance(body.get("prompt"), str) and body["prompt"].strip() and isinstance(body.get("duration"), int)
        if action == "text2video":
            good = good and body.get("aspect_ratio") in self.ASPECTS and isinstance(body.get("model", ""), str)
        elif action == "image2video":
            good = good and isinstance(body.get("image_url"), str) and body["image_url"].startswith("http")
        else:
            good = False
        if not good:
            self._refuse(f"bad body {request.body[:200]!r}")
            return self._error(400, "INVALID_PARAMETER", "action, prompt and duration are required")
        return json_reply(200, {"task_id": self._add(str(uuid.uuid4()), duration=body["duration"])})

    def query(self, request):
        body = self._body(request) or {}
        task_id = body.get("task_id")
        if not self._authorised(request):
            return self._error(401, "UNAUTHORIZED", "invalid API key")
        if task_id not in self.tasks:
            return json_reply(200, {"success": False, "error": {"code": "TASK_NOT_FOUND", "message": "no such task"}})
        task = self.tasks[task_id]
        answer = {"task_id": task_id, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                                  time.gmtime(task["created"]))}  # fmt: skip
        if self._done(task_id):
            answer.update(status="succeeded", video={"url": self._file_url("/platform/cdn/", task_id, "mp4"),
                                                     "duration": task["duration"]})  # fmt: skip
        else:
            answer["status"] = "pending" if self._elapsed(task_id) < self.delay / 3 else "processing"
        return json_reply(200, answer)


class MediaTasks:
    """All four services on one upstream; `extra` (e.g. a DashScopeTasks) joins the lookups by task id."""

    def __init__(self, upstream, *, delay: float = 1.0, key: str = "", extra=()):
        self.seedance = SeedanceTasks(upstream, delay=delay, key=key)
        self.suno = SunoTasks(upstream, delay=delay, key=key)
        self.midjourney = MidjourneyTasks(upstream, delay=delay, key=key)
        self.platform = PlatformVideoTasks(upstream, delay=delay, key=key)
        self.services = [self.seedance, self.suno, self.midjourney, self.platform, *extra]

    def set_delay(self, delay: float) -> None:
        for service in self.services:
            service.delay = delay

    @property
    def created(self) -> int:
        return sum(s.created for s in self.services)

    @property
    def rejected(self) -> list[str]:
        return [why for s in self.services for why in s.rejected]

    @property
    def downloads_with_auth(self) -> int:
        return sum(s.downloads_with_auth for s in self.services)

    def service_of(self, task_id: str):
        return next((s for s in self.services if task_id in s.tasks), None)

    def succeeded_at(self, task_id: str) -> float:
        return self.service_of(task_id).succeeded_at(task_id)
