from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from personas.admin import card_png
from personas.cardimport import (
    FOREIGN_SOURCE,
    UNMAPPED,
    ImportChoice,
    card_conflict,
    card_file_read,
    card_read,
    free_slug,
    persona_import,
)
from personas.cardpng import MAX_CHUNK_CHARS
from personas.cards import CardError, persona_to_card
from personas.models import SIGNATURE_CATEGORIES, Persona
from tests.personas.cardfiles import encoded, png_with, v2_card, v3_card
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db


def _read(data: bytes):
    card, source = card_file_read(data)
    return card_read(card, from_png=source != "JSON"), source


def _new(reading, slug="seraphina", **years):
    choice = ImportChoice(slug=slug, dynasty="tang", birth_year=years.get("birth", 700), death_year=years.get("death", 760))
    return persona_import(reading, choice)


# --- PNG containers ---------------------------------------------------------------------------------

def test_a_png_with_a_chara_chunk_is_read_as_v2():
    reading, source = _read(png_with({"chara": encoded(v2_card())}))
    assert source == "PNG（chara 数据块）" and reading.spec == "chara_card_v2" and reading.name == "Seraphina"
    assert not reading.ours


def test_a_png_with_a_ccv3_chunk_is_read_as_v3():
    reading, source = _read(png_with({"ccv3": encoded(v3_card())}))
    assert source == "PNG（ccv3 数据块）" and reading.spec == "chara_card_v3" and reading.name == "Aria"


def test_with_both_chunks_ccv3_wins_whichever_comes_first():
    data = png_with({"chara": encoded(v2_card(name="Old")), "ccv3": encoded(v3_card(name="New"))})
    assert _read(data)[0].name == "New"


def test_a_chunk_keyword_in_another_case_is_still_found():
    assert _read(png_with({"Chara": encoded(v2_card())}))[0].name == "Seraphina"


@pytest.mark.parametrize(("chunks", "message"), [
    ({"chara": b"!!not*base64!!"}, "chara 数据不是有效的 base64"),
    ({"ccv3": b"QUJD"}, "ccv3 数据不是有效的 JSON"),  # "ABC"
    ({"ccv3": base64.b64encode(b"\xff\xfe\x00")}, "不是 UTF-8"),
    ({"ccv3": base64.b64encode(b"[1, 2]")}, "不是一张角色卡"),
    ({"Comment": b"made with an image editor"}, "没有角色卡数据"),
    ({}, "没有角色卡数据"),
])
def test_bad_png_cards_are_refused_with_a_reason(chunks, message):
    with pytest.raises(CardError, match=message):
        _read(png_with(chunks))


def test_a_huge_chunk_is_refused():
    huge = base64.b64encode(b"x" * (MAX_CHUNK_CHARS // 4 * 3 + 3))
    assert len(huge) > MAX_CHUNK_CHARS
    with pytest.raises(CardError, match="数据过大"):
        _read(png_with({"chara": huge}))


def test_a_base64_chunk_with_line_breaks_is_read():
    text = encoded(v2_card())
    wrapped = b"\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    assert _read(png_with({"chara": wrapped}))[0].name == "Seraphina"


@pytest.mark.parametrize(("data", "message"), [
    (b"\xff\xd8\xff\xe0" + b"\0" * 64, "只支持 PNG"),
    (b"GIF89a" + b"\0" * 64, "只支持 PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "无法读取这张 PNG"),
    (b"\x00\x9f\x92\x96 binary", "既不是 PNG 图片，也不是 UTF-8"),
    (b"{not json", "JSON 格式有误"),
    (b"[]", "多张角色卡"),
    (b'"a string"', "应为一个 JSON 对象"),
    (b"[" * 100_000 + b"]" * 100_000, "嵌套过深"),
])
def test_files_that_are_no_card_are_refused(data, message):
    with pytest.raises(CardError, match=message):
        card_file_read(data)


def test_a_truncated_png_is_refused():
    data = png_with({"chara": encoded(v2_card())})
    with pytest.raises(CardError, match="无法读取"):
        card_file_read(data[: len(data) // 3])


# --- specs --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("card", "message"), [
    ({"spec": "chara_card_v4", "data": {}}, "不支持的角色卡格式「chara_card_v4」"),
    ({"spec": "lorebook_v3", "data": {"entries": []}}, "不支持的角色卡格式"),
    ({"name": "V1", "description": "old", "first_mes": "hi"}, "缺少 spec"),
    ({"spec": "chara_card_v2", "data": "x"}, "缺少 data"),
    (v2_card(name=""), "缺少姓名"),
    (v2_card(name="名" * 41), "超过 40 字"),
    (v2_card(description=""), "简介（description）为空"),
    (v2_card(first_mes=""), "没有开场白"),
    (v2_card(personality=["list"]), "「personality」应为文字"),
])
def test_wrong_specs_and_unusable_cards_are_refused(card, message):
    with pytest.raises(CardError, match=message):
        card_read(card)
    assert not Persona.objects.exists()


def test_a_v2_card_maps_what_maps_and_keeps_the_rest():
    reading = card_read(v2_card())
    notes = "\n".join(reading.notes)
    assert "朝代与生卒年" in notes and "角色内应答" in notes and "暂不发布" in notes
    assert "作者（creator）" in notes  # kept aside, and said so
    assert "scan_depth" in notes and "selective" in notes  # the book's settings we do not use
    assert "talkativeness" in notes  # another tool's extensions, kept
    persona = _new(reading)
    assert (persona.name, persona.slug, persona.dynasty, persona.birth_year) == ("Seraphina", "seraphina", "tang", 700)
    assert persona.first_mes == "*Seraphina smiles.* Welcome, {{user}}."
    assert persona.alternate_greetings == ["*The glade is quiet.* You are awake.", "Rest a while."]
    assert persona.tags == ["fantasy", "guardian"] and persona.character_version == "1.2"
    assert persona.mes_example.startswith("<START>") and persona.creator_notes == "Made for testing."
    assert not persona.published
    assert set(persona.signature_lines) == set(SIGNATURE_CATEGORIES)
    assert all("Seraphina" in line for key, line in persona.signature_lines.items() if "{name}" in _generic(key))
    glade, forest = persona.knowledge_entries.order_by("order")
    assert (glade.title, glade.trigger_keys, glade.enabled, glade.order) == ("The glade", ["glade"], True, 10)
    assert glade.source_book == FOREIGN_SOURCE and glade.label == "演绎"
    assert not forest.enabled and forest.title == "Shadows walk the for"  # no name: its first 20 characters
    ext = persona.extensions
    assert ext["depth_prompt"] == {"prompt": "", "depth": 4} and ext["talkativeness"] == "0.5"
    kept = ext[UNMAPPED]
    assert kept["creator"] == "someone"
    assert kept["character_book"]["scan_depth"] == 4 and kept["character_book"]["token_budget"] == 512
    assert kept["character_book"]["entries"][0] == {"title": "The glade", "priority": 5, "selective": True,
                                                    "secondary_keys": ["magic"], "constant": False,
                                                    "position": "before_char"}


def _generic(key):
    from chat.guard.policy import FALLBACK_LINE, GENERIC_LINES

    return GENERIC_LINES.get(key, FALLBACK_LINE)


def test_a_foreign_v3_card_maps_its_nickname_and_keeps_its_v3_fields():
    reading = card_read(v3_card())
    notes = "\n".join(reading.notes)
    assert "群聊开场白（group_only_greetings）" in notes and "资源（assets）" in notes and "来源（source）" in notes
    assert "use_regex" in notes
    persona = _new(reading, slug="aria")
    assert (persona.name, persona.nickname, persona.system_prompt) == ("Aria", "Ari", "Stay in character as {{char}}.")
    kept = persona.extensions[UNMAPPED]
    assert kept["group_only_greetings"] == ["Hello, everyone!"] and kept["source"] == ["https://example.invalid/aria"]
    assert kept["assets"][0]["uri"] == "ccdefault:" and kept["creation_date"] == 1700000000
    assert persona.extensions["risu/utilityBot"] is False
    entry = persona.knowledge_entries.get()
    assert entry.trigger_keys == ["^lute$"] and entry.content.startswith("@@depth 4\n")


@pytest.mark.parametrize("mutate", [
    lambda ours: ours["life_stages"].append({"name": "无年份"}),
    lambda ours: ours["life_stages"].append({"name": "坏年份", "start_year": "甲子", "end_year": 1}),
    lambda ours: ours.update(portrayals=["not an object"]),
])
def test_a_hand_edited_card_of_ours_with_broken_children_is_refused(mutate):
    card = persona_to_card(make_persona("li-bai", "李白"))
    mutate(card["data"]["extensions"]["guyue/persona"])
    with pytest.raises(CardError, match="格式不对"):
        card_read(card)


def test_a_newer_v3_version_is_imported_with_a_warning():
    card = v3_card()
    card["spec_version"] = "3.1"
    assert any("3.1" in note for note in card_read(card).notes)


def test_odd_values_are_dropped_with_a_note():
    reading = card_read(v2_card(alternate_greetings=["hi", 3, ""], tags="fantasy", nickname="号" * 61,
                                character_book={"entries": [{"keys": ["a"], "content": ""}, "x"]}))
    notes = "\n".join(reading.notes)
    assert "其他开场白（alternate_greetings）中有 2 项" in notes and "标签（tags）不是列表" in notes
    assert "字号（nickname）超过 60 字" in notes and "第 1、2 条没有内容" in notes
    persona = _new(reading)
    assert persona.alternate_greetings == ["hi"] and persona.tags == [] and persona.nickname == ""
    assert persona.extensions[UNMAPPED]["nickname"] == "号" * 61 and not persona.knowledge_entries.exists()


def test_the_new_figure_needs_valid_years():
    with pytest.raises(CardError, match="卒年不能早于生年"):
        _new(card_read(v2_card()), birth=800, death=700)
    assert not Persona.objects.exists()


def test_updating_a_figure_from_a_foreign_card_keeps_our_structure():
    persona = make_persona("seraphina-old", "Seraphina")
    stage_id = persona.life_stages.get().pk
    reading = card_read(v2_card())
    assert card_conflict(reading) == persona
    updated = persona_import(reading, ImportChoice(target=persona))
    assert updated.pk == persona.pk and updated.slug == "seraphina-old" and updated.dynasty == "tang"
    assert updated.description.startswith("{{char}} is a guardian") and updated.published
    assert updated.signature_lines["leak"] == "leak之言"
    assert updated.life_stages.get().pk == stage_id and updated.portrayals.count() == 1
    assert set(updated.knowledge_entries.values_list("title", flat=True)) == {"赐金放还", "The glade",
                                                                          "Shadows walk the for"}


def test_conflicts_are_found_by_slug_for_our_cards_and_by_name():
    li_bai = make_persona("li-bai", "李白")
    card = persona_to_card(li_bai)
    card["data"]["name"] = "李太白"
    assert card_conflict(card_read(card)) == li_bai  # same slug
    card["data"]["extensions"]["guyue/persona"]["slug"] = "li-taibai"
    assert card_conflict(card_read(card)) is None
    assert card_conflict(card_read(v2_card(name="李白"))) == li_bai  # same name
    assert card_read(v2_card(name="李白")).slug == "li-bai"
    assert free_slug("li-bai") == "li-bai-2"


# --- export and round trip ---------------------------------------------------------------------------

def _chunks(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {k: json.loads(base64.b64decode(v)) for k, v in image.text.items()}


def test_the_png_export_carries_both_chunks_on_the_seal():
    persona = make_persona("li-bai", "李白")
    data = card_png(persona)
    chunks = _chunks(data)
    assert chunks["ccv3"] == persona_to_card(persona)
    assert chunks["chara"]["spec"] == "chara_card_v2" and chunks["chara"]["spec_version"] == "2.0"
    assert "group_only_greetings" not in chunks["chara"]["data"]
    assert "use_regex" not in chunks["chara"]["data"]["character_book"]["entries"][0]
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (400, 600)
        red = image.getpixel((100, 258))  # the seal's rim
        assert red[0] > 140 and red[1] < 80 and image.getpixel((10, 10)) == (251, 248, 241)  # on paper


def test_the_png_export_uses_the_portrait(settings):
    persona = make_persona("li-bai", "李白")
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 30)).save(out, format="JPEG")
    persona.portrait = SimpleUploadedFile("li-bai.jpg", out.getvalue())
    persona.save()
    with Image.open(io.BytesIO(card_png(persona))) as image:
        assert image.size == (300, 200) and image.getpixel((150, 100))[1] > 100


@pytest.mark.parametrize("chunk", ["ccv3", "chara"])
def test_export_then_import_of_the_png_round_trips(chunk):
    persona = make_persona("li-bai", "李白")
    persona.nickname, persona.alternate_greetings = "太白", ["又见君来。"]
    persona.save()
    card = persona_to_card(persona)
    chunks = _chunks(card_png(persona))
    data = png_with({chunk: base64.b64encode(json.dumps(chunks[chunk], ensure_ascii=False).encode())})
    Persona.objects.all().delete()
    reading, _ = _read(data)
    assert reading.ours and reading.notes == []
    again = persona_import(reading, ImportChoice(slug=reading.slug))
    assert persona_to_card(again) == card


def test_a_copy_of_our_own_card_is_a_new_unpublished_figure():
    persona = make_persona("li-bai", "李白")
    reading = card_read(persona_to_card(persona))
    copy = persona_import(reading, ImportChoice(slug="li-bai-2", copy=True))
    assert copy.pk != persona.pk and copy.name == "李白" and not copy.published
    assert copy.life_stages.count() == 1 and persona.life_stages.count() == 1


# --- text, never markup -------------------------------------------------------------------------------

def test_scripts_in_a_card_are_stored_as_text_and_shown_escaped(client):
    attack = "<script>alert('card')</script><img src=x onerror=alert(1)>"
    card = v2_card(name="<b>Evil</b>", description=f"简介 {attack}", first_mes=f"你好 {attack}", tags=[attack])
    persona = _new(card_read(card), slug="evil")
    assert persona.description == f"简介 {attack}"  # kept exactly, as text
    persona.published = True
    persona.save()
    html = client.get(reverse("personas:profile", args=["evil"])).content.decode()
    assert "<script>alert('card')" not in html and "<img src=x" not in html and "<b>Evil</b>" not in html
    assert "&lt;script&gt;alert(&#x27;card&#x27;)&lt;/script&gt;" in html and "&lt;b&gt;Evil&lt;/b&gt;" in html
