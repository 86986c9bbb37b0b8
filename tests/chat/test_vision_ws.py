"""A message with a picture over the chat websocket, against a scripted upstream (docs/vision.md)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from PIL import Image

from chat.models import Message, MessageImage
from chat.quoting import MESSAGE, quote_user_data
from chat.vision.services import attachment_create
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    PATH,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    stream,
)
from tests.chat.test_consumer import connect as open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def painting() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (40, 80, 70)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def vision(credential):
    credential.text_model, credential.vision_model = "qwen-plus", "qwen-vl-max"
    credential.save()
    return credential


@database_sync_to_async
def attach(owner, conversation) -> MessageImage:
    return attachment_create(owner=owner, conversation=conversation, data=painting())


def stored_for(owner, conversation) -> MessageImage:
    image = MessageImage(owner=owner, conversation=conversation, width=320, height=200)
    image.image.save("bobs.jpg", ContentFile(painting()))
    return image


def stored_bytes(image: MessageImage) -> bytes:
    with image.image.open("rb") as file:
        return file.read()


def image_parts(body: dict) -> list[dict]:
    return [part for m in body["messages"] if isinstance(m["content"], list) for part in m["content"]
            if part["type"] == "image_url"]


async def test_a_picture_reaches_the_vision_model_as_an_image_part(alice, conversation, vision, upstream):
    upstream.route("POST", PATH, stream("此画", "青山如黛。"))
    image = await attach(alice, conversation)
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "太白兄，看看这幅山水", "image_id": image.pk})
    frames = await frames_until(ws, "reply_end")
    await ws.disconnect()
    body = upstream.requests[0].json()
    assert body["model"] == "qwen-vl-max"
    url = "data:image/jpeg;base64," + base64.b64encode(await database_sync_to_async(stored_bytes)(image)).decode()
    assert body["messages"][-1] == {"role": "user", "content": [
        {"type": "text", "text": quote_user_data("太白兄，看看这幅山水", MESSAGE)},
        {"type": "image_url", "image_url": {"url": url}},
    ]}
    assert body["messages"][0]["content"].startswith("你是李白")  # the persona prompt is unchanged
    # The user's message was saved with its picture, and the page was shown it as a thumbnail.
    question = await database_sync_to_async(Message.objects.get)(conversation=conversation, role="user",
                                                                  content="太白兄，看看这幅山水")
    await database_sync_to_async(image.refresh_from_db)()
    assert image.message_id == question.pk
    [shown] = [f for f in frames if f["type"] == "message"]
    assert f"/chat/{conversation.pk}/attachments/{image.pk}/" in shown["message"]["html"]


async def test_only_the_latest_picture_is_sent_and_earlier_ones_become_a_note(alice, conversation, vision, upstream):
    upstream.route("POST", PATH, stream("好画。"), stream("还记得。"))
    image = await attach(alice, conversation)
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看这幅字", "image_id": image.pk})
    await frames_until(ws, "reply_end")
    await ws.send_json_to({"type": "send", "text": "方才那幅字写得如何？"})
    await frames_until(ws, "reply_end")
    await ws.disconnect()
    second = upstream.requests[1].json()
    assert second["model"] == "qwen-plus" and image_parts(second) == []
    texts = [m["content"] for m in second["messages"] if m["role"] == "user"]
    assert texts[-2].startswith("【访客此前出示过一幅图】")
    assert len(json.dumps(second)) < len(json.dumps(upstream.requests[0].json())) - 1000


async def test_another_users_picture_is_an_error_and_nothing_is_sent(alice, bob, conversation, vision, upstream):
    from chat import services
    from tests.personas.factories import make_persona

    bobs = await database_sync_to_async(services.conversation_start)(owner=bob, persona=await database_sync_to_async(
        make_persona)("du-fu", "杜甫"))
    bobs_image = await database_sync_to_async(stored_for)(bob, bobs)  # bob has no vision key of his own
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看看这幅", "image_id": bobs_image.pk})
    frame = await ws.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["code"] == "not_found" and "找不到这幅图" in frame["message"]
    assert await ws.receive_nothing(0.3)
    await ws.disconnect()
    assert upstream.requests == []
    assert not await database_sync_to_async(conversation.messages.filter(content="看看这幅").exists)()
    await database_sync_to_async(bobs_image.refresh_from_db)()
    assert bobs_image.message_id is None


async def test_a_sent_picture_cannot_be_sent_again(alice, conversation, vision, upstream):
    upstream.route("POST", PATH, stream("好画。"))
    image = await attach(alice, conversation)
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看这幅", "image_id": image.pk})
    await frames_until(ws, "reply_end")
    await ws.send_json_to({"type": "send", "text": "再看一次", "image_id": image.pk})
    frame = await ws.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["code"] == "not_found"
    await ws.disconnect()
    assert len(upstream.requests) == 1


async def test_without_a_vision_model_the_question_is_kept_and_no_call_is_made(alice, conversation, vision, upstream):
    image = await attach(alice, conversation)
    vision.vision_model = ""  # the key changed between choosing the picture and sending it
    await database_sync_to_async(vision.save)()
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看这幅画", "image_id": image.pk})
    frames = await frames_until(ws, "reply_end")
    await ws.disconnect()
    assert upstream.requests == []
    end = frames[-1]["message"]
    assert end["status"] == "error" and end["error_kind"] == "no_vision" and "当前密钥不支持识图" in end["html"]
    await database_sync_to_async(image.refresh_from_db)()
    assert image.message_id is not None  # the question keeps its picture: 重新生成 works once a model is set


async def test_regenerating_sends_the_questions_picture_again(alice, conversation, vision, upstream):
    upstream.route("POST", PATH, stream("好画。"), stream("妙笔。"))
    image = await attach(alice, conversation)
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看这幅", "image_id": image.pk})
    first = (await frames_until(ws, "reply_end"))[-1]["message"]
    await ws.send_json_to({"type": "regenerate", "message_id": first["id"]})
    await frames_until(ws, "reply_end")
    await ws.disconnect()
    again = upstream.requests[1].json()
    assert again["model"] == "qwen-vl-max" and len(image_parts(again)) == 1


@pytest.mark.parametrize("image_id", ["7", True, -1, 0, 2**64])
async def test_a_malformed_image_id_is_refused_by_shape(alice, conversation, vision, upstream, image_id):
    ws = await open_socket(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "看这幅", "image_id": image_id})
    frame = await ws.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["code"] == "bad_request"
    await ws.disconnect()
    assert upstream.requests == []
