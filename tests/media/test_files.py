"""Sniffing video, audio and images by their first bytes, and the video cost estimate."""

from __future__ import annotations

import pytest

from chat.media.cost import estimate_video
from chat.media.errors import MediaError
from chat.media.files import checked, sniff_media
from tests.media.helpers import HTML, M4A, MP3, MP3_FRAME, MP4, OGG, PNG, WAV, WEBM


@pytest.mark.parametrize(("data", "mime"), [
    (MP4, "video/mp4"), (WEBM, "video/webm"), (MP3, "audio/mpeg"), (MP3_FRAME, "audio/mpeg"), (WAV, "audio/wav"),
    (OGG, "audio/ogg"), (M4A, "audio/mp4"), (PNG, "image/png"), (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
    (HTML, None), (b"", None), (b"\xff\xf1\x50\x80" + bytes(20), None),  # AAC ADTS is not an MP3 frame
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01matroska" + bytes(40), None),
])  # fmt: skip
def test_it_sniffs_the_kind_from_magic_bytes(data, mime):
    assert sniff_media(data) == mime


def test_a_file_of_the_wrong_kind_is_refused_in_chinese():
    with pytest.raises(MediaError) as caught:
        checked(MP3, "video", 1 << 20)
    assert caught.value.reason == "not_media" and caught.value.kind == "upstream"
    assert "不是视频" in caught.value.message


def test_a_file_over_the_limit_is_refused_in_chinese():
    with pytest.raises(MediaError) as caught:
        checked(MP4, "video", 100)
    assert caught.value.reason == "too_large" and "上限" in caught.value.message


def test_the_video_estimate_follows_ark_token_rule_and_a_configured_price():
    five = estimate_video(5, "720p", "16:9")
    assert five.tokens == 1248 * 704 * 24 * 5 // 1024 and five.yuan is None
    assert estimate_video(10, "720p", "16:9").tokens == 2 * five.tokens
    assert estimate_video(5, "1080p", "16:9").tokens > five.tokens > estimate_video(5, "480p", "16:9").tokens
    priced = estimate_video(5, "1080p", "9:16", yuan_per_million=15.0)
    assert priced.yuan == round(priced.tokens * 15 / 1e6, 2)
    assert priced.label().startswith("预计消耗约 ") and f"¥{priced.yuan:.2f}" in priced.label()
