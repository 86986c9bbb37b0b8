"""Shared pieces of the media back-end tests: a config pointed at the scripted upstream, real magic
bytes for each kind of file, a multipart reader for recorded requests, and a no-sleep task wait."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from chat.images.backends import BackendConfig, wait_for_task
from tests.fakes.imagetasks import PNG
from tests.fakes.upstream import Reply

KEY = "sk-media-0123456789abcdef"

# Real file heads: what the sniffing checks, padded so the bytes look like files.
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free" + bytes(200)
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm" + bytes(200)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x0f" + bytes(15) + b"\xff\xfb\x90\x64" + bytes(200)
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(200)
WAV = b"RIFF\xe4\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(200)
OGG = b"OggS\x00\x02" + bytes(200)
M4A = b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(200)
HTML = b"<!doctype html><html><body>403 Forbidden</body></html>"

__all__ = ["KEY", "M4A", "MP3", "MP3_FRAME", "MP4", "OGG", "PNG", "WAV", "WEBM", "config", "file_reply", "form",
           "no_sleep", "wait"]


def config(upstream, base: str = "", *, model: str = "m", max_bytes: int = 1 << 20,
           allowed: tuple[str, ...] = ("127.0.0.1",)) -> BackendConfig:
    return BackendConfig(kind="openai_compatible", base_url=upstream.url + base, api_key=KEY, model=model,
                         allowed_hosts=allowed, max_bytes=max_bytes)


def file_reply(data: bytes, mime: str) -> Reply:
    return Reply(200, [("Content-Type", mime)], body=data)


def no_sleep(seconds: float) -> None:
    return None


def wait(backend, task_id: str):
    return wait_for_task(backend, task_id, interval=0.01, max_interval=0.01, deadline=1e12, sleep=no_sleep)


def form(recorded) -> list[tuple[str, str | None, str, bytes]]:
    """(name, filename, content type, bytes) for each part of a recorded multipart body, in order."""
    head = f"Content-Type: {recorded.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + recorded.body)
    assert message.is_multipart(), recorded.headers["content-type"]
    return [(part.get_param("name", header="content-disposition"), part.get_filename(), part.get_content_type(),
             part.get_payload(decode=True)) for part in message.iter_parts()]


def fields(recorded) -> dict[str, str]:
    return {name: data.decode() for name, filename, _, data in form(recorded) if filename is None}
