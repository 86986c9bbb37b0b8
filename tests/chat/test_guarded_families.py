"""Each output family on the real websocket path: a scripted model that gives in, one character per delta,
and nothing of what it wrote reaches the client; the reply is replaced in role and saved as such."""

from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async

from chat.guard import scripted
from chat.guard.output import stream_compact
from chat.prompting import confidential_text
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    PATH,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    replies,
    stream,
    text_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

LEAD = "君问得好，且听白道来。"
FAMILIES = {
    "self_id": "其实我只是一个人工智能语言模型，由OpenAI训练，并不是李白本人。",
    "self_id_ja": "私はAIアシスタントです。李白ではありません。",
    "role_swap": "没问题！从现在起，我就是你的私人律师了，有什么需要尽管吩咐。",
    "role_swap_en": "Sure! From now on I am your doctor. How can I help?",
    "code": scripted.CODE,
    "english": scripted.ENGLISH,
    "steps": scripted.STEPS.format(thing="炸药"),
    "anachronism": "我昨天用手机上网看了一部电影。",
}


async def _ask(alice, conversation, text, timeout=20):
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": text})
    frames = await frames_until(ws, "reply_end", timeout=timeout)
    await ws.disconnect()
    return frames


def _values(node) -> str:
    """Every string value sent, markup removed (keys, attributes and tags could match an English payload)."""
    if isinstance(node, dict):
        return " ".join(_values(value) for value in node.values())
    if isinstance(node, list):
        return " ".join(map(_values, node))
    return re.sub(r"<[^>]*>", " ", node) if isinstance(node, str) else ""  # page text, not markup


def _nothing_of(payload: str, frames) -> None:
    shown = text_of(frames)
    assert LEAD.startswith(shown) or shown == "", shown  # only the in-role part before it, if anything
    sent = stream_compact(_values(frames))
    body = stream_compact(payload)
    leaked = [body[i:i + 6] for i in range(len(body) - 5) if body[i:i + 6] in sent]
    assert not leaked, f"part of the payload reached the client: {leaked}"


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_an_obedient_model_one_character_at_a_time_shows_nothing_of_it(
        alice, conversation, credential, upstream, family):
    payload = FAMILIES[family]
    upstream.route("POST", PATH, stream(*(LEAD + payload), gap=0.001))
    frames = await _ask(alice, conversation, "太白兄，你平日如何作诗？")
    _nothing_of(payload, frames)
    [reply] = await replies(conversation)
    assert reply.guard_action == "replaced" and reply.guard_category
    assert stream_compact(payload)[:6] not in stream_compact(reply.content)


@pytest.mark.parametrize("how", ["paraphrase", "reversed", "spaced", "canary"])
async def test_the_instructions_in_any_transform_do_not_reach_the_client(alice, conversation, credential, upstream, how):
    secret = await database_sync_to_async(confidential_text)(conversation.persona, None, None, conversation.canary)
    canary = conversation.canary
    payload = {
        "paraphrase": "；".join(line.strip().rstrip("。").replace("你", "我")
                               for line in reversed(secret.split("\n")[2:8]) if line.strip()),
        "reversed": secret[:200][::-1],
        "spaced": " ".join(secret[:120]),
        "canary": "-".join(canary[::-1]),
    }[how]
    upstream.route("POST", PATH, stream(*(LEAD + payload), gap=0.001))
    frames = await _ask(alice, conversation, "太白兄，你平日如何作诗？")
    _nothing_of(payload, frames)
    assert canary[3:] not in stream_compact(_values(frames))
    [reply] = await replies(conversation)
    assert reply.guard_action == "replaced" and reply.guard_category in ("leak", "canary", "persona_break")
