"""Load the seeded figures, era knowledge and style presets without undoing a curator (personas/seedsync.py)."""

from __future__ import annotations

import json
from collections import Counter
from operator import attrgetter
from pathlib import Path

from django.db import transaction
from django.db.models import Q

from personas.cards import CardError, ParsedCard, card_parse
from personas.models import (
    Dynasty,
    EpistemicLabel,
    FigureRelation,
    KnowledgeEntry,
    Persona,
    RelationKind,
    SeedRecord,
    StylePreset,
)
from personas.seedsync import Group, Step, group_plan, steps_apply

SEED_DIR = Path(__file__).resolve().parent / "seed"
FIGURE_CHILDREN = (
    ("stage", "life_stages", "name"),
    ("knowledge", "knowledge_entries", "title"),
    ("portrayal", "portrayals", "production"),
)


def _load(path: Path):
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@transaction.atomic
def seed_all() -> dict:
    """Create what is missing and update what nobody changed; returns sizes and a tally of actions."""
    cards = [card_parse(_load(path)) for path in _figure_files()]
    steps = [step for parsed in cards for step in figure_plan(parsed)]
    counts = {"personas": len(cards), "eras": 0, "styles": 0}
    era_files = [path for path in [SEED_DIR / "eras.json", *sorted((SEED_DIR / "eras").glob("*.json"))]
                 if path.exists()]  # one file per group of eras keeps each addition a file of its own
    if era_files:
        eras = _era_rows([item for path in era_files for item in _load(path)])
        counts["eras"] = len(eras)
        rows = list(KnowledgeEntry.objects.filter(persona=None))
        steps += group_plan(Group("era", "", rows, lambda e: f"{e.dynasty}/{e.title}"), eras)
    if (path := SEED_DIR / "styles.json").exists():
        styles = _style_rows(_load(path))
        counts["styles"] = len(styles)
        steps += group_plan(Group("style", "", list(StylePreset.objects.all()), attrgetter("slug")), styles)
    tally = steps_apply(steps)
    if (path := SEED_DIR / "relations.json").exists():  # after the figures: they must exist to be related
        relations = _relation_rows(_load(path))
        counts["relations"] = len(relations)
        rows = list(FigureRelation.objects.select_related("figure", "other"))
        tally += steps_apply(group_plan(Group("relation", "", rows, _relation_key), relations))
    return {**counts, "tally": tally}


def figure_plan(parsed: ParsedCard, *, reset: bool = False) -> list[Step]:
    """Steps for one figure, the figure first; none for its children when a curator deleted it."""
    slug = parsed.persona.slug
    seeded_ids = SeedRecord.objects.filter(kind="persona", scope=slug).values("object_id")
    candidates = list(Persona.objects.filter(Q(slug=slug) | Q(pk__in=seeded_ids)))
    # Figures are never deleted by seeding: conversations hold on to them.
    group = Group("persona", slug, candidates, attrgetter("slug"))
    steps = group_plan(group, [parsed.persona], reset=reset, prune=False)
    persona = steps[0].target
    if persona is None:
        return steps
    for kind, related, key in FIGURE_CHILDREN:
        wanted = getattr(parsed, related)
        for child in wanted:
            child.persona = persona
        rows = list(getattr(persona, related).all()) if persona.pk else []
        steps += group_plan(Group(kind, slug, rows, attrgetter(key)), wanted, reset=reset)
    return steps


def _figure_files() -> list[Path]:
    return sorted((SEED_DIR / "figures").glob("*.json"))


def figure_card(slug: str) -> ParsedCard | None:
    for path in _figure_files():
        card = _load(path)
        if (card.get("data", {}).get("extensions", {}).get("guyue/persona") or {}).get("slug") == slug:
            return card_parse(card)
    return None


def seeded_slugs() -> list[str]:
    return [path.stem for path in _figure_files()]


def figure_reset_plan(slug: str) -> list[Step] | None:
    """What a reset would do (nothing is written); None for a slug the seed does not have."""
    parsed = figure_card(slug)
    return figure_plan(parsed, reset=True) if parsed is not None else None


@transaction.atomic
def figure_reset(slug: str) -> Counter:
    """Restore one figure and its children to the seed, in place, deleting rows the seed does not have."""
    parsed = figure_card(slug)
    if parsed is None:
        raise CardError(f"no seeded figure with slug {slug!r}")
    return steps_apply(figure_plan(parsed, reset=True))


def _relation_key(relation: FigureRelation) -> str:
    return f"{relation.figure.slug}>{relation.other.slug}"


def _relation_rows(items: list[dict]) -> list[FigureRelation]:
    """Rows of relations.json whose two figures exist (a curator may have renamed or removed one)."""
    figures = {p.slug: p for p in Persona.objects.filter(slug__in={i[k] for i in items for k in ("figure", "other")})}
    rows = []
    for item in items:
        if item.get("kind") not in RelationKind.values:
            raise CardError(f"relations.json: {item.get('figure')}>{item.get('other')} 的关系类型无效")
        figure, other = figures.get(item["figure"]), figures.get(item["other"])
        if figure is None or other is None or figure == other:
            continue
        rows.append(FigureRelation(figure=figure, other=other, kind=item["kind"], note=item["note"],
                                   since_year=item.get("since"), source=item.get("source") or ""))
    return rows


def _era_rows(items: list[dict]) -> list[KnowledgeEntry]:
    rows = []
    for item in items:
        if item["dynasty"] not in Dynasty.values or item.get("label") not in EpistemicLabel.values:
            raise CardError(f"eras.json: 条目「{item.get('title')}」朝代或可信度无效")
        source = item.get("source") or {}
        rows.append(KnowledgeEntry(
            persona=None, dynasty=item["dynasty"], title=item["title"], content=item["content"],
            trigger_keys=item.get("keys") or [], source_book=source["book"],
            source_chapter=source.get("chapter") or "", source_quote=source.get("quote") or "", label=item["label"],
        ))
    return rows


def _style_rows(items: list[dict]) -> list[StylePreset]:
    return [
        StylePreset(slug=item["slug"], name=item["name"], description=item.get("description") or "",
                    instructions=item["instructions"], examples=item.get("examples") or [], order=order)
        for order, item in enumerate(items)
    ]


def published_count() -> int:
    return Persona.objects.published().count()
