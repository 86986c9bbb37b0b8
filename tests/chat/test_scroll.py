"""The 长卷 PNG: a valid tall image of the shown branch with its text, seal, and a height cap."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from chat import selectors, services
from chat.models import Message
from chat.sharing import fonts, scroll
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
COMPLETE = Message.Status.COMPLETE
needs_cjk = pytest.mark.skipif(not fonts.has_cjk_font(), reason="no CJK font installed (Debian: fonts-noto-cjk)")


@pytest.fixture
def conversation(alice):
    conversation = services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))
    asked = services.message_add_user(conversation=conversation, text="先生今夜可有诗兴？")
    services.reply_save(conversation=conversation, parent=asked, status=COMPLETE, content=(
        "有。**举杯邀明月，对影成三人。**\n\n月既不解饮，影徒随我身。暂伴月将影，行乐须及春。"
        "我歌月徘徊，我舞影零乱。醒时同交欢，醉后各分散。\n\n- 永结无情游\n- 相期邈云汉"))
    asked = services.message_add_user(conversation=conversation, text="可否再说一首 short English words too?")
    services.reply_save(conversation=conversation, parent=asked, content="床前明月光，疑是地上霜——", status=Message.Status.STOPPED)
    conversation.refresh_from_db()
    return conversation


def _png(client, conversation):
    return client.get(reverse("chat:scroll_png", args=[conversation.pk]))


def _open(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def _count(image: Image.Image, colour: tuple[int, int, int], box=None, tolerance: int = 40) -> int:
    region = image.crop(box) if box else image
    return sum(1 for pixel in region.get_flattened_data()
               if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True)))


def test_the_owner_downloads_a_png_of_the_shown_branch(alice_client, conversation):
    response = _png(alice_client, conversation)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'attachment; filename="guyue-li-bai-{conversation.pk}.png"'
    image = _open(response.content)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "scroll.png").write_bytes(response.content)
    assert image.format == "PNG" and image.width == scroll.WIDTH
    assert 1200 < image.height < scroll.MAX_HEIGHT
    assert image.getpixel((5, image.height // 2)) == scroll.PAPER
    # Ink in the message blocks, cinnabar in the seal at the end.
    assert _count(image, scroll.INK, (0, 400, image.width, image.height - 400)) > 5000
    assert _count(image, scroll.SEAL, (0, image.height - 400, image.width, image.height)) > 10000


def test_more_words_make_a_taller_scroll(alice_client, conversation):
    before = _open(_png(alice_client, conversation).content).height
    asked = services.message_add_user(conversation=conversation, text="再来")
    services.reply_save(conversation=conversation, parent=asked, content="天生我材必有用，" * 20, status=COMPLETE)
    assert _open(_png(alice_client, conversation).content).height > before + 300


@needs_cjk
def test_the_chosen_font_draws_chinese_glyphs():
    face = fonts.font("body", 32)
    # Without CJK glyphs every character would be the same empty box.
    assert bytes(face.getmask("李")) != bytes(face.getmask("白"))
    assert face.getbbox("李")[2] > 20


def test_a_long_branch_stops_at_the_cap_with_a_note(alice, conversation):
    for i in range(120):
        asked = services.message_add_user(conversation=conversation, text=f"第{i}问")
        services.reply_save(conversation=conversation, parent=asked, content="长风破浪会有时。" * 12, status=COMPLETE)
    messages = selectors.branch_messages(conversation)
    blocks, note = scroll._fit(scroll._blocks(conversation, messages), 6000)
    assert 2 < len(blocks) < len(messages) and "其后尚有" in note
    image = _open(scroll.render_scroll(conversation, messages))
    assert image.width == scroll.WIDTH and image.height <= scroll.MAX_HEIGHT


def test_a_message_cut_at_the_cap_ends_with_an_ellipsis(conversation):
    blocks = scroll._blocks(conversation, selectors.branch_messages(conversation))
    before = sum(block.height() + scroll.BLOCK_GAP for block in blocks[:2])  # the greeting and the question
    kept, note = scroll._fit(blocks, before + scroll.PAD_Y * 2 + scroll.LABEL_ROW + 4 * scroll.BODY_LEAD)
    assert len(kept) == 3 and len(blocks[2].lines) > 4
    assert kept[-1].lines == [*blocks[2].lines[:3], "……"] and kept[-1].cut
    assert note == "长卷篇幅有限，此条未尽，其后尚有 2 条。全文可在对话页导出。"


def test_the_text_drawn_is_the_sanitised_texts_words_without_markup(conversation):
    reply = conversation.messages.filter(role="assistant").order_by("pk")[1]
    lines = scroll.paragraphs(reply)
    assert lines[0] == "有。举杯邀明月，对影成三人。"
    assert "· 永结无情游" in lines and "**" not in "".join(lines)
    # What the sanitiser drops is not drawn either; the user's words are drawn as typed.
    assert scroll.paragraphs(Message(role="assistant", content="<b>醉</b><script>alert(1)</script>")) == ["醉"]
    assert scroll.paragraphs(Message(role="user", content="<b>醉</b>")) == ["<b>醉</b>"]


@needs_cjk
def test_lines_break_by_character_keep_words_whole_and_punctuation_off_the_line_start():
    face = fonts.font("body", 32)
    lines = scroll.wrap("举杯邀明月，对影成三人。" * 4, face, 32 * 5)
    assert lines[0] == "举杯邀明月，"  # the comma would start the next line: it hangs on this one
    assert all(line[0] not in scroll.NO_LINE_START for line in lines)
    assert all(face.getlength(line) <= 32 * 6 for line in lines)
    assert "".join(lines) == "举杯邀明月，对影成三人。" * 4
    words = scroll.wrap("moonlight over the river " * 6, face, 300)
    assert all(not line.startswith(" ") for line in words)
    assert {w for line in words for w in line.split()} == {"moonlight", "over", "the", "river"}
    assert "".join(scroll.wrap("x" * 200, face, 300)) == "x" * 200


def test_the_seal_reads_as_a_seal():
    assert scroll._seal_text("李白") == "李白之印"
    assert scroll._seal_text("王阳明") == "王阳明印"
    assert scroll._seal_text("成吉思汗") == "成吉思汗"
    seal = scroll.seal_image("李白")
    assert seal.mode == "RGBA" and seal.width > scroll.SEAL_SIZE  # turned a little askew


def test_without_a_cjk_font_it_still_draws(monkeypatch, tmp_path, conversation):
    monkeypatch.setattr(fonts, "FONT_DIRS", (str(tmp_path),))
    for cached in (fonts._installed, fonts._choose, fonts.font):
        cached.cache_clear()
    try:
        assert not fonts.has_cjk_font()
        image = _open(scroll.render_scroll(conversation, selectors.branch_messages(conversation)))
        assert image.width == scroll.WIDTH
    finally:
        for cached in (fonts._installed, fonts._choose, fonts.font):
            cached.cache_clear()


def test_another_users_scroll_is_a_404_and_anonymous_visitors_log_in(bob_client, client, conversation):
    assert _png(bob_client, conversation).status_code == 404
    assert _png(client, conversation).status_code == 302


def test_drawing_is_paced_per_user(alice_client, conversation, monkeypatch):
    from chat.sharing import views

    monkeypatch.setattr(views, "SCROLL_IMAGES_PER_MINUTE", 1)
    assert _png(alice_client, conversation).status_code == 200
    response = _png(alice_client, conversation)
    assert response.status_code == 429 and "一分钟后再试" in response.content.decode()
