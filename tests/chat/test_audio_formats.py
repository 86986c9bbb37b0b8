"""A recording's format is read from its bytes, and its length from its container."""

from __future__ import annotations

import pytest

from chat.speech_input import formats
from tests.chat import audio_samples as samples

BUILDERS = {"wav": samples.wav, "webm": samples.webm, "ogg": samples.ogg_opus, "mp3": samples.mp3_cbr,
            "m4a": samples.m4a}


@pytest.mark.parametrize("name", BUILDERS)
def test_it_names_the_format_and_reads_the_length(name):
    for seconds in (2.0, 59.0, 90.0):
        data = BUILDERS[name](seconds)
        fmt = formats.sniff(data)
        assert fmt is not None and fmt.name == name
        assert formats.duration(fmt, data) == pytest.approx(seconds, abs=0.6)


def test_it_reads_a_stated_webm_duration():
    assert formats.duration(formats.WEBM, samples.webm(12, stated=True)) == pytest.approx(12)


@pytest.mark.parametrize("data", [
    b"", b"hello, this is text", b"<html><body>not audio</body></html>", b"\x89PNG\r\n\x1a\n" + bytes(64),
    b"GIF89a" + bytes(64), b"RIFF\x00\x00\x00\x00AVI LIST", b"\xff\xd8\xff\xe0" + bytes(64),
    b"\xff\xfb\x90\x00" + bytes(600),  # one MP3 frame header and nothing after it
    b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska",  # EBML, but a Matroska video, not WebM audio
])
def test_it_refuses_what_is_not_audio(data):
    assert formats.sniff(data) is None


def test_it_knows_an_mp3_without_a_tag_by_its_frames():
    data = samples.mp3_cbr(3)[10:]
    assert formats.sniff(data) == formats.MP3
    assert formats.duration(formats.MP3, data) == pytest.approx(3, abs=0.1)


def test_the_name_and_declared_type_play_no_part():
    # sniff sees bytes only: a WAV is a WAV whatever it was called, text is text.
    assert formats.sniff(samples.wav(1)) == formats.WAV
    assert formats.sniff(b"audio/webm") is None


def test_a_truncated_container_gives_no_length_rather_than_an_error():
    data = samples.webm(10)[:60]
    assert formats.duration(formats.WEBM, data) is None
    assert formats.duration(formats.WAV, b"RIFF\x00\x00\x00\x00WAVE") is None
    assert formats.duration(formats.OGG, b"OggS" + bytes(20)) is None
