"""Load the seeded figures, era knowledge and style presets (idempotent: update by slug or title)."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from personas.cards import CardError, persona_import_card
from personas.models import Dynasty, EpistemicLabel, KnowledgeEntry, Persona, StylePreset

SEED_DIR = Path(__file__).resolve().parent / "seed"


def _load(path: Path):
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@transaction.atomic
def seed_all(seed_dir: Path = SEED_DIR) -> dict[str, int]:
    personas = [persona_import_card(_load(path)) for path in sorted((seed_dir / "figures").glob("*.json"))]
    eras = _seed_eras(_load(seed_dir / "eras.json")) if (seed_dir / "eras.json").exists() else 0
    styles = _seed_styles(_load(seed_dir / "styles.json")) if (seed_dir / "styles.json").exists() else 0
    return {"personas": len(personas), "eras": eras, "styles": styles}


def _seed_eras(items: list[dict]) -> int:
    for item in items:
        if item["dynasty"] not in Dynasty.values or item.get("label") not in EpistemicLabel.values:
            raise CardError(f"eras.json: 条目「{item.get('title')}」朝代或可信度无效")
        source = item.get("source") or {}
        KnowledgeEntry.objects.update_or_create(
            persona=None,
            dynasty=item["dynasty"],
            title=item["title"],
            defaults={
                "content": item["content"],
                "trigger_keys": item.get("keys") or [],
                "source_book": source["book"],
                "source_chapter": source.get("chapter") or "",
                "source_quote": source.get("quote") or "",
                "label": item["label"],
            },
        )
    return len(items)


def _seed_styles(items: list[dict]) -> int:
    for order, item in enumerate(items):
        StylePreset.objects.update_or_create(
            slug=item["slug"],
            defaults={
                "name": item["name"],
                "description": item.get("description") or "",
                "instructions": item["instructions"],
                "examples": item.get("examples") or [],
                "order": order,
            },
        )
    return len(items)


def published_count() -> int:
    return Persona.objects.published().count()
