"""Claims marked with their sources (docs/citations.md): ids become marks labelled from the entry, in the
stream, after a reload, on a shared page and in exports; ids that name no citable entry are dropped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import services
from chat.citations import Citation, apply_marks, citable, citations_for, plain_marks
from chat.exports import branch_markdown
from chat.rendering import render_markdown
from personas.models import Dynasty, KnowledgeEntry
from tests.chat.test_consumer import PATH, connect, credential, fast_timeouts, frames_until, stream  # noqa: F401
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def li_bai():
    return make_persona("li-bai", "李白")


@pytest.fixture
def entries(li_bai):
    own = KnowledgeEntry.objects.create(
        persona=li_bai, title="赐金放还", content="天宝三载，李白被赐金放还。", trigger_keys=["赐金放还"],
        source_book="《新唐书》", source_chapter="卷二百二·文艺传中", source_quote="帝赐金放还<script>", label="史载")
    guess = KnowledgeEntry.objects.create(
        persona=li_bai, title="生于碎叶", content="一说李白生于碎叶。", source_book="《李太白全集》",
        source_chapter="年谱", label="推测")
    era = KnowledgeEntry.objects.create(
        dynasty=li_bai.dynasty, title="盛唐气象", content="开元天宝间国力强盛。", source_book="《旧唐书》",
        source_chapter="玄宗本纪", label="史载")
    other = make_persona("su-shi", "苏轼", dynasty=Dynasty.NORTHERN_SONG)
    foreign = KnowledgeEntry.objects.create(
        persona=other, title="乌台诗案", content="元丰二年。", source_book="《宋史》", source_chapter="苏轼传", label="史载")
    return {"own": own, "guess": guess, "era": era, "foreign": foreign}


def test_a_mark_takes_its_label_from_the_entry_and_unknown_ids_vanish(li_bai, entries):
    own, guess, era, foreign = entries["own"], entries["guess"], entries["era"], entries["foreign"]
    text = (f"赐金放还，史载分明〔K{own.pk}〕。我或生于碎叶〔K{guess.pk}〕。盛世如此〔K{era.pk}〕。"
            f"乌台〔K{foreign.pk}〕，乱编〔K99999〕。")
    cited = citable(citations_for([text]), li_bai)
    html = render_markdown(text, cited)
    assert html.count('class="cite ') == 3
    assert 'class="cite cite-recorded"' in html and 'class="cite cite-inferred"' in html
    assert f'data-ref="K{guess.pk}"' in html and ">推测<" in html  # the entry's label, not the model's words
    assert "K99999" not in html and f"K{foreign.pk}" not in html and "〔K" not in html  # another figure's: dropped
    assert "&lt;script&gt;" in html and "<script>" not in html  # the entry's quotation is escaped
    assert "《新唐书》·卷二百二·文艺传中" in html


def test_without_citations_every_id_is_dropped():
    assert "〔K" not in render_markdown("有据〔K12〕。")
    assert apply_marks("<p>有据〔K12〕。</p>", {}) == "<p>有据。</p>"


def test_a_poem_with_a_source_id_is_still_verse(li_bai, entries):
    own = entries["own"]
    html = render_markdown(f"床前明月光，\n疑是地上霜。〔K{own.pk}〕", citable(citations_for([f"〔K{own.pk}〕"]), li_bai))
    assert '<p class="verse">' in html and "cite-recorded" in html


def test_exports_write_the_source_in_words(alice, li_bai, entries):
    conversation = services.conversation_start(owner=alice, persona=li_bai)
    asked = services.message_add_user(conversation=conversation, text="可曾被赐金放还？")
    reply = services.reply_save(conversation=conversation, parent=asked, status="complete",
                                content=f"是也〔K{entries['own'].pk}〕，又〔K424242〕。")
    markdown = branch_markdown(conversation, [asked, reply])
    assert "是也〔史载·《新唐书》·卷二百二·文艺传中〕，又。" in markdown
    assert plain_marks("〔K1〕", {1: Citation.of(entries["own"])}).startswith("〔史载·")


def test_the_page_draws_the_marks_after_a_reload(alice, alice_client, li_bai, entries):
    conversation = services.conversation_start(owner=alice, persona=li_bai)
    asked = services.message_add_user(conversation=conversation, text="可曾被赐金放还？")
    services.reply_save(conversation=conversation, parent=asked, status="complete",
                        content=f"是也〔K{entries['own'].pk}〕，或〔K{entries['foreign'].pk}〕。")
    html = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'class="cite cite-recorded"' in html and "帝赐金放还" in html
    assert f"K{entries['foreign'].pk}" not in html  # 苏轼's entry is not 李白's to cite


async def test_the_stream_carries_the_sources_and_the_end_draws_the_marks(alice, li_bai, entries, credential, upstream):
    own = entries["own"]
    conversation = await _start(alice, li_bai)
    upstream.route("POST", PATH, stream("天宝三载，", f"白被赐金放还〔K{own.pk}〕", "，又〔K7777〕。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "/查 赐金放还"})
    frames = await frames_until(ws, "reply_end")
    tool = next(f for f in frames if f["type"] == "tool")
    assert tool["sources"][f"K{own.pk}"] == {"label": "史载", "kind": "recorded", "title": "赐金放还",
                                            "source": "《新唐书》·卷二百二·文艺传中", "quote": "帝赐金放还<script>"}
    sent = upstream.requests[0].json()["messages"][-1]["content"]
    assert f"K{own.pk}" in sent and "〔K12〕" in sent  # the entry's id, and how to cite it
    end = frames[-1]["message"]["html"]
    assert f'data-ref="K{own.pk}"' in end and "K7777" not in end
    await ws.disconnect()


async def _start(alice, persona):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(services.conversation_start)(owner=alice, persona=persona)
