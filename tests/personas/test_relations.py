"""The relations table (docs/relations.md) drives what a figure in a scene is told about the other one."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from chat.prompting import system_prompt_text
from personas.models import FigureRelation, Persona
from personas.relations import relations_among

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("seedpersonas", verbosity=0)


def _prompt(slug: str, other_slug: str, stage: str | None = None) -> str:
    """The scene section of the figure's prompt: what it is told about the other figure."""
    figure, other = Persona.objects.get(slug=slug), Persona.objects.get(slug=other_slug)
    life_stage = figure.life_stages.get(name=stage) if stage else None
    prompt = system_prompt_text(figure, life_stage, None, "", relations_among(figure, [other]))
    return prompt.split("【同场人物】")[1].split("你只替")[0]


def test_the_seed_loads_the_relations_of_figures_that_exist(seeded):
    pair = FigureRelation.objects.get(figure__slug="li-bai", other__slug="du-fu")
    assert pair.kind == "knew" and pair.since_year == 744
    slugs = set(Persona.objects.values_list("slug", flat=True))
    for relation in FigureRelation.objects.select_related("figure", "other"):
        assert {relation.figure.slug, relation.other.slug} <= slugs
    before = FigureRelation.objects.count()
    call_command("seedpersonas", verbosity=0)
    assert FigureRelation.objects.count() == before


def test_a_friend_from_the_record_is_named_as_such(seeded):
    prompt = _prompt("li-bai", "du-fu")
    assert "【你与杜甫】相识交往：天宝三载（744）你与杜甫相识于洛阳" in prompt
    assert "史料不载你们此时见过面" not in prompt


def test_before_they_met_the_friendship_is_not_told(seeded):
    prompt = _prompt("li-bai", "du-fu", stage="仗剑出蜀·酒隐安陆")  # to 741: they met in 744
    assert "相识于洛阳" not in prompt and "744" not in prompt
    assert "史料不载你们此时见过面" in prompt


def test_a_later_figure_is_unknown_whatever_the_table_says(seeded):
    li_bai, wang = Persona.objects.get(slug="li-bai"), Persona.objects.get(slug="wang-yangming")
    FigureRelation.objects.create(figure=li_bai, other=wang, kind="read", note="你读过王阳明的《传习录》。")
    prompt = _prompt("li-bai", "wang-yangming")
    assert "你从未听说过王阳明" in prompt
    assert "传习录" not in prompt and "明" not in prompt.replace("王阳明", "")


def test_an_earlier_figure_is_known_with_what_the_record_adds(seeded):
    prompt = _prompt("sima-qian", "han-xin")
    assert "生活在你之前" in prompt and "【你与韩信】读过其作品、知其事迹：你为韩信作《淮阴侯列传》" in prompt


def test_contemporaries_without_a_row_are_not_made_friends(seeded):
    prompt = _prompt("zhuge-liang", "zhang-fei")
    assert "【你与张飞】相识交往" in prompt
    FigureRelation.objects.filter(figure__slug="li-bai", other__slug="du-fu").delete()  # a curator removed it
    prompt = _prompt("li-bai", "du-fu")
    assert "与你同时代" in prompt and "史料不载你们此时见过面" in prompt


def test_relations_round_trip_through_a_card(seeded):
    from personas.cards import persona_import_card, persona_to_card

    li_bai = Persona.objects.get(slug="li-bai")
    card = persona_to_card(li_bai)
    mine = card["data"]["extensions"]["guyue/persona"]["relations"]
    assert {"other": "du-fu", "kind": "knew", "since": 744}.items() <= next(r for r in mine if r["other"] == "du-fu").items()
    FigureRelation.objects.filter(figure=li_bai).delete()
    mine.append({"other": "no-such-figure", "kind": "knew", "note": "无此人。"})
    persona_import_card(card)
    restored = FigureRelation.objects.get(figure=li_bai, other__slug="du-fu")
    assert restored.since_year == 744 and "相识于洛阳" in restored.note
    assert not FigureRelation.objects.filter(figure=li_bai, other__slug="no-such-figure").exists()
    card["data"]["extensions"]["guyue/persona"]["relations"] = [{"other": "du-fu", "kind": "friends?", "note": "x"}]
    with pytest.raises(Exception, match="人物关系格式不对"):
        persona_import_card(card)
