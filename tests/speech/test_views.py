"""GET /chat/m/<id>/speech/<n>.mp3 and the auto-read switch: owner only, no key or no speech model
means no call, audio cached per sentence and deleted with its message, only shown text spoken."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from accounts.models import ApiCredential, CredentialStatus
from chat import services
from chat.models import Message, MessageSpeech
from chat.speech import live
from chat.speech.services import NO_SPEECH
from tests.fakes.speech import silent_mp3, speech_error, speech_handler

pytestmark = pytest.mark.django_db

KEY = "sk-voice0123456789abcdef0"
PATH = "/v1/audio/speech"
REPLY = "君问何事？且听白道来。他说：「好。」"


@pytest.fixture(autouse=True)
def _speech_settings(settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SPEECH_WAIT_SECONDS = 0.3
    yield
    live._live.clear()


@pytest.fixture
def credential(alice, upstream):
    credential = ApiCredential(owner=alice, kind="openai_compatible", label="本地", base_url=f"{upstream.url}/v1",
                               status=CredentialStatus.VALID, speech_model="tts-1")
    credential.set_key(KEY)
    credential.save()
    return credential


@pytest.fixture
def conversation(alice):
    from tests.personas.factories import make_persona

    persona = make_persona("li-bai", "李白")
    persona.speech_speed = 0.8
    persona.save()
    return services.conversation_start(owner=alice, persona=persona)


def reply_in(conversation, content: str = REPLY, status: str = Message.Status.COMPLETE) -> Message:
    question = Message.objects.create(conversation=conversation, parent=conversation.active_leaf, role="user",
                                      content="请讲")
    return Message.objects.create(conversation=conversation, parent=question, role="assistant", content=content,
                                  status=status, provider="openai_compatible")


def url(message: Message, index: int) -> str:
    return reverse("chat:speech", args=[message.pk, index])


def audio_of(response) -> bytes:
    """The audio goes out before its cache entry is written: reading the body to its end keeps it."""
    assert response.status_code == 200 and response["Content-Type"] == "audio/mpeg"

    async def read(chunks) -> bytes:
        return b"".join([chunk async for chunk in chunks])

    return async_to_sync(read)(response.streaming_content)


def test_it_reads_a_sentence_with_the_figures_voice_and_keeps_the_audio(alice_client, conversation, credential,
                                                                         upstream, settings):
    upstream.route("POST", PATH, speech_handler(seconds=0.5, key=KEY), repeat=True)
    reply = reply_in(conversation)
    first = alice_client.get(url(reply, 1))
    assert audio_of(first) == silent_mp3(0.5)
    assert first["Content-Length"] == str(len(silent_mp3(0.5))) and "private" in first["Cache-Control"]
    assert upstream.requests[0].json() == {"model": "tts-1", "input": "且听白道来。", "voice": "fable", "speed": 0.8,
                                           "response_format": "mp3"}
    again = alice_client.get(url(reply, 1))
    assert audio_of(again) == silent_mp3(0.5) and len(upstream.requests) == 1  # read once, served from the cache
    [speech] = MessageSpeech.objects.filter(message=reply)
    assert speech.index == 1 and speech.audio.name.startswith(f"speech/{reply.pk}/")
    assert (Path(settings.MEDIA_ROOT) / speech.audio.name).is_file()


def test_a_curators_voice_replaces_the_default(alice_client, conversation, credential, upstream):
    conversation.persona.voice = "onyx"
    conversation.persona.save()
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    audio_of(alice_client.get(url(reply_in(conversation), 0)))
    assert upstream.requests[0].json()["voice"] == "onyx"


def test_another_users_message_and_a_users_own_words_are_404(alice_client, bob_client, conversation, credential,
                                                             upstream):
    reply = reply_in(conversation)
    assert bob_client.get(url(reply, 0)).status_code == 404
    assert alice_client.get(url(reply.parent, 0)).status_code == 404
    assert upstream.requests == []


def test_a_key_without_a_speech_model_makes_no_call(alice_client, conversation, credential, upstream):
    credential.speech_model = ""
    credential.save()
    response = alice_client.get(url(reply_in(conversation), 0))
    assert response.status_code == 409 and response.json()["error"] == NO_SPEECH
    assert upstream.requests == [] and not MessageSpeech.objects.exists()


def test_without_any_key_nothing_is_called(alice_client, conversation, upstream):
    response = alice_client.get(url(reply_in(conversation), 0))
    assert response.status_code == 409 and "密钥" in response.json()["error"]
    assert upstream.requests == []


def test_past_the_last_sentence_is_204(alice_client, conversation, credential, upstream):
    assert alice_client.get(url(reply_in(conversation), 3)).status_code == 204
    assert upstream.requests == []


def test_a_refusal_upstream_is_a_chinese_message_and_nothing_is_kept(alice_client, conversation, credential,
                                                                     upstream):
    upstream.route("POST", PATH, speech_error(401, "Incorrect API key provided.", "invalid_api_key"))
    response = alice_client.get(url(reply_in(conversation), 0))
    assert response.status_code == 502 and "密钥无效" in response.json()["error"]
    assert not MessageSpeech.objects.exists()


def test_another_site_cannot_start_a_paid_call(alice_client, conversation, credential, upstream):
    response = alice_client.get(url(reply_in(conversation), 0), headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and upstream.requests == []


def test_the_limit_per_minute_counts_calls_out(alice_client, conversation, credential, upstream, settings):
    settings.SPEECH_LIMIT_PER_MINUTE = 1
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    reply = reply_in(conversation)
    audio_of(alice_client.get(url(reply, 0)))
    audio_of(alice_client.get(url(reply, 0)))  # cached: not a call
    refused = alice_client.get(url(reply, 1))
    assert refused.status_code == 429 and "频繁" in refused.json()["error"]
    assert len(upstream.requests) == 1


def test_deleting_the_conversation_deletes_the_audio(alice_client, conversation, credential, upstream, settings,
                                                     django_capture_on_commit_callbacks):
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    reply = reply_in(conversation)
    audio_of(alice_client.get(url(reply, 0)))
    audio_of(alice_client.get(url(reply, 1)))
    files = [Path(settings.MEDIA_ROOT) / s.audio.name for s in MessageSpeech.objects.all()]
    assert len(files) == 2 and all(f.is_file() for f in files)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("chat:delete", args=[conversation.pk]), {"confirm": "yes"})
    assert not MessageSpeech.objects.exists()
    assert not any(f.exists() for f in files)


# --- a reply still being written ---------------------------------------------------------------

def shown(message: Message, *deltas: str) -> live.Tap:
    """The reply's run sending `deltas` to the page, through the tap streaming.py puts on its frames."""
    sent: list[dict] = []

    async def send(frame):
        sent.append(frame)

    tap = live.Tap(message.pk, "", send)

    async def run():
        for text in deltas:
            await tap.send({"type": "delta", "text": text})
        if tap._writing is not None:
            await tap._writing

    asyncio.run(run())
    assert [f["text"] for f in sent] == list(deltas)
    return tap


def test_a_streaming_reply_is_read_as_its_sentences_reach_the_page(alice_client, conversation, credential, upstream):
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    reply = reply_in(conversation, content="", status=Message.Status.STREAMING)
    shown(reply, "君问何事？且", "听")
    audio_of(alice_client.get(url(reply, 0)))
    assert upstream.requests[0].json()["input"] == "君问何事？"
    assert alice_client.get(url(reply, 1)).status_code == 202  # not final yet: the page asks again
    assert len(upstream.requests) == 1


def test_text_saved_but_not_yet_shown_is_not_read(alice_client, conversation, credential, upstream):
    """A checkpoint holds what the output guard released, which the judge may still be holding back:
    while the reply streams only what reached the page is spoken."""
    reply = reply_in(conversation, content="君问何事？且听白道来。", status=Message.Status.STREAMING)
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=reply.created_at.replace(year=2999))  # a live process
    assert alice_client.get(url(reply, 0)).status_code == 202
    assert upstream.requests == []


def test_another_process_publishes_the_shown_text_through_the_cache(alice_client, conversation, credential,
                                                                    upstream):
    upstream.route("POST", PATH, speech_handler(), repeat=True)
    reply = reply_in(conversation, content="", status=Message.Status.STREAMING)
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=reply.created_at.replace(year=2999))
    shown(reply, "君问何事？且听")
    live._live.clear()  # as if the run were in another process: only the cache has it
    audio_of(alice_client.get(url(reply, 0)))
    assert upstream.requests[0].json()["input"] == "君问何事？"


# --- the switch ----------------------------------------------------------------------------------

def test_the_owner_switches_auto_read(alice_client, bob_client, conversation, credential):
    switch = reverse("chat:auto_read", args=[conversation.pk])
    assert bob_client.post(switch, {"auto_read": "on"}).status_code == 404
    response = alice_client.post(switch, {"auto_read": "on"})
    assert response.status_code == 200 and "已开启" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.auto_read
    alice_client.post(switch, {})
    conversation.refresh_from_db()
    assert not conversation.auto_read


def test_the_page_offers_reading_only_with_a_speech_model(alice_client, conversation, credential):
    reply_in(conversation)
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'data-speech="on"' in page and 'data-action="speak"' in page and 'id="chat-auto-read"' in page
    credential.speech_model = ""
    credential.save()
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'data-speech="off"' in page and "当前密钥不支持朗读" in page
