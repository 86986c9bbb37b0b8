"""听写: the endpoint checks the recording, sends it once to the caller's own transcription model,
and answers with the text; every refusal is a Chinese message and makes no upstream call."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from functools import partial

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiCredential, CredentialKind, CredentialStatus, UserQuota
from chat import services
from tests.chat import audio_samples as samples
from tests.chat.spending import spend
from tests.fakes.upstream import Gate, Reply, json_reply
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

URL = reverse("chat:dictation")
PATH = "/v1/audio/transcriptions"


def credential_for(owner, upstream, *, key="sk-alice-0123456789", model="whisper-1", **extra) -> ApiCredential:
    credential = ApiCredential(owner=owner, kind=CredentialKind.OPENAI_COMPATIBLE, label="中转",
                               base_url=upstream.url + "/v1", status=CredentialStatus.VALID,
                               transcription_model=model, **extra)
    credential.set_key(key)
    credential.save()
    return credential


def post_audio(client: Client, audio: bytes, content_type: str = "audio/webm"):
    return client.post(URL, data=audio, content_type=content_type)


def form_parts(request) -> dict[str, tuple[str | None, str, bytes]]:
    """The multipart fields the upstream received: name -> (filename, content type, bytes)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    return {part.get_param("name", header="content-disposition"):
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in message.iter_parts()}


@pytest.fixture
def alice_key(alice, local_provider):
    return credential_for(alice, local_provider)


def test_it_sends_the_recording_with_model_and_language_and_answers_the_text(alice_client, alice_key, upstream):
    upstream.route("POST", PATH, json_reply(200, {"text": " 床前明月光，疑是地上霜。 "}))
    audio = samples.webm(3)
    response = post_audio(alice_client, audio, content_type="application/octet-stream")
    assert response.status_code == 200
    assert response.json() == {"text": "床前明月光，疑是地上霜。"}
    [request] = upstream.requests
    assert request.headers["authorization"] == "Bearer sk-alice-0123456789"
    parts = form_parts(request)
    assert parts["model"][2] == b"whisper-1"
    assert parts["language"][2] == b"zh"
    # Named by what the bytes are, not what the browser declared: the upstream goes by the extension.
    assert parts["file"][:2] == ("recording.webm", "audio/webm")
    assert parts["file"][2] == audio


def test_a_wav_goes_as_a_wav_whatever_it_was_declared(alice_client, alice_key, upstream):
    upstream.route("POST", PATH, json_reply(200, {"text": "举头望明月"}))
    assert post_audio(alice_client, samples.wav(2), content_type="audio/webm").json() == {"text": "举头望明月"}
    assert form_parts(upstream.requests[0])["file"][:2] == ("recording.wav", "audio/wav")


@pytest.mark.parametrize("body", [b"just some text, not audio", b"<html>hi</html>", b"\x89PNG\r\n\x1a\n" + bytes(100)])
def test_what_is_not_audio_is_refused_without_a_call(alice_client, alice_key, upstream, body):
    response = post_audio(alice_client, body)
    assert response.status_code == 415
    assert "不是可识别的音频" in response.json()["error"]
    assert upstream.requests == []


def test_an_empty_body_is_refused(alice_client, alice_key, upstream):
    response = post_audio(alice_client, b"")
    assert response.status_code == 400 and "没有收到录音" in response.json()["error"]
    assert upstream.requests == []


def test_a_recording_over_the_size_limit_is_refused(alice_client, alice_key, upstream, settings):
    settings.DICTATION_MAX_BYTES = 50_000
    response = post_audio(alice_client, samples.wav(2))  # 64 KB
    assert response.status_code == 413
    assert "录音太大" in response.json()["error"] and "48 KB" in response.json()["error"]
    assert upstream.requests == []


@pytest.mark.parametrize("build", [samples.webm, partial(samples.wav, rate=8000), samples.ogg_opus, samples.mp3_cbr,
                                   samples.m4a], ids=["webm", "wav", "ogg", "mp3", "m4a"])
def test_a_recording_over_the_length_limit_is_refused(alice_client, alice_key, upstream, build):
    response = post_audio(alice_client, build(75))
    assert response.status_code == 400
    assert "录音太长（约 75 秒）" in response.json()["error"] and "最多 60 秒" in response.json()["error"]
    assert upstream.requests == []


def test_a_length_the_container_does_not_state_is_estimated_from_the_size(alice_client, alice_key, upstream):
    # An Ogg page with an unknown codec: no length to read, so 400 KB counts as 100 s.
    unknown = b"OggS" + bytes(24) + b"NotACodec" + bytes(400_000)
    response = post_audio(alice_client, unknown)
    assert response.status_code == 400 and "录音太长（约 100 秒）" in response.json()["error"]
    assert upstream.requests == []


def test_without_a_transcription_model_nothing_is_called(alice, alice_client, local_provider):
    credential_for(alice, local_provider, model="")
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 400
    assert response.json()["error"] == "当前密钥不支持语音输入。"
    assert local_provider.requests == []


def test_the_key_is_the_callers_own_never_another_users(alice_key, bob, bob_client, upstream):
    # Alice's connection offers transcription; Bob has none of his own and there is no site key.
    response = bob_client.post(URL + f"?credential={alice_key.pk}", data=samples.webm(3), content_type="audio/webm")
    assert response.status_code == 400 and response.json()["error"] == "当前密钥不支持语音输入。"
    assert upstream.requests == []

    credential_for(bob, upstream, key="sk-bob-9876543210")
    upstream.route("POST", PATH, json_reply(200, {"text": "低头思故乡"}))
    assert post_audio(bob_client, samples.webm(3)).json() == {"text": "低头思故乡"}
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-bob-9876543210"


def test_a_site_wide_key_serves_users_without_their_own(alice, alice_client, local_provider):
    credential_for(None, local_provider, key="sk-site-0000000000", is_default=True)
    local_provider.route("POST", PATH, json_reply(200, {"text": "明月几时有"}))
    assert post_audio(alice_client, samples.webm(3)).json() == {"text": "明月几时有"}
    assert local_provider.requests[0].headers["authorization"] == "Bearer sk-site-0000000000"


def test_anonymous_callers_are_sent_to_log_in_and_nothing_is_called(client, alice_key, upstream):
    response = post_audio(client, samples.webm(3))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert upstream.requests == []


def test_it_needs_the_csrf_token(alice, alice_key, upstream):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_audio(client, samples.webm(3)).status_code == 403
    assert upstream.requests == []


def test_get_is_not_allowed(alice_client, alice_key):
    assert alice_client.get(URL).status_code == 405


def test_it_is_rate_limited_per_user(alice_client, alice_key, upstream, settings):
    settings.DICTATION_LIMIT_PER_MINUTE = 1
    upstream.route("POST", PATH, json_reply(200, {"text": "一"}), repeat=True)
    assert post_audio(alice_client, samples.webm(3)).status_code == 200
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 429 and "过于频繁" in response.json()["error"]
    assert len(upstream.requests) == 1


def test_a_spent_quota_stops_it_before_the_call(alice, alice_client, alice_key, upstream):
    UserQuota.objects.create(user=alice, daily_token_quota=100)
    spend(services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白")), 150)
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 429 and "今日的用量额度已用完" in response.json()["error"]
    assert upstream.requests == []


UPSTREAM_ERRORS = [
    (404, {"error": {"message": "Invalid URL (POST /v1/audio/transcriptions)", "type": "invalid_request_error",
                     "code": ""}}, "接口不支持语音识别"),
    (401, {"error": {"message": "Incorrect API key provided: sk-alic***", "type": "invalid_request_error",
                     "code": "invalid_api_key"}}, "API 密钥无效或已失效"),
    (429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                     "code": "rate_limit_exceeded"}}, "请求过于频繁"),
    (500, {"error": {"message": "internal error", "type": "server_error"}}, "模型服务暂时出错"),
]


@pytest.mark.parametrize(("status", "body", "said"), UPSTREAM_ERRORS)
def test_upstream_errors_are_said_in_chinese(alice_client, alice_key, upstream, status, body, said):
    upstream.route("POST", PATH, json_reply(status, body))
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 502
    assert said in response.json()["error"]
    assert "sk-" not in response.json()["error"]


def test_a_refused_key_is_marked_on_settings(alice_client, alice_key, upstream):
    upstream.route("POST", PATH, json_reply(401, UPSTREAM_ERRORS[1][1]))
    post_audio(alice_client, samples.webm(3))
    alice_key.refresh_from_db()
    assert alice_key.status == CredentialStatus.INVALID


def test_an_upstream_that_does_not_answer_in_time_is_a_timeout(alice_client, alice_key, upstream, settings):
    settings.DICTATION_TIMEOUT = 0.5
    gate = Gate()  # never filled: the reply waits until the test lets it go
    upstream.route("POST", PATH, Reply(200, {"Content-Type": "application/json"}, body=b'{"text": "x"}', hold=gate))
    try:
        response = post_audio(alice_client, samples.webm(3))
    finally:
        gate.release()
    assert response.status_code == 502 and response.json()["error"] == "语音识别超时，请稍后再试。"


@pytest.mark.parametrize("reply", [
    Reply(200, {"Content-Type": "text/html"}, body=b"<html>gateway</html>"),
    json_reply(200, {"result": "no text field"}),
])
def test_an_answer_without_text_is_an_error(alice_client, alice_key, upstream, reply):
    upstream.route("POST", PATH, reply)
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 502 and "无法读取" in response.json()["error"]


def test_silence_asks_to_say_it_again(alice_client, alice_key, upstream):
    upstream.route("POST", PATH, json_reply(200, {"text": "  "}))
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 422 and "没有听清" in response.json()["error"]


def test_a_user_url_pointing_inside_is_refused_before_the_call(alice, alice_client, upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []  # 127.0.0.1 is the server's own network for a user's key
    credential_for(alice, upstream)
    response = post_audio(alice_client, samples.webm(3))
    assert response.status_code == 400 and "内网" in response.json()["error"]
    assert upstream.requests == []


def test_the_chat_page_offers_the_microphone_only_with_a_model(alice, alice_client, alice_key):
    conversation = services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert f'data-url="{URL}"' in page and 'data-max-seconds="60"' in page

    ApiCredential.objects.filter(pk=alice_key.pk).update(transcription_model="")
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'id="chat-mic" class="button small" disabled title="当前密钥不支持语音输入"' in page
    assert "data-url" not in page.split('id="chat-mic"')[1].split(">")[0]
