"""Result files: telling video, audio and images apart by their first bytes, and downloading them.

Images go through chat.images.backends.download unchanged. Video and audio cannot (it accepts only
images), so `download_media` keeps its rules: http(s) only, the allowlist unless `public_ok`, the
connection only to addresses `download_guard` allows, the size limit while reading, no API key.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from chat.images.backends import BackendConfig, Sleep, download, download_guard, host_allowed, timeout
from chat.images.backends import sniff_mime as sniff_image
from chat.media.errors import MediaError
from chat.media.kinds import MediaResult
from chat.providers.retry import backoff_delay
from guyue.lib.netguard import UnsafeURL, sync_client

VIDEO_MIMES = ("video/mp4", "video/webm")
AUDIO_MIMES = ("audio/mpeg", "audio/wav", "audio/mp4", "audio/ogg")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4", "video/webm": "webm",
              "audio/mpeg": "mp3", "audio/wav": "wav", "audio/mp4": "m4a", "audio/ogg": "ogg"}
MIMES = {ext: mime for mime, ext in EXTENSIONS.items()}
WHAT = {"video": "视频（MP4 或 WebM）", "audio": "音频（MP3、WAV、M4A 或 OGG）"}
_AUDIO_BRANDS = (b"M4A ", b"M4B ")


def sniff_media(data: bytes) -> str | None:
    """The MIME type the magic bytes say, for the kinds the studio keeps; None for anything else."""
    if data[4:8] == b"ftyp":
        return "audio/mp4" if data[8:12] in _AUDIO_BRANDS else "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, and WebM when the doctype says so
        return "video/webm" if b"webm" in data[:64] else None
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0
                                   and data[1] & 0x06):  # an MPEG audio frame with a layer, i.e. not AAC
        return "audio/mpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    return sniff_image(data)


def checked(data: bytes, kind: str, max_bytes: int) -> MediaResult:
    if len(data) > max_bytes:
        raise MediaError("upstream", "too_large", limit=_mb(max_bytes), detail=f"file larger than {max_bytes} bytes")
    mime = sniff_media(data)
    if mime is None or not mime.startswith(kind + "/"):
        raise MediaError("upstream", "not_media", what=WHAT[kind], detail=f"expected {kind}, got {mime or 'unknown'}")
    return MediaResult(data=data, mime=mime)


def fetch_image(url: str, config: BackendConfig, *, sleep: Sleep = time.sleep) -> MediaResult:
    """Relay CDNs cannot be listed, so any public host; private ones only when allowlisted."""
    image = download(url, config, public_ok=True, sleep=sleep)
    return MediaResult(data=image.data, mime=image.mime)


def download_media(url: str, config: BackendConfig, kind: str, *, public_ok: bool = True,
                   sleep: Sleep = time.sleep) -> MediaResult:
    """`kind` is "video" or "audio". Links expire, so the caller downloads as soon as a task succeeds."""
    host = urlsplit(url).hostname
    if urlsplit(url).scheme not in ("http", "https"):
        raise MediaError("bad_request", "refused_url", detail="file URL is not http(s)")
    if not public_ok and not host_allowed(url, config.allowed_hosts):
        raise MediaError("bad_request", "refused_url", detail=f"host {host!r} is not in the allowlist",
                         message=f"文件所在的主机 {host} 不在允许下载的范围内，已拒绝下载。")
    retries = 0
    with sync_client(download_guard(config)) as http:
        while True:
            try:
                return checked(_download_once(http, url, config, kind), kind, config.max_bytes)
            except MediaError as error:
                if not error.retryable or retries >= 2:
                    raise
                sleep(backoff_delay(retries, None))
                retries += 1


def _download_once(http: httpx.Client, url: str, config: BackendConfig, kind: str) -> bytes:
    host = urlsplit(url).hostname
    try:
        with http.stream("GET", url, headers={"Accept": f"{kind}/*"}, timeout=timeout(config, 120.0)) as response:
            if response.status_code != 200:
                raise MediaError("upstream", "result_expired", retryable=response.status_code >= 500,
                                 detail=f"download answered HTTP {response.status_code}")  # fmt: skip
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > config.max_bytes:
                    raise MediaError("upstream", "too_large", limit=_mb(config.max_bytes),
                                     detail=f"file larger than {config.max_bytes} bytes")  # fmt: skip
    except UnsafeURL as exc:
        raise MediaError("bad_request", "refused_url", detail=f"refused at connect: {exc}",
                         message=f"文件所在的主机 {host} 指向本机或内网地址，已拒绝下载。如确为可信的本地服务，"
                                 "管理员可在 IMAGE_DOWNLOAD_ALLOWED_HOSTS 设置中写明该主机。") from None
    except httpx.HTTPError as exc:
        raise MediaError("upstream", "result_expired", retryable=True,
                         detail=f"download failed: {type(exc).__name__}") from None
    return bytes(body)


def _mb(limit: int) -> str:
    return f"{limit / (1024 * 1024):.3g}"

