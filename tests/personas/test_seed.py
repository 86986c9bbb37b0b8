"""The seeded figures: every one complete, every knowledge entry sourced, loading twice changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command

from personas.models import SIGNATURE_CATEGORIES, Dynasty, EpistemicLabel, KnowledgeEntry, Persona, StylePreset

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("seedpersonas", verbosity=0)
    return Persona.objects.prefetch_related("life_stages", "knowledge_entries", "portrayals")


# The figures with film or television portrayals to describe (two at least each).
SCREENED = {"li-bai", "du-fu", "su-shi", "zhuge-liang", "zhang-fei", "han-xin", "wu-zetian", "kong-zi", "qu-yuan",
            "sima-qian", "li-qingzhao", "wang-yangming", "qin-shihuang", "xiang-yu", "cao-cao", "tang-taizong",
            "xuan-zang", "zheng-he", "lin-zexu"}


def test_at_least_twelve_figures_across_dynasties(seeded):
    published = [p for p in seeded if p.published]
    assert len(published) >= 12
    assert len({p.dynasty for p in published}) >= 6


SEEDED_SLUGS = sorted(path.stem for path in (Path(__file__).resolve().parents[2] / "personas/seed/figures").glob("*.json"))


@pytest.mark.parametrize("slug", SEEDED_SLUGS)
def test_every_figure_meets_the_minimums(seeded, slug):
    persona = seeded.get(slug=slug)
    where = persona.slug
    assert len(persona.description) >= 300, where
    assert persona.first_mes.strip(), where
    assert persona.mes_example.count("<START>") >= 3, where
    assert persona.speech_style.strip() and persona.values.strip(), where
    assert persona.dynasty in Dynasty.values, where
    assert persona.birth_year < persona.death_year, where
    assert set(SIGNATURE_CATEGORIES) <= {k for k, v in persona.signature_lines.items() if v.strip()}, where
    stages = list(persona.life_stages.all())
    assert len(stages) >= 2, where
    for stage in stages:
        assert persona.birth_year <= stage.start_year <= stage.end_year <= persona.death_year, (where, stage.name)
    entries = list(persona.knowledge_entries.all())
    assert len(entries) >= 10, where
    for entry in entries:  # a citation names a book and the chapter in it
        assert re.fullmatch(r"《[^》]+》", entry.source_book.strip()), (where, entry.title, entry.source_book)
        assert entry.source_chapter.strip(), (where, entry.title)
    if persona.slug in SCREENED:
        assert len(persona.portrayals.all()) >= 2, where


def test_the_shelf_spans_the_dynasties_and_walks_of_life(seeded):
    published = [p for p in seeded if p.published]
    assert len(published) >= 36
    dynasties = {p.dynasty for p in published}
    assert {"spring_autumn", "warring_states", "qin", "western_han", "eastern_han", "three_kingdoms", "jin",
            "southern_northern", "tang", "five_dynasties", "northern_song", "southern_song", "yuan", "ming",
            "qing"} <= dynasties
    women = {"li-qingzhao", "wu-zetian", "ban-zhao", "cai-wenji", "xie-daoyun", "shangguan-waner", "xue-tao",
             "liang-hongyu"}
    assert len(women & {p.slug for p in published}) >= 6


def test_every_era_of_a_figure_has_era_entries(seeded):
    era_dynasties = set(KnowledgeEntry.objects.filter(persona=None).values_list("dynasty", flat=True))
    assert {p.dynasty for p in seeded if p.published} <= era_dynasties


def test_signature_lines_differ_between_figures(seeded):
    lines = [p.signature_lines["role_swap"] for p in seeded]
    assert len(set(lines)) == len(lines)


def test_every_knowledge_entry_has_a_source_and_a_label(seeded):
    entries = KnowledgeEntry.objects.all()
    assert entries.count() >= 12 * 8
    for entry in entries:
        assert entry.source_book.strip(), entry.title
        assert re.search(r"《.+》", entry.source_book), entry.source_book
        assert entry.label in EpistemicLabel.values, entry.title
        assert entry.content.strip(), entry.title


def test_era_knowledge_and_style_presets(seeded):
    assert KnowledgeEntry.objects.filter(persona=None).exclude(dynasty="").count() >= 8
    assert StylePreset.objects.count() >= 5
    assert {"唐风文言", "白话"} <= set(StylePreset.objects.values_list("name", flat=True))


def test_seeding_again_changes_nothing(seeded):
    before = {
        "personas": Persona.objects.count(),
        "stage_ids": sorted(Persona.objects.values_list("life_stages__id", flat=True)),
        "knowledge": KnowledgeEntry.objects.count(),
        "styles": StylePreset.objects.count(),
    }
    call_command("seedpersonas", verbosity=0)
    after = {
        "personas": Persona.objects.count(),
        "stage_ids": sorted(Persona.objects.values_list("life_stages__id", flat=True)),
        "knowledge": KnowledgeEntry.objects.count(),
        "styles": StylePreset.objects.count(),
    }
    assert before == after
