"""The speech client against a scripted /audio/speech on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import pytest

from chat.speech.tts import SpeechConfig, SpeechError, synthesize
from guyue.lib.netguard import AddressGuard
from tests.fakes.speech import audio_reply, silent_mp3, speech_error, speech_handler
from tests.fakes.upstream import Reply, json_reply

KEY = "sk-speech0123456789abcdef"
PATH = "/v1/audio/speech"


def config(upstream, **kw) -> SpeechConfig:
    values = {"base_url": f"{upstream.url}/v1", "api_key": KEY, "model": "tts-1", "voice": "fable", "speed": 1.25,
              "timeout": 2.0, "guard": None}
    return SpeechConfig(**{**values, **kw})


async def test_it_sends_the_documented_request_and_returns_the_mp3(upstream):
    upstream.route("POST", PATH, speech_handler(seconds=0.5, key=KEY))
    audio = await synthesize(config(upstream), "君问何事？")
    assert audio == silent_mp3(0.5)
    [request] = upstream.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"model": "tts-1", "input": "君问何事？", "voice": "fable", "speed": 1.25,
                              "response_format": "mp3"}


@pytest.mark.parametrize(("reply", "kind", "words"), [
    (speech_error(401, "Incorrect API key provided.", "invalid_api_key"), "auth", "密钥无效"),
    (speech_error(429, "Rate limit reached for tts-1.", "rate_limit_exceeded", "requests"), "rate_limit", "频繁"),
    (speech_error(429, "You exceeded your current quota.", "insufficient_quota", "insufficient_quota"), "billing",
     "余额不足"),
    (speech_error(400, "Invalid value for 'voice'.", param="voice"), "bad_request", "音色"),
    (json_reply(404, {"error": {"message": "Invalid URL (POST /v1/audio/speech)", "type": "invalid_request_error"}}),
     "not_found", "404"),
    (speech_error(500, "The server had an error while processing your request.", type_="server_error"), "upstream",
     "暂时出错"),
    (json_reply(200, {"object": "list", "data": []}), "not_audio", "不是音频"),
    (Reply(200, {"Content-Type": "audio/mpeg"}, body=b""), "not_audio", "不是音频"),
])
async def test_errors_come_back_as_clear_chinese_messages(upstream, reply, kind, words):
    upstream.route("POST", PATH, reply)
    with pytest.raises(SpeechError) as caught:
        await synthesize(config(upstream), "好。")
    assert caught.value.kind == kind and words in caught.value.message
    assert KEY not in caught.value.detail


async def test_an_endpoint_that_never_answers_is_a_timeout(upstream):
    upstream.route("POST", PATH, audio_reply(header_delay=3.0))
    with pytest.raises(SpeechError) as caught:
        await synthesize(config(upstream, timeout=0.3), "好。")
    assert caught.value.kind == "timeout" and "没有回应" in caught.value.message


async def test_a_user_base_url_reaches_public_addresses_only(upstream):
    upstream.route("POST", PATH, audio_reply())
    with pytest.raises(SpeechError) as caught:
        await synthesize(config(upstream, guard=AddressGuard()), "好。")
    assert caught.value.kind == "unreachable"
    assert upstream.requests == []


async def test_the_scripted_endpoint_refuses_what_the_real_one_refuses(upstream):
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    with pytest.raises(SpeechError) as caught:
        await synthesize(config(upstream, voice="xiaoxiao"), "好。")
    assert caught.value.kind == "bad_request"
    with pytest.raises(SpeechError):
        await synthesize(config(upstream, speed=5.0), "好。")
