"""A scripted speech endpoint (`POST …/audio/speech`, OpenAI-compatible) for tests/fakes/upstream.py,
and the mp3 it answers with: real MPEG-1 Layer III frames, so a browser decodes and plays it.

    upstream.route("POST", "/v1/audio/speech", speech_handler(), repeat=True)
    upstream.route("POST", "/v1/audio/speech", speech_error(401, "Incorrect API key provided", "invalid_api_key"))
"""

from __future__ import annotations

import json

from tests.fakes.upstream import Reply, json_reply

VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "coral", "sage")
# MPEG-1 Layer III, 32 kbit/s, 44.1 kHz, mono: 144 * 32000 / 44100 = 104 bytes a frame, 1152 samples.
FRAME_HEADER = bytes([0xFF, 0xFB, 0x10, 0xC0])
FRAME_BYTES = 104
FRAME_SECONDS = 1152 / 44100


def silent_mp3(seconds: float = 1.0) -> bytes:
    """`seconds` of silence as mp3. Zero side information means zero Huffman bits: every frame
    decodes to silence, and a CBR stream's length gives its duration."""
    frames = max(1, round(seconds / FRAME_SECONDS))
    return (FRAME_HEADER + bytes(FRAME_BYTES - len(FRAME_HEADER))) * frames


def audio_reply(seconds: float = 1.0, **kw) -> Reply:
    return Reply(200, {"Content-Type": "audio/mpeg"}, body=silent_mp3(seconds), **kw)


def speech_error(status: int, message: str, code: str | None = None, type_: str = "invalid_request_error",
                 param: str | None = None) -> Reply:
    """An error body in the shape the reference documents give: {"error": {message, type, param, code}}."""
    return json_reply(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def _invalid(body: dict) -> Reply | None:
    """What the real endpoint refuses: a missing model, input or voice, an unknown voice, a speed
    out of 0.25–4.0, input past 4,096 characters, or a format it does not make."""
    for name in ("model", "input", "voice"):
        if not isinstance(body.get(name), str) or not body[name]:
            return speech_error(400, f"Missing required parameter: '{name}'.", param=name)
    if body["voice"] not in VOICES:
        return speech_error(400, f"Invalid value for 'voice': '{body['voice']}'.", param="voice")
    speed = body.get("speed", 1.0)
    if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
        return speech_error(400, "Invalid value for 'speed'.", param="speed")
    if len(body["input"]) > 4096:
        return speech_error(400, "'input' is too long.", param="input", code="string_above_max_length")
    if body.get("response_format", "mp3") not in ("mp3", "opus", "aac", "flac", "wav", "pcm"):
        return speech_error(400, "Invalid value for 'response_format'.", param="response_format")
    return None


def speech_handler(seconds: float = 1.0, key: str | None = None, **kw):
    """A stateful route: checks each request as the real endpoint would, then answers with audio.
    `key` set: any other bearer token is a 401 with OpenAI's body."""

    def handle(request) -> Reply:
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            return speech_error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = json.loads(request.body)
        except ValueError:
            return speech_error(400, "We could not parse the JSON body of your request.")
        return _invalid(body) or audio_reply(seconds, **kw)

    return handle
