"""A salon (雅集) of four figures over the websocket, with a scripted model (docs/salon.md): turn order,
silence (静听), the turn bound, stop mid-turn, regenerating one speaker, an absent figure, and the
verse games the site keeps the rules of."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import services
from chat.models import PASSED, Conversation, Message
from chat.selectors import branch_messages
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    PATH,
    connect,
    credential,
    fast_timeouts,
    frames_until,
    stream,
)
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def figures():
    return [
        make_persona("li-bai", "李白"),
        make_persona("du-fu", "杜甫", birth_year=712, death_year=770),
        make_persona("wang-wei", "王维", birth_year=701, death_year=761),
        make_persona("su-shi", "苏轼", dynasty="song", birth_year=1037, death_year=1101),
    ]


@pytest.fixture
def salon(alice, figures):
    host, *guests = figures
    return services.conversation_start(owner=alice, persona=host, guests=guests)


def _system(request) -> str:
    return request.json()["messages"][0]["content"]


def _speaker(request) -> str:
    return _system(request)[2:4]  # "你是李白…"


@database_sync_to_async
def _saved(conversation) -> list[Message]:
    return list(conversation.messages.filter(role="assistant").exclude(provider="greeting").order_by("id"))


@database_sync_to_async
def _branch(conversation) -> list[Message]:
    return branch_messages(Conversation.objects.with_figures().get(pk=conversation.pk))


async def _turn(ws, count: int) -> list[dict]:
    """The frames of one user message's turn, up to its `count`-th reply_end or reply_pass."""
    frames, ends = [], 0
    while ends < count:
        frame = await ws.receive_json_from(timeout=10)
        frames.append(frame)
        ends += frame["type"] in ("reply_end", "reply_pass")
    return frames


def test_the_salon_seats_its_guests_in_order_and_names_them(salon, figures):
    assert salon.figures == figures and salon.title == "李白、杜甫、王维与苏轼"
    greetings = list(salon.messages.order_by("id"))
    assert [m.speaker_id for m in greetings] == [None, *(f.pk for f in figures[1:])]
    assert salon.active_leaf == greetings[-1]


def test_a_salon_has_at_most_four_figures_each_once(alice, figures):
    extra = make_persona("han-yu", "韩愈", birth_year=768, death_year=824)
    with pytest.raises(services.MessageRejected):
        services.conversation_start(owner=alice, persona=figures[0], guests=[*figures[1:], extra])
    with pytest.raises(services.MessageRejected):
        services.conversation_start(owner=alice, persona=figures[0], guests=[figures[1], figures[1]])


def test_the_start_form_opens_a_salon_and_refuses_a_figure_twice(alice_client, figures):
    url = reverse("chat:start", args=["li-bai"])
    refused = alice_client.post(url, {"guest_1": figures[1].pk, "guest_2": figures[1].pk})
    assert refused.status_code == 400 and "同场人物不能重复" in refused.content.decode()
    response = alice_client.post(url, {"guest_1": figures[1].pk, "guest_2": figures[2].pk, "guest_3": figures[3].pk})
    conversation = Conversation.objects.with_figures().get()
    assert conversation.guests == figures[1:]
    page = alice_client.get(response.url).content.decode()
    assert page.count('name="to"') == 4 and "飞花令" in page and "对李白、杜甫、王维与苏轼说" in page


async def test_everyone_answers_in_seat_order_each_hearing_those_before(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("白以为可。"), stream("甫以为然。"), stream("维亦同之。"), stream("轼附议。"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "诸位以为如何？"})
    frames = await _turn(ws, 4)
    await ws.disconnect()
    assert [f["speaker"] for f in frames if f["type"] == "reply_start"] == ["李白", "杜甫", "王维", "苏轼"]
    assert [_speaker(r) for r in upstream.requests] == ["李白", "杜甫", "王维", "苏轼"]
    last = upstream.requests[3].json()["messages"]
    heard = [m["content"] for m in last if m["role"] == "user" and "】说" in m["content"]]
    assert any("【李白】说" in h and "白以为可" in h for h in heard) and any("【王维】说" in h for h in heard)
    # 李白 (to 762) has never heard of 苏轼; 苏轼 knows all three.
    assert "你从未听说过苏轼" in _system(upstream.requests[0]) and "宋" not in _system(upstream.requests[0]).split("【同场人物】")[1].split("【守则】")[0]
    assert "李白（唐，701—762）生活在你之前" in _system(upstream.requests[3])
    saved = await _saved(salon)
    assert [m.parent_id for m in saved[1:]] == [m.pk for m in saved[:-1]]  # one thread, in speaking order


async def test_the_addressed_figure_speaks_first_and_the_others_may_keep_silent(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("此事甫最知之。"), stream("（静", "听）"), stream("维另有一说。"), stream("（静听）"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "杜甫先生，三吏三别写于何时？"})
    frames = await _turn(ws, 4)
    await ws.disconnect()
    assert [_speaker(r) for r in upstream.requests] == ["杜甫", "李白", "王维", "苏轼"]
    assert "若无话可补" not in str(upstream.requests[0].json()["messages"])
    assert "用户这次问的是杜甫" in str(upstream.requests[1].json()["messages"])
    passes = [f for f in frames if f["type"] == "reply_pass"]
    assert [f["speaker"] for f in passes] == ["李白", "苏轼"]
    shown = "".join(f.get("text", "") for f in frames if f["type"] == "delta")
    assert "静听" not in shown and "维另有一说。" in shown  # nothing of a silence reaches the page
    branch = await _branch(salon)
    assert [m.content for m in branch[-3:]] == ["杜甫先生，三吏三别写于何时？", "此事甫最知之。", "维另有一说。"]
    saved = await _saved(salon)
    assert [m.guard_action for m in saved] == ["", PASSED, "", PASSED]
    assert all(m.completion_tokens for m in saved)  # a silence still counts for usage and the quota


async def test_the_turn_is_bounded(alice, salon, credential, upstream, settings):
    settings.SALON_MAX_TURNS = 2
    upstream.route("POST", PATH, stream("甲。"), stream("乙。"), stream("丙。"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "诸位请讲。"})
    await _turn(ws, 2)
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()
    assert len(upstream.requests) == 2


async def test_stopping_mid_turn_ends_it_for_everyone_after(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("甲。"), stream(*"一二三四五六七八九十" * 3, gap=0.05), stream("不该出现。"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "诸位请讲。", "to": "all"})
    await frames_until(ws, "reply_end")
    await frames_until(ws, "delta")
    await ws.send_json_to({"type": "stop"})
    end = (await frames_until(ws, "reply_end"))[-1]["message"]
    assert end["status"] == "stopped"
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()
    assert len(upstream.requests) == 2


async def test_regenerating_one_speaker_asks_only_that_figure(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("甲。"), stream("乙。"), stream("丙。"), stream("丁。"), stream("乙二。"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "诸位请讲。"})
    frames = await _turn(ws, 4)
    du_fu = [f for f in frames if f["type"] == "reply_end"][1]["message"]
    await ws.send_json_to({"type": "regenerate", "message_id": du_fu["id"]})
    again = (await frames_until(ws, "reply_end"))[-1]["message"]
    await ws.disconnect()
    assert len(upstream.requests) == 5 and _speaker(upstream.requests[4]) == "杜甫"
    assert again["parent_id"] == du_fu["parent_id"] and "2/2" in again["html"] and "杜甫" in again["html"]


async def test_ticking_two_figures_asks_them_first(alice, salon, credential, upstream, figures):
    upstream.route("POST", PATH, stream("轼答。"), stream("维答。"), stream("（静听）"), stream("（静听）"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "二位怎么看？", "to": ["su-shi", "wang-wei"]})
    await _turn(ws, 4)
    await ws.disconnect()
    assert [_speaker(r) for r in upstream.requests] == ["王维", "苏轼", "李白", "杜甫"]  # seat order among the addressed


async def test_a_figure_not_in_the_salon_is_answered_by_the_host(alice, salon, credential, upstream):
    await database_sync_to_async(make_persona)("han-yu", "韩愈", birth_year=768, death_year=824)
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "韩愈，你来说说。"})
    question = (await frames_until(ws, "message"))[-1]["message"]
    note = (await frames_until(ws, "message"))[-1]["message"]
    await ws.disconnect()
    assert upstream.requests == []
    assert question["role"] == "user" and note["role"] == "assistant" and note["parent_id"] == question["id"]
    assert "韩愈并不在今日席上" in note["html"] and "李白" in note["html"]
    branch = await _branch(salon)
    assert branch[-1].speaker_id == salon.persona_id and branch[-2].content == "韩愈，你来说说。"


async def test_feihua_ling_checks_every_line(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("「花间一壶酒」"), stream("好，「感时花溅泪」。"), stream("「明月松间照」"),
                   stream("「感时花溅泪」"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "/飞花令 花"})
    frames = await _turn(ws, 4)
    ends = [f["message"] for f in frames if f["type"] == "reply_end"]
    # 王维's line has no 花 and 苏轼 repeats 杜甫's: the site, not the model, says so.
    assert "game-note" not in ends[0]["html"] and "game-note" not in ends[1]["html"]
    assert "没有令字「花」" in ends[2]["html"] and "已经有人说过了" in ends[3]["html"]
    note = upstream.requests[1].json()["messages"]
    assert any("令字为「花」" in m["content"] and "「花间一壶酒」" in m["content"] for m in note if m["role"] == "system")
    # The user's own lines are checked before anything is saved or sent.
    before = len(upstream.requests)
    await ws.send_json_to({"type": "send", "text": "床前明月光"})
    refused = (await frames_until(ws, "error"))[-1]
    await ws.send_json_to({"type": "send", "text": "花间一壶酒"})
    repeated = (await frames_until(ws, "error"))[-1]
    await ws.disconnect()
    assert refused["code"] == "game_rule" and "没有令字「花」" in refused["message"]
    assert repeated["code"] == "game_rule" and "不能重复" in repeated["message"]
    assert len(upstream.requests) == before
    assert not await database_sync_to_async(salon.messages.filter(content="床前明月光").exists)()


async def test_a_game_ends_with_the_end_command(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("「花间一壶酒」"), stream("（静听）"), stream("（静听）"), stream("（静听）"),
                   stream("善。"), stream("（静听）"), stream("（静听）"), stream("（静听）"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "/飞花令 花", "to": ["li-bai"]})
    await _turn(ws, 4)
    await ws.send_json_to({"type": "send", "text": "/结束"})
    await _turn(ws, 4)
    await ws.disconnect()
    assert "令字" not in str(upstream.requests[4].json()["messages"])  # the game is over: no rule note


async def test_another_tab_follows_a_silence_too(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("此事甫最知之。"), stream("（静听）"), stream("（静听）"), stream("（静听）"))
    sender, follower = await connect(alice, salon.pk), await connect(alice, salon.pk)
    await sender.send_json_to({"type": "send", "text": "杜甫先生，三吏三别写于何时？"})
    await _turn(sender, 4)
    followed = await _turn(follower, 4)
    await sender.disconnect()
    await follower.disconnect()
    # Every bubble the following tab opened is closed: by its end, or by the silence.
    assert [f["type"] for f in followed if f["type"] in ("reply_end", "reply_pass")] == [
        "reply_end", "reply_pass", "reply_pass", "reply_pass"]


async def test_an_edited_line_in_a_game_is_checked_before_it_is_saved(alice, salon, credential, upstream):
    upstream.route("POST", PATH, stream("「花间一壶酒」"), stream("「感时花溅泪」"), stream("「落花时节又逢君」"),
                   stream("「人面桃花相映红」"), stream("「花落知多少」"), stream("「桃花潭水深千尺」"),
                   stream("「春城无处不飞花」"), stream("「花径不曾缘客扫」"))
    ws = await connect(alice, salon.pk)
    await ws.send_json_to({"type": "send", "text": "/飞花令 花"})
    await _turn(ws, 4)
    await ws.send_json_to({"type": "send", "text": "花开堪折直须折"})
    frames = await _turn(ws, 4)
    mine = next(f["message"] for f in frames if f["type"] == "message")
    count = len(upstream.requests)
    await ws.send_json_to({"type": "edit", "message_id": mine["id"], "text": "床前明月光"})
    refused = (await frames_until(ws, "error"))[-1]
    await ws.disconnect()
    assert refused["code"] == "game_rule" and len(upstream.requests) == count
    assert not await database_sync_to_async(salon.messages.filter(content="床前明月光").exists)()
