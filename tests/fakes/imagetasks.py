"""A DashScope image-task service on the scripted upstream: each task succeeds after a fixed delay.

    tasks = DashScopeTasks(upstream, delay=1.0)      # routes create, poll and a fake OSS host
    ... run jobs against f"{upstream.url}/bj/compatible-mode/v1" ...
    tasks.created        → number of create calls that made a task
    tasks.succeeded_at(task_id) → wall-clock time the task reached SUCCEEDED

The create call is checked as docs/provider-reference.md §2.4 requires (async header, n == 1, size "W*H"). Result
downloads are served from /oss/… and must come without an Authorization header. Stdlib only, so
bench/images.py can use it as well.
"""
from __future__ import annotations

import os
import struct
import threading
import time
import uuid
import zlib

from tests.fakes.upstream import Reply, json_reply

CREATE_PATH = "/services/aigc/text2image/image-synthesis"


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (180, 30, 30), noise: bool = False) -> bytes:
    """A real, valid PNG (so the bytes that get stored can be checked as an image); `noise` makes it
    incompressible, for images of a given size in bytes (about 3 * width * height)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + (os.urandom(3 * width) if noise else bytes(rgb) * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png_bytes()


class DashScopeTasks:
    def __init__(self, upstream, *, delay: float = 1.0, prefix: str = "/bj/api/v1", png: bytes = PNG):
        self.upstream, self.delay, self.png = upstream, delay, png
        self.tasks: dict[str, dict] = {}
        self.rejected: list[str] = []  # why create calls were refused
        self.downloads_with_auth = 0
        self.lock = threading.Lock()
        upstream.route("POST", prefix + CREATE_PATH, self.create, repeat=True)
        upstream.route("GET", prefix + "/tasks/", self.poll, path_prefix=True, repeat=True)
        upstream.route("GET", "/oss/", self.oss, path_prefix=True, repeat=True)

    @property
    def created(self) -> int:
        return len(self.tasks)

    def succeeded_at(self, task_id: str) -> float:
        return self.tasks[task_id]["created"] + self.delay

    def create(self, request):
        if request.headers.get("x-dashscope-async") != "enable":
            self.rejected.append("no async header")
            return json_reply(403, {"code": "AccessDenied", "request_id": "r-sync",
                                    "message": "current user api does not support synchronous calls"})
        body = request.json()
        params = body.get("parameters", {})
        if params.get("n") != 1 or "*" not in params.get("size", "") or not body.get("input", {}).get("prompt"):
            self.rejected.append(f"bad parameters {params!r}")
            return json_reply(400, {"code": "InvalidParameter", "message": "bad parameters", "request_id": "r-bad"})
        task_id = str(uuid.uuid4())
        with self.lock:
            self.tasks[task_id] = {"created": time.time(), "prompt": body["input"]["prompt"]}
        output = {"task_status": "PENDING", "task_id": task_id}
        return json_reply(200, {"output": output, "request_id": "r-" + task_id[:8]})

    def poll(self, request):
        task_id = request.path.rsplit("/", 1)[-1]
        task = self.tasks.get(task_id)
        if task is None:
            output = {"task_id": task_id, "task_status": "UNKNOWN"}
            return json_reply(200, {"request_id": "r-unknown", "output": output})
        elapsed = time.time() - task["created"]
        output = {"task_id": task_id, "task_status": "PENDING" if elapsed < self.delay / 3 else "RUNNING"}
        if elapsed >= self.delay:
            url = f"{self.upstream.url}/oss/{task_id}.png?Expires=1700000000&Signature=abc%2Bdef"
            output.update(task_status="SUCCEEDED", results=[{"orig_prompt": task["prompt"], "url": url,
                                                            "actual_prompt": task["prompt"] + "（扩写）"}],
                          task_metrics={"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0})
        return json_reply(200, {"request_id": "r-poll", "output": output, "usage": {"image_count": 1}})

    def oss(self, request):
        if "authorization" in request.headers:
            self.downloads_with_auth += 1
            return Reply(403, [("Content-Type", "application/xml")], body=b"<Error>AccessDenied</Error>")
        return Reply(200, [("Content-Type", "image/png")], body=self.png)
