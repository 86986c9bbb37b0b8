from __future__ import annotations

import copy

import pytest

from personas.cards import CardError, persona_import_card, persona_to_card
from personas.models import Persona
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db


def test_export_then_import_round_trips():
    persona = make_persona("li-bai", "李白")
    card = persona_to_card(persona)
    assert card["spec"] == "chara_card_v3"
    assert card["data"]["extensions"]["guyue/persona"]["slug"] == "li-bai"
    Persona.objects.all().delete()
    again = persona_import_card(copy.deepcopy(card))
    assert persona_to_card(again) == card


def test_unknown_extension_keys_are_kept():
    card = persona_to_card(make_persona("li-bai", "李白"))
    card["data"]["extensions"]["other-tool/depth_prompt"] = {"prompt": "x", "depth": 4}
    persona = persona_import_card(card)
    assert persona.extensions == {"other-tool/depth_prompt": {"prompt": "x", "depth": 4}}
    assert persona_to_card(persona)["data"]["extensions"]["other-tool/depth_prompt"]["depth"] == 4


def test_reimport_updates_children_in_place():
    persona = make_persona("li-bai", "李白")
    stage_id = persona.life_stages.get().pk
    card = persona_to_card(persona)
    card["data"]["extensions"]["guyue/persona"]["life_stages"][0]["notes"] = "新注"
    persona_import_card(card)
    stage = persona.life_stages.get()
    assert stage.pk == stage_id and stage.notes == "新注"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(spec="other"), "不是角色卡"),
        (lambda c: c["data"]["extensions"]["guyue/persona"].update(dynasty="atlantis"), "朝代"),
        (lambda c: c["data"]["extensions"]["guyue/persona"]["signature_lines"].pop("leak"), "缺少角色内应答"),
        (lambda c: c["data"]["character_book"]["entries"][0]["extensions"]["guyue/source"].update(book=""), "出处"),
        (lambda c: c["data"]["extensions"]["guyue/persona"].update(death_year=600), "卒年"),
    ],
)
def test_bad_cards_are_refused_with_a_reason(mutate, message):
    card = persona_to_card(make_persona("li-bai", "李白"))
    mutate(card)
    with pytest.raises(CardError, match=message):
        persona_import_card(card)
