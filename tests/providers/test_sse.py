"""The byte-level SSE decoder (docs/provider-reference.md §5), fed the way a socket would: arbitrary splits."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import httpx
import pytest

from chat.providers.sse import SSEDecoder, SSEEvent
from tests.fakes.upstream import Reply

TEXT = "你好，世界😀！「古月」——今话。"


def decode(*chunks: bytes) -> tuple[list[SSEEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events = [e for c in chunks for e in decoder.feed(c)]
    return events + decoder.close(), decoder


def strided(data: bytes, stride: int) -> list[bytes]:
    return [data[i : i + stride] for i in range(0, len(data), stride)]


def data_event(obj: object) -> bytes:
    return ("data: " + json.dumps(obj, ensure_ascii=False) + "\n\n").encode()


@pytest.mark.parametrize(
    "wire, expected",
    [
        (b"data: a\n\ndata: b\n\n", ["a", "b"]),
        (b"data: a\r\n\r\ndata: b\r\n\r\n", ["a", "b"]),
        (b"data: a\r\rdata: b\r\r", ["a", "b"]),
        (b"data: a\r\n\ndata: b\n\r\n", ["a", "b"]),  # mixed terminators
        (b"data: first\ndata: second\n\n", ["first\nsecond"]),
        (b"data:x\n\ndata:  y\n\n", ["x", " y"]),  # exactly one optional space is stripped
        (b"data\n\n", [""]),  # a field name without colon has an empty value
        (b"\n\n\n", []),  # blank lines alone dispatch nothing
    ],
    ids=["lf", "crlf", "cr", "mixed", "multiline", "one-space", "no-colon", "blank"],
)
def test_it_splits_only_on_cr_lf_and_crlf(wire, expected):
    for stride in (1, 2, 3, 7, len(wire)):
        events, _ = decode(*strided(wire, stride))
        assert [e.data for e in events] == expected, stride


def test_it_joins_a_crlf_split_across_chunks():
    # Taking the lone LF for a blank line would dispatch "a" and "b" as two events.
    events, _ = decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert [e.data for e in events] == ["a\nb"]


def test_it_decodes_utf8_split_at_every_byte():
    wire = data_event({"t": TEXT}) * 2
    for cut in range(1, len(wire)):
        events, _ = decode(wire[:cut], wire[cut:])
        assert [json.loads(e.data)["t"] for e in events] == [TEXT, TEXT], cut


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_it_decodes_utf8_at_any_stride(stride):
    events, _ = decode(*strided(data_event({"t": TEXT}), stride))
    assert json.loads(events[0].data)["t"] == TEXT


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085"])
def test_it_keeps_unicode_line_separators_inside_json(char):
    wire = data_event({"t": f"上{char}下"})
    assert char.encode() in wire  # raw, not escaped: this is what breaks str.splitlines()
    events, _ = decode(*strided(wire, 1))
    assert [json.loads(e.data)["t"] for e in events] == [f"上{char}下"]


def test_it_keeps_other_splitlines_characters_in_plain_data():
    # JSON escapes these control characters, but a data line may still carry them raw.
    events, _ = decode(b"data: a\x0bb\x0cc\x1cd\x1de\x1ef\n\n")
    assert [e.data for e in events] == ["a\x0bb\x0cc\x1cd\x1de\x1ef"]


@pytest.mark.parametrize("stride", [1, 2, 100])
def test_it_strips_a_leading_bom_even_when_split(stride):
    events, _ = decode(*strided("\ufeffdata: 甲\n\ndata: \ufeff乙\n\n".encode(), stride))
    assert [e.data for e in events] == ["甲", "\ufeff乙"]  # only the stream's first BOM goes


def test_it_counts_comments_without_emitting_them():
    events, decoder = decode(b": OPENROUTER PROCESSING\n\n:HTTP_STATUS/200\ndata: x\n\n: OPENROUTER PROCESSING\n\n")
    assert [e.data for e in events] == ["x"]
    assert decoder.comments == 3


def test_it_keeps_event_and_id_fields():
    wire = b"id: 1\nevent: error\ndata: {}\nretry: 10\nfoo: bar\n\ndata: next\n\n"
    events, _ = decode(wire)
    assert events == [SSEEvent("{}", "error", "1"), SSEEvent("next", None, "1")]  # the id persists


@pytest.mark.parametrize("tail", [b"data: last", b"data: last\n", b"data: last\r"])
def test_it_flushes_a_final_event_without_a_blank_line(tail):
    events, _ = decode(b"data: first\n\n" + tail)
    assert [e.data for e in events] == ["first", "last"]


def test_it_replaces_a_truncated_character_at_eof():
    events, _ = decode("data: 好".encode()[:-1])
    assert events == [SSEEvent("\ufffd")]


def test_it_handles_a_5mb_line_fed_in_pieces():
    png = _png(5 * 1024 * 1024 * 3 // 4)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    wire = data_event({"choices": [{"delta": {"images": [{"type": "image_url", "image_url": {"url": url}}]}}]})
    assert len(wire) > 5_000_000
    events, _ = decode(*strided(wire, 65536 - 3))
    [event] = events
    got = json.loads(event.data)["choices"][0]["delta"]["images"][0]["image_url"]["url"]
    assert _is_png(base64.b64decode(got.split(",", 1)[1])) and got == url


async def test_it_decodes_a_5mb_image_line_from_a_socket(upstream):
    png = _png(5 * 1024 * 1024 * 3 // 4)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    body = data_event({"choices": [{"delta": {"images": [{"image_url": {"url": url}}]}}]}) + b"data: [DONE]\n\n"
    upstream.route("POST", "/img", Reply(200, {"Content-Type": "text/event-stream"}, parts=[body]))
    decoder, events = SSEDecoder(), []
    async with httpx.AsyncClient() as client, client.stream("POST", upstream.url + "/img") as response:
        async for piece in response.aiter_bytes():
            events += decoder.feed(piece)
    events += decoder.close()
    assert [e.data for e in events][1:] == ["[DONE]"]
    got = json.loads(events[0].data)["choices"][0]["delta"]["images"][0]["image_url"]["url"]
    assert _is_png(base64.b64decode(got.split(",", 1)[1]))


def _png(size: int) -> bytes:
    """A real RGB PNG of roughly `size` bytes (stored, uncompressed deflate, so it stays big)."""
    width = 1024
    height = max(1, size // (width * 3))
    pattern = bytes(range(256)) * (width * 3 // 256 + 2)
    rows = b"".join(b"\x00" + pattern[y % 256 : y % 256 + width * 3] for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(rows, 0))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _is_png(data: bytes) -> bool:
    """Signature, every chunk's CRC, and IDAT inflating to exactly the size IHDR promises."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] != zlib.crc32(kind + body):
            return False
        header = struct.unpack(">II", body[:8]) if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height = header or (0, 0)
    return len(zlib.decompress(idat)) == height * (1 + width * 3)
