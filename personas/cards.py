"""Character Card V3 import and export. Our fields live under extensions["guyue/persona"]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from personas.models import (
    SIGNATURE_CATEGORIES,
    Dynasty,
    EpistemicLabel,
    FigureRelation,
    KnowledgeEntry,
    LifeStage,
    Persona,
    RelationKind,
    ScreenPortrayal,
)

EXT = "guyue/persona"
CARD_TEXT_FIELDS = (
    "name", "nickname", "description", "personality", "scenario", "first_mes", "mes_example",
    "system_prompt", "post_history_instructions", "creator_notes", "character_version",
)
# Every Persona column a card carries; the rest (portrait, timestamps) is the site's own.
PERSONA_CARD_FIELDS = (
    *CARD_TEXT_FIELDS, "alternate_greetings", "tags", "extensions", "slug", "dynasty", "birth_year", "death_year",
    "published", "speech_style", "values", "signature_lines",
)
# What a card from another tool brings: the card's own fields, none of our structure.
FOREIGN_CARD_FIELDS = (*CARD_TEXT_FIELDS, "alternate_greetings", "tags", "extensions")
V3_ONLY_FIELDS = ("group_only_greetings", "assets", "source", "creator_notes_multilingual", "creation_date",
                  "modification_date")


class CardError(ValueError):
    pass


def persona_to_card(persona: Persona) -> dict[str, Any]:
    data: dict[str, Any] = {field: getattr(persona, field) for field in CARD_TEXT_FIELDS}
    data["alternate_greetings"] = list(persona.alternate_greetings)
    data["tags"] = list(persona.tags)
    data["creator"] = "古月今话"
    data["group_only_greetings"] = []
    data["character_book"] = {
        "name": f"{persona.name}·史料",
        "entries": [_entry_to_card(entry, i) for i, entry in enumerate(persona.knowledge_entries.all(), 1)],
    }
    data["extensions"] = {
        **persona.extensions,
        EXT: {
            "slug": persona.slug,
            "dynasty": persona.dynasty,
            "birth_year": persona.birth_year,
            "death_year": persona.death_year,
            "published": persona.published,
            "speech_style": persona.speech_style,
            "values": persona.values,
            "signature_lines": dict(persona.signature_lines),
            "life_stages": [
                {"name": s.name, "start_year": s.start_year, "end_year": s.end_year, "notes": s.notes}
                for s in persona.life_stages.all()
            ],
            "portrayals": [
                {"production": p.production, "year": p.year, "actor": p.actor,
                 "depiction": p.depiction, "departures": p.departures}
                for p in persona.portrayals.all()
            ],
            # By the other figure's slug: a card carries what this figure knew of others (docs/relations.md).
            "relations": [
                {"other": r.other.slug, "kind": r.kind, "note": r.note, "since": r.since_year, "source": r.source}
                for r in persona.relations.select_related("other").order_by("other__slug")
            ],
        },
    }
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def _entry_to_card(entry: KnowledgeEntry, order: int) -> dict[str, Any]:
    return {
        "keys": list(entry.trigger_keys),
        "content": entry.content,
        "enabled": entry.enabled,
        "insertion_order": order,
        "use_regex": False,
        "extensions": {
            "guyue/title": entry.title,
            "guyue/source": {"book": entry.source_book, "chapter": entry.source_chapter, "quote": entry.source_quote},
            "guyue/label": entry.label,
        },
    }


def _require(mapping: dict, key: str, kind: type, where: str):
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise CardError(f"{where}: 「{key}」缺失或格式不对")
    return value


def _parse_entry(raw: dict, where: str) -> KnowledgeEntry:
    ext = raw.get("extensions") or {}
    source = ext.get("guyue/source") or {}
    label = ext.get("guyue/label", EpistemicLabel.INFERRED)
    if label not in EpistemicLabel.values:
        raise CardError(f"{where}: 可信度须为 史载/推测/演绎")
    content = _require(raw, "content", str, where)
    return KnowledgeEntry(
        title=ext.get("guyue/title") or content[:20],
        content=content,
        trigger_keys=[str(k) for k in raw.get("keys") or []],
        source_book=_require(source, "book", str, where + " 出处"),
        source_chapter=source.get("chapter") or "",
        source_quote=source.get("quote") or "",
        label=label,
        enabled=bool(raw.get("enabled", True)),
        order=int(raw.get("insertion_order") or 0),
    )


@dataclass
class ParsedCard:
    """A checked card as unsaved rows: the figure and the children it owns."""

    persona: Persona
    life_stages: list[LifeStage]
    knowledge_entries: list[KnowledgeEntry]
    portrayals: list[ScreenPortrayal]
    # {"other": slug, "kind", "note", "since", "source"}; None when the card says nothing of relations
    relations: list[dict] | None = None


def card_parse(card: dict[str, Any]) -> ParsedCard:
    """Check a card and build its rows without touching the database."""
    if card.get("spec") not in ("chara_card_v3", "chara_card_v2"):
        raise CardError("不是角色卡（缺少 spec: chara_card_v3）")
    data = _require(card, "data", dict, "角色卡")
    extensions = dict(data.get("extensions") or {})
    ours = _require(extensions, EXT, dict, "extensions")
    extensions.pop(EXT)
    slug = _require(ours, "slug", str, EXT)
    if ours.get("dynasty") not in Dynasty.values:
        raise CardError(f"{slug}: 朝代「{ours.get('dynasty')}」无效")

    persona = Persona(slug=slug)
    for field in CARD_TEXT_FIELDS:
        setattr(persona, field, data.get(field) or "")
    persona.alternate_greetings = list(data.get("alternate_greetings") or [])
    persona.tags = list(data.get("tags") or [])
    persona.extensions = extensions
    persona.dynasty = ours["dynasty"]
    persona.birth_year = _require(ours, "birth_year", int, slug)
    persona.death_year = _require(ours, "death_year", int, slug)
    persona.published = bool(ours.get("published", False))
    persona.speech_style = ours.get("speech_style") or ""
    persona.values = ours.get("values") or ""
    persona.signature_lines = {k: v for k, v in (ours.get("signature_lines") or {}).items() if k in SIGNATURE_CATEGORIES}
    try:
        # Uniqueness is the writer's business: it updates the row that already holds the slug.
        persona.full_clean(exclude=["portrait"], validate_unique=False)
    except ValidationError as exc:
        raise CardError(f"{slug}: {'; '.join(exc.messages)}") from None

    entries = (data.get("character_book") or {}).get("entries") or []
    parsed = ParsedCard(
        persona=persona,
        life_stages=[
            LifeStage(order=i, name=_require(s, "name", str, f"{slug} 人生阶段"),
                      start_year=int(s["start_year"]), end_year=int(s["end_year"]), notes=s.get("notes") or "")
            for i, s in enumerate(ours.get("life_stages") or [])
        ],
        knowledge_entries=[_parse_entry(raw, f"{slug} 史料#{i}") for i, raw in enumerate(entries, 1)],
        portrayals=[
            ScreenPortrayal(production=_require(p, "production", str, f"{slug} 影视形象"), year=p.get("year"),
                            actor=p.get("actor") or "", depiction=p.get("depiction") or "",
                            departures=p.get("departures") or "")
            for p in ours.get("portrayals") or []
        ],
    )
    relations = ours.get("relations")
    if relations is not None:
        if not isinstance(relations, list) or not all(
                isinstance(r, dict) and isinstance(r.get("other"), str) and r.get("kind") in RelationKind.values
                and isinstance(r.get("note"), str) for r in relations):
            raise CardError(f"{slug}: 人物关系格式不对")
        parsed.relations = relations
    children = ((parsed.life_stages, "name"), (parsed.knowledge_entries, "title"), (parsed.portrayals, "production"))
    for rows, key in children:
        keys = [getattr(obj, key) for obj in rows]
        if len(set(keys)) != len(keys):
            raise CardError(f"{slug}: 「{key}」有重复")
    return parsed


def card_as_v2(card: dict[str, Any]) -> dict[str, Any]:
    """A V3 card as Character Card V2 (for a PNG's `chara` chunk): the V3-only fields dropped. The
    nickname stays: V2 readers keep fields they do not know, and ours reads it back."""
    data = {key: value for key, value in card["data"].items() if key not in V3_ONLY_FIELDS}
    if "character_book" in data:
        book = data["character_book"]
        data["character_book"] = {**book, "entries": [
            {key: value for key, value in entry.items() if key != "use_regex"} for entry in book.get("entries", [])
        ]}
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


@transaction.atomic
def persona_import_card(card: dict[str, Any]) -> Persona:
    """Create or update (by slug) a figure and everything it owns from one card: a curator's explicit import."""
    parsed = card_parse(card)
    persona = Persona.objects.filter(slug=parsed.persona.slug).first() or Persona(slug=parsed.persona.slug)
    return persona_write(persona, parsed)


def persona_write(persona: Persona, parsed: ParsedCard, *, fields=PERSONA_CARD_FIELDS, prune: bool = True) -> Persona:
    """Copy the card's fields onto the figure and sync its children; without prune, children the
    card does not name are kept (a card from another tool knows nothing of them)."""
    for field in fields:
        setattr(persona, field, getattr(parsed.persona, field))
    persona.save()
    _sync_children(persona, persona.life_stages, "name", parsed.life_stages, prune)
    _sync_children(persona, persona.knowledge_entries, "title", parsed.knowledge_entries, prune)
    _sync_children(persona, persona.portrayals, "production", parsed.portrayals, prune)
    if parsed.relations is not None:
        _sync_relations(persona, parsed.relations, prune)
    return persona


def _sync_relations(persona: Persona, relations: list[dict], prune: bool) -> None:
    """The card's relations, for the other figures that exist here (a relation to a figure this site
    does not have is left out)."""
    others = {p.slug: p for p in Persona.objects.filter(slug__in=[r["other"] for r in relations])}
    keep = []
    for item in relations:
        other = others.get(item["other"])
        if other is None or other.pk == persona.pk:
            continue
        row, _ = FigureRelation.objects.update_or_create(figure=persona, other=other, defaults={
            "kind": item["kind"], "note": item["note"], "since_year": item.get("since"),
            "source": item.get("source") or ""})
        keep.append(row.pk)
    if prune:
        persona.relations.exclude(pk__in=keep).delete()


def _sync_children(persona: Persona, manager, key: str, wanted: list, prune: bool = True) -> None:
    """Update rows in place by a natural key, so ids that conversations point at survive a re-import."""
    existing = {getattr(row, key): row for row in manager.all()}
    keep = []
    for obj in wanted:
        row = existing.get(getattr(obj, key))
        if row is not None:
            obj.pk = row.pk
        obj.persona = persona
        obj.save()
        keep.append(obj.pk)
    if prune:
        manager.exclude(pk__in=keep).delete()
