"""What a recording is, judged by its bytes (never its name or declared type), and how long it lasts.

`sniff` names the container from its magic bytes; `duration` reads the length from the container
where it states it (WAV header, MP3 Xing frame count or constant bit rate, the last Ogg page's
granule position, WebM's Duration or its last cluster's time, MP4's mvhd), and returns None when
it does not: the caller then estimates from the size (docs/voice-input.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class AudioFormat:
    name: str  # also the file extension the upstream sees: Whisper-style APIs go by the extension
    mime: str


WEBM = AudioFormat("webm", "audio/webm")
OGG = AudioFormat("ogg", "audio/ogg")
WAV = AudioFormat("wav", "audio/wav")
MP3 = AudioFormat("mp3", "audio/mpeg")
M4A = AudioFormat("m4a", "audio/mp4")


def sniff(data: bytes) -> AudioFormat | None:
    if data[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:64]:  # EBML header with DocType "webm"
        return WEBM
    if data[:4] == b"OggS":
        return OGG
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return WAV
    if data[:3] == b"ID3" or _mp3_frames_at_start(data):
        return MP3
    if data[4:8] == b"ftyp":
        return M4A
    return None


def duration(fmt: AudioFormat, data: bytes) -> float | None:
    """Seconds, as the container states them; None when it does not say (or cannot be read)."""
    reader = {"webm": _webm_duration, "ogg": _ogg_duration, "wav": _wav_duration, "mp3": _mp3_duration,
              "m4a": _mp4_duration}[fmt.name]
    try:
        seconds = reader(data)
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return None
    return seconds if seconds is not None and seconds >= 0 else None


# --- WAV ---------------------------------------------------------------------------------------


def _wav_duration(data: bytes) -> float | None:
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt ":
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif chunk == b"data":
            # A streamed WAV may leave the size unset (0 or 0xFFFFFFFF): the bytes present count.
            present = len(data) - pos - 8
            size = present if size in (0, 0xFFFFFFFF) else min(size, present)
            return size / byte_rate if byte_rate else None
        pos += 8 + size + (size & 1)
    return None


# --- MP3 ---------------------------------------------------------------------------------------

_MP3_BITRATES = {  # kbit/s by (MPEG-1?, layer) and index
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Frame:
    bitrate: int  # bit/s
    sample_rate: int
    samples: int
    mpeg1: bool
    mono: bool


def _mp3_frame(data: bytes, pos: int) -> _Frame | None:
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    bitrate_index, rate_index = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    table = _MP3_BITRATES.get((mpeg1, layer)) or _MP3_BITRATES[(False, 3)]
    samples = 384 if layer == 1 else 1152 if (layer == 2 or mpeg1) else 576
    return _Frame(table[bitrate_index] * 1000, _MP3_RATES[version][rate_index], samples, mpeg1,
                  mono=(data[pos + 3] >> 6) == 3)


def _mp3_frame_length(data: bytes, pos: int, frame: _Frame) -> int:
    padding = (data[pos + 2] >> 1) & 1
    if frame.samples == 384:
        return (12 * frame.bitrate // frame.sample_rate + padding) * 4
    return frame.samples // 8 * frame.bitrate // frame.sample_rate + padding


def _mp3_frames_at_start(data: bytes) -> bool:
    """Two frame headers in a row: one alone is a two-byte pattern any binary may start with."""
    frame = _mp3_frame(data, 0)
    return frame is not None and _mp3_frame(data, _mp3_frame_length(data, 0, frame)) is not None


def _mp3_duration(data: bytes) -> float | None:
    pos = 0
    if data[:3] == b"ID3":  # skip the tag: its size is four 7-bit bytes
        pos = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    frame = _mp3_frame(data, pos)
    if frame is None:
        return None
    # A Xing/Info frame (VBR, and LAME's CBR) counts the frames; without one the bit rate is constant.
    side = (17 if frame.mono else 32) if frame.mpeg1 else (9 if frame.mono else 17)
    tag = pos + 4 + side
    if data[tag:tag + 4] in (b"Xing", b"Info") and struct.unpack_from(">I", data, tag + 4)[0] & 1:
        frames = struct.unpack_from(">I", data, tag + 8)[0]
        return frames * frame.samples / frame.sample_rate
    return (len(data) - pos) * 8 / frame.bitrate


# --- Ogg (Opus, Vorbis) ------------------------------------------------------------------------


def _ogg_duration(data: bytes) -> float | None:
    # The first page's packet says the codec and rate; the last page's granule is the sample count.
    first = data[28:28 + 19]
    if first[:8] == b"OpusHead":
        rate, pre_skip = 48000, struct.unpack_from("<H", first, 10)[0]  # Opus granules are always 48 kHz
    elif first[:7] == b"\x01vorbis":
        rate, pre_skip = struct.unpack_from("<I", first, 12)[0], 0
    else:
        return None
    last = data.rfind(b"OggS")
    granule = struct.unpack_from("<q", data, last + 6)[0]
    return max(granule - pre_skip, 0) / rate if granule >= 0 else None


# --- WebM (EBML) -------------------------------------------------------------------------------

_SEGMENT, _INFO, _CLUSTER = 0x18538067, 0x1549A966, 0x1F43B675
_TIMECODE_SCALE, _DURATION, _TIMECODE, _SIMPLE_BLOCK, _BLOCK_GROUP = 0x2AD7B1, 0x4489, 0xE7, 0xA3, 0xA0
_UNKNOWN = -1


def _vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at pos: (value, length). Sizes drop the length marker; IDs keep it."""
    first = data[pos]
    length = 9 - first.bit_length()
    if not 1 <= length <= 8:
        raise ValueError("bad vint")
    if len(data) < pos + length:
        raise ValueError("truncated vint")
    value = first if marker else first & (0xFF >> length)
    all_ones = value == (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
        all_ones = all_ones and byte == 0xFF
    return (_UNKNOWN if all_ones and not marker else value), length


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """(id, start of the payload, payload size or _UNKNOWN)."""
    ident, n = _vint(data, pos, marker=True)
    size, m = _vint(data, pos + n, marker=False)
    return ident, pos + n + m, size


def _webm_duration(data: bytes) -> float | None:
    ident, pos, size = _element(data, 0)
    pos += size  # past the EBML header
    ident, pos, _ = _element(data, pos)
    if ident != _SEGMENT:
        return None
    scale, stated, last_ms = 1_000_000, None, None
    # MediaRecorder writes no Duration and clusters of unknown size: walk into them, block by block.
    while pos < len(data):
        ident, start, size = _element(data, pos)
        if ident == _INFO:
            scale, stated = _webm_info(data[start:start + size], scale)
        elif ident == _CLUSTER:
            pos = start
            continue
        elif ident == _TIMECODE:
            cluster_ms = int.from_bytes(data[start:start + size], "big")
            last_ms = cluster_ms
        elif ident in (_SIMPLE_BLOCK, _BLOCK_GROUP) and last_ms is not None:
            block = start if ident == _SIMPLE_BLOCK else _element(data, start)[1]
            _, track_len = _vint(data, block, marker=False)
            relative = struct.unpack_from(">h", data, block + track_len)[0]
            last_ms = max(last_ms, cluster_ms + relative)
        if size == _UNKNOWN or start + size > len(data):
            break
        pos = start + size
    if stated is not None:
        return stated * scale / 1e9
    return last_ms * scale / 1e9 if last_ms is not None else None


def _webm_info(info: bytes, scale: int) -> tuple[int, float | None]:
    pos, stated = 0, None
    while pos < len(info):
        ident, start, size = _element(info, pos)
        if ident == _TIMECODE_SCALE:
            scale = int.from_bytes(info[start:start + size], "big")
        elif ident == _DURATION:
            stated = struct.unpack(">f" if size == 4 else ">d", info[start:start + size])[0]
        pos = start + size
    return scale, stated


# --- MP4 / M4A ---------------------------------------------------------------------------------


def _boxes(data: bytes, pos: int, end: int):
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _mp4_duration(data: bytes) -> float | None:
    for kind, start, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for inner, body, _ in _boxes(data, start, end):
            if inner == b"mvhd":
                if data[body] == 1:  # version 1: 64-bit times
                    scale, length = struct.unpack_from(">IQ", data, body + 20)
                else:
                    scale, length = struct.unpack_from(">II", data, body + 12)
                return length / scale
    return None
