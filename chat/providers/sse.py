"""Incremental Server-Sent Events decoder that works on raw bytes.

Network reads split lines, CRLF pairs and multi-byte UTF-8 characters anywhere, so the
decoder keeps state between `feed()` calls. Lines end only at CR, LF or CRLF (the SSE
spec): `str.splitlines()` and httpx's `aiter_lines()` also split on U+2028/U+2029/U+0085,
which providers emit raw inside JSON strings when they serialise with ensure_ascii=False.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Feed byte chunks in, get complete events out.

    `comments` counts comment lines (": OPENROUTER PROCESSING", ":HTTP_STATUS/200"); they
    carry no data but prove the upstream is alive.
    """

    def __init__(self) -> None:
        # "replace" rather than "strict": one bad byte must not kill a whole reply.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # pieces of the current, unterminated line
        self._started = False
        self._skip_lf = False  # the previous chunk ended in CR; a leading LF completes a CRLF
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """Flush at EOF: a final event without its trailing blank line is still delivered."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        if self._partial:
            self._line("".join(self._partial), events)
            self._partial.clear()
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not text:
            return events
        if not self._started:
            self._started = True
            text = text.removeprefix(_BOM)
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        start = 0
        for match in _EOL.finditer(text):
            self._partial.append(text[start : match.start()])
            line = "".join(self._partial)
            self._partial.clear()
            self._line(line, events)
            start = match.end()
        if start < len(text):
            self._partial.append(text[start:])
        self._skip_lf = text.endswith("\r")
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            self.comments += 1
            return
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        # "retry" and unknown fields are ignored, as the spec says.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent("\n".join(self._data), self._event, self._id))
        self._data.clear()
        self._event = None  # the id persists across events, per the spec
