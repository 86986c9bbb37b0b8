"""Small recordings built byte by byte, for the format checks and the dictation view tests."""

from __future__ import annotations

import struct


def wav(seconds: float, rate: int = 16000) -> bytes:
    """Mono 16-bit PCM silence."""
    data = b"\x00\x00" * int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def _id(ident: int) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big")


def _ebml(ident: int, payload: bytes) -> bytes:
    return _id(ident) + (0x10000000 | len(payload)).to_bytes(4, "big") + payload


def _unknown_size(ident: int) -> bytes:
    """An element header whose size is "unknown" (all ones), as live muxers write Segment and Cluster."""
    return _id(ident) + b"\x01\xff\xff\xff\xff\xff\xff\xff"


def webm(seconds: float, *, stated: bool = False) -> bytes:
    """A WebM the way MediaRecorder writes it (no Duration, clusters of unknown size), with one block
    every 20 ms; `stated` adds a Duration to the Info instead."""
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    info = _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
    if stated:
        info += _ebml(0x4489, struct.pack(">d", seconds * 1000))
    body = _ebml(0x1549A966, info)
    total_ms, cluster_ms = int(seconds * 1000), 0
    while cluster_ms < total_ms or cluster_ms == 0:
        blocks = b"".join(_ebml(0xA3, b"\x81" + struct.pack(">h", rel) + b"\x80" + b"\x00" * 40)
                          for rel in range(0, min(5000, total_ms - cluster_ms + 1), 20))
        body += _unknown_size(0x1F43B675) + _ebml(0xE7, cluster_ms.to_bytes(4, "big")) + blocks
        cluster_ms += 5000
    return header + _unknown_size(0x18538067) + body


def ogg_opus(seconds: float) -> bytes:
    """Two Ogg pages: OpusHead, and one whose granule position ends at `seconds` (48 kHz, pre-skip 312)."""
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)

    def page(granule: int, packet: bytes) -> bytes:
        return (b"OggS" + bytes([0, 0]) + struct.pack("<qIII", granule, 1, 0, 0)
                + bytes([1, len(packet)]) + packet)

    return page(0, head) + page(int(seconds * 48000) + 312, b"\x00" * 100)


def mp3_cbr(seconds: float) -> bytes:
    """MPEG-1 layer III frames at 32 kbit/s, 44.1 kHz (104 bytes a frame, 1152 samples)."""
    frame = b"\xff\xfb\x10\x00" + b"\x00" * 100
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + frame * round(seconds * 44100 / 1152)


def m4a(seconds: float) -> bytes:
    ftyp = struct.pack(">I4s", 20, b"ftyp") + b"M4A \x00\x00\x00\x00isom"
    mvhd_body = bytes(4) + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    return ftyp + moov + struct.pack(">I4s", 16, b"mdat") + bytes(8)
