"""Seeding never undoes a curator: edits and additions survive, untouched rows follow the seed, --reset restores."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chat.models import Conversation
from personas import seed
from personas.cards import persona_import_card, persona_to_card
from personas.models import KnowledgeEntry, LifeStage, Persona, SeedRecord, StylePreset

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    """A stdin that answers the confirmation prompt as if typed at a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def seed_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the seed with two figures, so a test can change the seed files."""
    copy = tmp_path / "seed"
    (copy / "figures").mkdir(parents=True)
    for slug in ("li-bai", "du-fu"):
        shutil.copy(seed.SEED_DIR / "figures" / f"{slug}.json", copy / "figures")
    shutil.copy(seed.SEED_DIR / "eras.json", copy)
    shutil.copy(seed.SEED_DIR / "styles.json", copy)
    monkeypatch.setattr(seed, "SEED_DIR", copy)
    return copy


def run(*args, stdin=None) -> str:
    out = io.StringIO()
    call_command("seedpersonas", *args, stdout=out, **({"stdin": stdin} if stdin else {}))
    return out.getvalue()


def edit_card(seed_dir: Path, slug: str, change) -> None:
    path = seed_dir / "figures" / f"{slug}.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    change(card["data"])
    path.write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")


def entry_titled(data: dict, title: str) -> dict:
    return next(e for e in data["character_book"]["entries"] if e["extensions"]["guyue/title"] == title)


def test_it_keeps_a_curators_edits_and_additions_across_two_runs():
    run()
    li_bai = Persona.objects.get(slug="li-bai")
    li_bai.nickname, li_bai.first_mes = "谪仙人", "策展人写的开场白。"
    li_bai.save()
    edited = li_bai.knowledge_entries.get(title="家世与出生地之争")
    edited.content = "策展人改写的条目。"
    edited.save()
    added = KnowledgeEntry.objects.create(persona=li_bai, title="策展人新增", content="新条目。", source_book="《李太白集》")

    first, second = run(), run()

    li_bai.refresh_from_db()
    assert (li_bai.nickname, li_bai.first_mes) == ("谪仙人", "策展人写的开场白。")
    assert KnowledgeEntry.objects.get(pk=edited.pk).content == "策展人改写的条目。"
    assert KnowledgeEntry.objects.get(pk=added.pk).content == "新条目。"
    assert "rows: 0 created, 0 updated, 2 kept because a curator changed them" in first
    assert "rows: 0 created, 0 updated, 2 kept because a curator changed them" in second


def test_it_applies_a_seed_change_to_an_untouched_row(seed_dir):
    run()
    entry = KnowledgeEntry.objects.get(persona__slug="li-bai", title="家世与出生地之争")
    edit_card(seed_dir, "li-bai", lambda d: entry_titled(d, "家世与出生地之争").update(content="种子的新内容。"))
    edit_card(seed_dir, "du-fu", lambda d: d.update(nickname="少陵野老"))

    output = run()

    assert KnowledgeEntry.objects.get(pk=entry.pk).content == "种子的新内容。"
    assert Persona.objects.get(slug="du-fu").nickname == "少陵野老"
    assert "rows: 0 created, 2 updated, 0 kept" in output
    assert "rows: 0 created, 0 updated, 0 kept" in run()


def test_it_leaves_a_seed_change_to_a_curator_edited_row(seed_dir):
    run()
    entry = KnowledgeEntry.objects.get(persona__slug="li-bai", title="家世与出生地之争")
    entry.content = "策展人改写的条目。"
    entry.save()
    Persona.objects.filter(slug="li-bai").update(nickname="谪仙人")
    edit_card(seed_dir, "li-bai", lambda d: (
        entry_titled(d, "家世与出生地之争").update(content="种子的新内容。"), d.update(nickname="青莲", first_mes="新开场白。"),
    ))

    output = run()

    assert KnowledgeEntry.objects.get(pk=entry.pk).content == "策展人改写的条目。"
    li_bai = Persona.objects.get(slug="li-bai")
    # The row is the unit: a curator's edit to any of its fields keeps all of them.
    assert li_bai.nickname == "谪仙人" and li_bai.first_mes != "新开场白。"
    assert "rows: 0 created, 0 updated, 2 kept because a curator changed them" in output


def test_a_row_a_curator_deleted_is_not_recreated(seed_dir):
    run()
    LifeStage.objects.get(persona__slug="li-bai", name="供奉翰林").delete()
    Persona.objects.get(slug="du-fu").delete()

    output = run()

    assert not LifeStage.objects.filter(persona__slug="li-bai", name="供奉翰林").exists()
    assert not Persona.objects.filter(slug="du-fu").exists()
    assert "2 not recreated because a curator deleted them" in output


def test_a_row_the_seed_dropped_is_removed_only_if_untouched(seed_dir):
    run()
    kept = StylePreset.objects.get(slug="song-ci")
    kept.name = "策展人的宋词"
    kept.save()
    styles = json.loads((seed_dir / "styles.json").read_text(encoding="utf-8"))
    (seed_dir / "styles.json").write_text(json.dumps(
        [s for s in styles if s["slug"] not in ("song-ci", "yuan-qu")], ensure_ascii=False,
    ), encoding="utf-8")

    output = run()

    assert not StylePreset.objects.filter(slug="yuan-qu").exists()
    assert StylePreset.objects.get(pk=kept.pk).name == "策展人的宋词"
    assert "1 removed because the seed no longer has them" in output


def test_saving_a_row_unchanged_in_the_admin_keeps_it_following_the_seed(seed_dir):
    run()
    li_bai = Persona.objects.get(slug="li-bai")
    # Browsers send textarea newlines as CRLF and the admin strips text: no edit by itself.
    li_bai.mes_example = li_bai.mes_example.replace("\n", "\r\n") + "\r\n"
    li_bai.save()
    edit_card(seed_dir, "li-bai", lambda d: d.update(nickname="青莲"))

    run()

    assert Persona.objects.get(slug="li-bai").nickname == "青莲"


def test_rows_seeded_before_records_existed_are_adopted(seed_dir):
    run()
    SeedRecord.objects.all().delete()
    Persona.objects.filter(slug="li-bai").update(nickname="谪仙人")

    output = run()

    assert Persona.objects.get(slug="li-bai").nickname == "谪仙人"
    assert "rows: 0 created, 0 updated, 1 kept" in output
    assert SeedRecord.objects.filter(kind="persona").count() == 2


def test_reset_with_yes_restores_the_figure_in_place(seed_dir, alice):
    run()
    li_bai = Persona.objects.get(slug="li-bai")
    stage = li_bai.life_stages.get(name="供奉翰林")
    conversation = Conversation.objects.create(owner=alice, persona=li_bai, life_stage=stage)
    Persona.objects.filter(pk=li_bai.pk).update(nickname="谪仙人")
    li_bai.knowledge_entries.filter(title="家世与出生地之争").update(content="策展人改写的条目。")
    li_bai.life_stages.filter(name="蜀中少年").delete()
    KnowledgeEntry.objects.create(persona=li_bai, title="策展人新增", content="新条目。", source_book="《李太白集》")
    StylePreset.objects.filter(slug="song-ci").update(name="策展人的宋词")

    output = run("--reset", "li-bai", "--yes")

    restored = Persona.objects.get(slug="li-bai")
    assert restored.pk == li_bai.pk and restored.nickname == "太白"
    assert restored.knowledge_entries.get(title="家世与出生地之争").content != "策展人改写的条目。"
    assert restored.life_stages.filter(name="蜀中少年").exists()
    assert not KnowledgeEntry.objects.filter(title="策展人新增").exists()
    assert Conversation.objects.get(pk=conversation.pk).life_stage_id == stage.pk
    assert StylePreset.objects.get(slug="song-ci").name == "策展人的宋词"  # another figure's business
    assert "rows: 1 created, 2 updated" in output and "1 added by a curator deleted" in output
    assert "rows: 0 created, 0 updated, 1 kept" in run()  # the style preset only


def test_reset_recreates_a_figure_a_curator_deleted(seed_dir):
    run()
    Persona.objects.get(slug="du-fu").delete()

    run("--reset", "du-fu", "--yes")
    assert Persona.objects.get(slug="du-fu").knowledge_entries.count() >= 8


def test_reset_without_a_terminal_or_yes_changes_nothing(seed_dir):
    run()
    Persona.objects.filter(slug="li-bai").update(nickname="谪仙人")

    with pytest.raises(CommandError, match="confirmation"):
        run("--reset", "li-bai", stdin=io.StringIO("y\n"))
    assert Persona.objects.get(slug="li-bai").nickname == "谪仙人"


def test_reset_answered_no_changes_nothing_and_says_what_would_go(seed_dir):
    run()
    li_bai = Persona.objects.get(slug="li-bai")
    Persona.objects.filter(pk=li_bai.pk).update(nickname="谪仙人")
    KnowledgeEntry.objects.create(persona=li_bai, title="策展人新增", content="新条目。", source_book="《李太白集》")

    output = run("--reset", "li-bai", stdin=Terminal("n\n"))

    assert "knowledge entry 「策展人新增」" in output and "[y/N]" in output and "cancelled" in output
    assert Persona.objects.get(slug="li-bai").nickname == "谪仙人"
    assert KnowledgeEntry.objects.filter(title="策展人新增").exists()


def test_reset_answered_yes_at_the_prompt_restores(seed_dir):
    run()
    Persona.objects.filter(slug="li-bai").update(nickname="谪仙人")

    run("--reset", "li-bai", stdin=Terminal("y\n"))
    assert Persona.objects.get(slug="li-bai").nickname == "太白"


def test_reset_of_an_unknown_slug_is_a_clear_error(seed_dir):
    with pytest.raises(CommandError, match="no seeded figure with slug 'nobody'.*li-bai"):
        run("--reset", "nobody", "--yes")


def test_an_explicit_card_import_still_updates_and_seeding_then_keeps_it(seed_dir):
    run()
    card = persona_to_card(Persona.objects.get(slug="li-bai"))
    card["data"]["nickname"] = "谪仙人"

    persona_import_card(card)
    run()

    assert Persona.objects.get(slug="li-bai").nickname == "谪仙人"
