"""One byte range of a stored file (RFC 9110 §14): what a browser's <video> asks for to seek."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK = 64 * 1024


def ranged(request: HttpRequest, handle: IO[bytes], size: int, mime: str) -> HttpResponse | None:
    """A 206 (or 416) for a single `Range: bytes=…` request; None for anything else, which the caller
    answers with the whole file (several ranges at once are rare and may be answered whole)."""
    match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle.seek(start)
    response = StreamingHttpResponse(_read(handle, end - start + 1), status=206, content_type=mime)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    return response


def _read(handle: IO[bytes], length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()
