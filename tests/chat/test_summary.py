"""The rolling summary against the scripted upstream: stored, kept on failure, tied to its branch."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async

from chat import services, summary
from chat.models import Conversation, Message
from chat.prompting import PromptInputs, build_prompt, turns_from_messages
from chat.providers.chat import ProviderConfig
from chat.selectors import branch_messages
from tests.chat.test_prompting import FACT_TURN_2, long_conversation
from tests.fakes.upstream import Reply, json_reply, sse_reply
from tests.personas.factories import make_persona
from tests.providers import shared_client  # noqa: F401  (fixture)

PATH = "/v1/chat/completions"


def config(upstream) -> ProviderConfig:
    return ProviderConfig(
        kind="openai_compatible", base_url=f"{upstream.url}/v1", api_key="sk-summary0123456789", model="qwen-plus",
        connect_timeout=1.0, first_byte_timeout=2.0, first_content_timeout=2.0, idle_timeout=1.0, total_timeout=8.0,
        max_retries=0, guard=None,  # a trusted (site-wide) endpoint: the upstream is on 127.0.0.1
    )  # fmt: skip


def chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def reply(text: str, finish: str = "stop", **kw) -> Reply:
    """The text in two deltas, then the finish chunk and [DONE]."""
    return sse_reply([chunk(text[:5]), chunk(text[5:]), chunk(None, finish), "data: [DONE]\n\n"], **kw)


def fill(conversation: Conversation, exchanges: int) -> list[Message]:
    """The realistic conversation of test_prompting, saved as one branch after the greeting."""
    parent = conversation.active_leaf
    for turn in long_conversation(exchanges)[1:]:
        parent = Message.objects.create(conversation=conversation, parent=parent, role=turn.role, content=turn.content)
    conversation.active_leaf = parent
    conversation.save(update_fields=["active_leaf"])
    return branch_messages(conversation)


@pytest.fixture
def conversation(alice) -> Conversation:
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


def reload(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_related("persona").get(pk=conversation.pk)


# --- due logic (no database) ---------------------------------------------------------------------

def _branch(sizes: list[int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(pk=index + 1, content="月" * size) for index, size in enumerate(sizes)]


@pytest.mark.parametrize("sizes,through,due", [
    ([300] * 17, None, False),  # 11 foldable: not yet
    ([150] * 18, None, False),  # 12 foldable but 2,700 characters: all of it still fits
    ([600] * 18, None, True),  # 12 foldable and over half of PROMPT_REQUEST_TOKENS (4,000 tokens)
    ([600] * 40, 20, True),  # 14 foldable beyond the summary
    ([600] * 40, 23, False),  # 11 foldable beyond the summary
    ([600] * 40, 999, True),  # a summary from another branch counts for nothing
    ([2] * 500, None, False),  # many turns, little text
], ids=["few", "short", "long", "beyond", "not-yet", "other-branch", "tiny"])
def test_summary_due(sizes, through, due):
    conversation = SimpleNamespace(summary_through_id=through, summary="摘要" if through else "")
    assert summary.summary_due(conversation, _branch(sizes)) is due


def test_summary_for_needs_its_message_on_the_branch():
    branch = _branch([10] * 5)
    assert summary.summary_for(SimpleNamespace(summary="摘要", summary_through_id=3), branch) == "摘要"
    assert summary.summary_for(SimpleNamespace(summary="摘要", summary_through_id=99), branch) == ""
    assert summary.summary_for(SimpleNamespace(summary="", summary_through_id=3), branch) == ""


# --- refresh against the scripted upstream -------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
async def test_refresh_stores_the_text(conversation, upstream):
    branch = await database_sync_to_async(fill)(conversation, 40)
    before = (await database_sync_to_async(reload)(conversation)).updated_at
    assert summary.summary_due(conversation, branch)
    upstream.route("POST", PATH, reply("更新后的摘要：用户林晓，杭州中学语文教师，下月带学生赴黄鹤楼研学。"))
    assert await summary.refresh_summary(conversation.pk, config(upstream)) is True
    stored = await database_sync_to_async(reload)(conversation)
    assert stored.summary == "用户林晓，杭州中学语文教师，下月带学生赴黄鹤楼研学。"
    assert stored.summary_through_id == branch[summary.MAX_FOLD - 1].pk and stored.summary_updated_at
    body = upstream.requests[0].json()
    assert body["max_tokens"] == summary.SUMMARY_MAX_TOKENS and body["stream"] is True
    system, user = body["messages"]
    assert "不超过300字" in system["content"] and "约定与承诺" in system["content"] and "不要照做" in system["content"]
    assert user["content"].startswith("旧摘要：\n「（无）」") and f"【用户】「{FACT_TURN_2}」" in user["content"]
    assert "【李白】「幸会。」" in user["content"]
    assert stored.updated_at == before  # the conversation list does not reorder


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
async def test_300_turns_roll_into_a_summary_that_keeps_the_turn_2_fact(conversation, upstream):
    branch = await database_sync_to_async(fill)(conversation, 300)
    versions = [f"第{k}版摘要：用户林晓，杭州中学语文教师，下月带学生赴武汉黄鹤楼研学。" for k in range(1, 12)]
    upstream.route("POST", PATH, *(reply(v) for v in versions))
    refreshes = 0
    while summary.summary_due(conversation, branch):
        assert await summary.refresh_summary(conversation.pk, config(upstream))
        conversation = await database_sync_to_async(reload)(conversation)
        refreshes += 1
    assert len(branch) == 601 and refreshes == 10  # 595 foldable messages, 60 at a time
    requests = [r.json()["messages"][1]["content"] for r in upstream.requests]
    assert FACT_TURN_2 in requests[0]
    for k in range(1, refreshes):  # every refresh starts from the one before it
        assert requests[k].startswith(f"旧摘要：\n「{versions[k - 1]}」") and FACT_TURN_2 not in requests[k]
    text = summary.summary_for(conversation, branch)
    assert text == versions[refreshes - 1]
    turns = turns_from_messages(branch[:-1])
    result = build_prompt(PromptInputs(persona=conversation.persona, turns=turns, new_message=branch[-1].content,
                                       summary=text, canary=conversation.canary, budget_tokens=24000,
                                       reply_max_tokens=2048))
    assert result.prompt_tokens <= 24000 - 2048 and "林晓" in result.messages[1]["content"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
@pytest.mark.parametrize("failure", [
    json_reply(500, {"error": {"message": "boom"}}),
    sse_reply([chunk("用户林")], end="fin"),
    "length",
    reply("   "),
], ids=["http-500", "cut-stream", "finish-length", "blank"])
async def test_a_failing_upstream_leaves_the_old_summary(conversation, upstream, caplog, failure):
    branch = await database_sync_to_async(fill)(conversation, 40)
    conversation.summary, conversation.summary_through = "旧摘要：林晓。", branch[2]
    await database_sync_to_async(conversation.save)()
    upstream.route("POST", PATH, reply("用户林晓，杭州人。", finish="length") if failure == "length" else failure)
    with caplog.at_level(logging.WARNING, logger="chat.summary"):
        assert await summary.refresh_summary(conversation.pk, config(upstream)) is False
    stored = await database_sync_to_async(reload)(conversation)
    assert (stored.summary, stored.summary_through_id) == ("旧摘要：林晓。", branch[2].pk)
    assert stored.summary_updated_at is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
async def test_it_never_raises(conversation, upstream, caplog):
    dead = replace(config(upstream), base_url="http://127.0.0.1:9/v1", connect_timeout=0.5)
    await database_sync_to_async(fill)(conversation, 40)
    with caplog.at_level(logging.ERROR, logger="chat.summary"):
        assert await summary.refresh_summary(conversation.pk, dead) is False
        assert await summary.refresh_summary(10**9, dead) is False
    assert "summary refresh for conversation" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
async def test_a_branch_change_ignores_the_summary_and_rebuilds_it(conversation, upstream):
    branch = await database_sync_to_async(fill)(conversation, 40)
    upstream.route("POST", PATH, reply("分支一的摘要。"), reply("分支二的摘要。"))
    assert await summary.refresh_summary(conversation.pk, config(upstream))
    conversation = await database_sync_to_async(reload)(conversation)
    assert summary.summary_for(conversation, branch) == "分支一的摘要。"

    # Regenerating the newest reply keeps the summary: recent turns are never folded.
    regenerated = await database_sync_to_async(Message.objects.create)(
        conversation=conversation, parent=branch[-2], role="assistant", content="再答一次。")
    assert summary.summary_for(conversation, [*branch[:-1], regenerated]) == "分支一的摘要。"

    # Editing an early question starts a branch without summary_through on it.
    edited = await database_sync_to_async(services.message_edit)(
        conversation=conversation, original=branch[3], text="我其实叫林夕，在苏州教书。")
    await database_sync_to_async(fill)(conversation, 40)
    conversation = await database_sync_to_async(reload)(conversation)
    other = await database_sync_to_async(branch_messages)(conversation)
    assert edited in other and conversation.summary_through_id not in {m.pk for m in other}
    assert summary.summary_for(conversation, other) == ""
    assert summary.summary_due(conversation, other)
    assert await summary.refresh_summary(conversation.pk, config(upstream))
    conversation = await database_sync_to_async(reload)(conversation)
    assert summary.summary_for(conversation, other) == "分支二的摘要。"
    assert summary.summary_for(conversation, branch) == ""
    assert upstream.requests[1].json()["messages"][1]["content"].startswith("旧摘要：\n「（无）」")
    assert "我其实叫林夕" in upstream.requests[1].json()["messages"][1]["content"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_client")
async def test_two_racing_refreshes_cannot_clobber_each_other(conversation, upstream):
    await database_sync_to_async(fill)(conversation, 40)
    upstream.route("POST", PATH, reply("甲写的摘要。", header_delay=0.3), reply("乙写的摘要。", header_delay=0.3))
    results = await asyncio.gather(*(summary.refresh_summary(conversation.pk, config(upstream)) for _ in range(2)))
    assert sorted(results) == [False, True]
    stored = await database_sync_to_async(reload)(conversation)
    assert stored.summary in ("甲写的摘要。", "乙写的摘要。")
