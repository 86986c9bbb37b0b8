"""Image edits: OpenAI-format /images/edits (multipart, also nano-banana) and Gemini generateContent."""

from __future__ import annotations

import base64

import httpx
import pytest

from chat.media.edits import EditsBackend, GeminiImageBackend
from chat.media.errors import MediaError
from chat.media.kinds import EditRequest
from chat.providers.errors import ProviderError
from tests.fakes.imagetasks import png_bytes
from tests.fakes.upstream import json_reply
from tests.media.helpers import HTML, KEY, MP4, PNG, config, fields, file_reply, form, no_sleep

EDITED = png_bytes(3, 3, rgb=(20, 90, 160))
MASK = png_bytes(2, 2, rgb=(0, 0, 0))
REFERENCE = png_bytes(4, 4, rgb=(200, 200, 10))
B64 = base64.b64encode(EDITED).decode()
REQUEST = EditRequest("给画中人换上唐代圆领袍", image=PNG, mime="image/png", mask=MASK, reference_images=[REFERENCE])


def edits(upstream, http, model: str = "gpt-image-1", **extra) -> EditsBackend:
    return EditsBackend(config(upstream, "/v1", model=model, **extra), http, sleep=no_sleep)


def test_openai_edits_sends_the_multipart_form_and_decodes_b64_json(upstream):
    usage = {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50}
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"created": 1713833628, "data": [{"b64_json": B64}],
                                                                "usage": usage}))
    with httpx.Client() as http:
        result = edits(upstream, http).generate(REQUEST)

    assert result.data == EDITED and result.mime == "image/png" and result.extra["usage"] == usage
    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/images/edits")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert fields(sent) == {"prompt": "给画中人换上唐代圆领袍", "model": "gpt-image-1", "n": "1"}
    assert [p for p in form(sent) if p[1]] == [("image", "image.png", "image/png", PNG),
                                               ("image", "reference-1.png", "image/png", REFERENCE),
                                               ("mask", "mask.png", "image/png", MASK)]


def test_nano_banana_edits_ask_for_b64_json_and_the_ratio_and_follow_a_url(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"data": [{"url": upstream.url + "/cdn/e.png",
                                                                          "revised_prompt": "改写"}]}))
    upstream.route("GET", "/cdn/e.png", file_reply(EDITED, "image/png"))
    request = EditRequest("一只猫", image=PNG, reference_images=[REFERENCE], aspect_ratio="16:9")
    with httpx.Client() as http:
        result = edits(upstream, http, model="nano-banana").generate(request)
    assert result.data == EDITED and result.extra["revised_prompt"] == "改写"
    sent, download = upstream.requests
    assert fields(sent) == {"prompt": "一只猫", "model": "nano-banana", "n": "1", "response_format": "b64_json",
                            "aspect_ratio": "16:9"}
    assert [p[0] for p in form(sent) if p[1]] == ["image", "image"]
    assert "authorization" not in download.headers


def test_an_empty_data_list_is_an_error(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"created": 1, "data": []}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http).generate(REQUEST)
    assert caught.value.kind == "no_image" and "没有返回图片" in caught.value.message


@pytest.mark.parametrize("served", [MP4, HTML])
def test_a_download_that_is_not_an_image_is_refused(upstream, served):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"data": [{"url": upstream.url + "/cdn/e.png"}]}))
    upstream.route("GET", "/cdn/e.png", file_reply(served, "image/png"))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http).generate(REQUEST)
    assert caught.value.kind == "no_image"


def test_an_image_over_the_limit_is_refused(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"data": [{"url": upstream.url + "/cdn/e.png"}]}))
    upstream.route("GET", "/cdn/e.png", file_reply(EDITED + bytes(4096), "image/png"))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http, max_bytes=1024).generate(REQUEST)
    assert caught.value.kind == "no_image" and "larger than 1024" in caught.value.detail


def test_http_401_is_auth_without_the_key(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(401, {"error": {"message": f"Incorrect API key {KEY}",
                                                                          "type": "invalid_request_error",
                                                                          "code": "invalid_api_key"}}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http).generate(REQUEST)
    assert caught.value.kind == "auth" and KEY not in caught.value.detail and len(upstream.requests) == 1


def test_http_429_is_rate_limit_after_the_retries(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(429, {"error": {"message": "slow", "type": "rate_limit_error"}}),
                   repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http).generate(REQUEST)
    assert caught.value.kind == "rate_limit" and len(upstream.requests) == 3


def test_a_moderation_refusal_in_a_200_is_moderation(upstream):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"error": {"message": "blocked",
                                                                          "code": "content_policy_violation"}}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        edits(upstream, http).generate(REQUEST)
    assert caught.value.kind == "moderation" and len(upstream.requests) == 1


# --- Gemini generateContent -------------------------------------------------------------------------

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


def gemini(upstream, http, **extra) -> GeminiImageBackend:
    return GeminiImageBackend(config(upstream, model="gemini-2.5-flash-image", **extra), http, sleep=no_sleep)


def test_gemini_sends_the_images_as_inline_data_before_the_text(upstream):
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "好的"}, {"inlineData": {"mimeType": "image/png", "data": B64}}]}, "finishReason": "STOP"}]}
    upstream.route("POST", GEMINI_PATH, json_reply(200, answer))
    request = EditRequest("让画面变成水墨风格", image=PNG, reference_images=[REFERENCE], aspect_ratio="3:4")
    with httpx.Client() as http:
        result = gemini(upstream, http).generate(request)
    assert result.data == EDITED and result.mime == "image/png"
    [sent] = upstream.requests
    assert sent.headers["authorization"] == f"Bearer {KEY}" and sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "contents": [{"role": "user", "parts": [
            {"inlineData": {"data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}},
            {"inlineData": {"data": base64.b64encode(REFERENCE).decode(), "mimeType": "image/png"}},
            {"text": "让画面变成水墨风格"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:4"}},
    }


def test_gemini_without_an_image_is_an_error(upstream):
    upstream.route("POST", GEMINI_PATH, json_reply(200, {"candidates": [{"content": {"parts": [{"text": "不行"}]},
                                                                          "finishReason": "STOP"}]}))
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        gemini(upstream, http).generate(EditRequest("水墨", image=PNG))
    assert caught.value.kind == "no_image"


def test_gemini_takes_no_mask_and_makes_no_call(upstream):
    with httpx.Client() as http, pytest.raises(MediaError) as caught:
        gemini(upstream, http).generate(REQUEST)
    assert caught.value.kind == "bad_request" and "蒙版" in caught.value.message and not upstream.requests


def test_gemini_429_is_rate_limit(upstream):
    body = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    upstream.route("POST", GEMINI_PATH, json_reply(429, body), repeat=True)
    with httpx.Client() as http, pytest.raises(ProviderError) as caught:
        gemini(upstream, http).generate(EditRequest("水墨", image=PNG))
    assert caught.value.kind == "rate_limit"
