"""A curator's card import: a JSON or PNG file, our own card or one made by another tool
(Character Card V2 or V3), checked and described before anything is stored.

Reading (`card_file_read`, `card_read`) never writes; `persona_import` writes once the curator has
chosen what to do with a card whose figure already exists (update it, or make a copy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify
from pypinyin import lazy_pinyin

from personas.cardpng import MAX_CARD_JSON_BYTES, PNG_SIGNATURE, png_card
from personas.cards import (
    EXT,
    FOREIGN_CARD_FIELDS,
    CardError,
    ParsedCard,
    card_parse,
    persona_write,
)
from personas.models import SIGNATURE_CATEGORIES, EpistemicLabel, KnowledgeEntry, Persona

MAX_CARD_FILE_BYTES = 8 * 1024 * 1024
SPECS = {"chara_card_v2": "Character Card V2", "chara_card_v3": "Character Card V3"}
UNMAPPED = "guyue/unmapped"  # where a foreign card's fields without a column of ours are kept
FOREIGN_SOURCE = "角色卡导入（未注明出处）"
TEXT_FIELDS = ("description", "personality", "scenario", "first_mes", "mes_example", "system_prompt",
               "post_history_instructions", "creator_notes")
SHORT_FIELDS = {"name": ("姓名", 40), "nickname": ("字号", 60), "character_version": ("版本", 20)}
# Card fields we have no column for; anything else unknown is listed under its own name.
FIELD_LABELS = {
    "creator": "作者（creator）",
    "group_only_greetings": "群聊开场白（group_only_greetings）",
    "assets": "资源（assets）",
    "source": "来源（source）",
    "creator_notes_multilingual": "多语言作者备注（creator_notes_multilingual）",
    "creation_date": "创建时间（creation_date）",
    "modification_date": "修改时间（modification_date）",
}
MAPPED_FIELDS = {*TEXT_FIELDS, *SHORT_FIELDS, "alternate_greetings", "tags", "character_book", "extensions"}
ENTRY_MAPPED = {"keys", "content", "enabled", "insertion_order", "extensions", "name", "comment", "use_regex", "id"}
BOOK_MAPPED = {"entries", "name", "extensions"}


@dataclass
class CardReading:
    """A checked card, not yet stored, and what the curator should know about it."""

    card: dict[str, Any]
    ours: bool  # carries extensions["guyue/persona"]: our own export, every field maps
    spec: str
    name: str
    slug: str  # the card's own, or one made from the name
    notes: list[str] = field(default_factory=list)
    preview: dict[str, Any] = field(default_factory=dict)

    @property
    def spec_label(self) -> str:
        return SPECS[self.spec]

    def as_json(self) -> str:
        return json.dumps(self.card, ensure_ascii=False, separators=(",", ":"))


def card_file_read(data: bytes) -> tuple[dict[str, Any], str]:
    """The card in an uploaded file and where it was found ("JSON", "PNG（ccv3）", …)."""
    if len(data) > MAX_CARD_FILE_BYTES:
        raise CardError(f"文件过大（{len(data) // 1024 // 1024} MB），上限 {MAX_CARD_FILE_BYTES // 1024 // 1024} MB。")
    if data.startswith(PNG_SIGNATURE):
        card, chunk = png_card(data)
        return card, f"PNG（{chunk} 数据块）"
    if data[:3] == b"\xff\xd8\xff" or data[:6] in (b"GIF87a", b"GIF89a") or data[:4] == b"RIFF":
        raise CardError("只支持 PNG 图片角色卡（JPEG、GIF、WebP 图片里没有角色卡数据）。")
    if len(data) > MAX_CARD_JSON_BYTES:
        raise CardError(f"JSON 文件过大，上限 {MAX_CARD_JSON_BYTES // 1024} KB。")
    try:
        card = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CardError("文件既不是 PNG 图片，也不是 UTF-8 编码的 JSON。") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"JSON 格式有误（第 {exc.lineno} 行第 {exc.colno} 列）。") from None
    except RecursionError:
        raise CardError("JSON 嵌套过深，不是角色卡。") from None
    if isinstance(card, list):
        raise CardError("文件里有多张角色卡，请逐张导入。")
    if not isinstance(card, dict):
        raise CardError("这不是角色卡：应为一个 JSON 对象。")
    return card, "JSON"


def card_read(card: dict[str, Any], *, from_png: bool = False) -> CardReading:
    """Check a card and say what will happen to each part of it; nothing is stored."""
    spec = card.get("spec")
    if spec is None:
        raise CardError("缺少 spec 字段：只支持 Character Card V2（chara_card_v2）与 V3（chara_card_v3）。")
    if spec not in SPECS:
        raise CardError(f"不支持的角色卡格式「{str(spec)[:40]}」：只支持 chara_card_v2 与 chara_card_v3。")
    data = card.get("data")
    if not isinstance(data, dict):
        raise CardError("角色卡缺少 data 对象。")
    extensions = data.get("extensions")
    if isinstance(extensions, dict) and EXT in extensions:
        parsed = _our_card(card)
        reading = CardReading(card=card, ours=True, spec=spec, name=parsed.persona.name, slug=parsed.persona.slug)
    else:
        parsed, notes = _foreign_parts(card)
        reading = CardReading(card=card, ours=False, spec=spec, name=parsed.persona.name,
                              slug=_slug_from(parsed.persona.name), notes=notes)
        if from_png:
            reading.notes.append("卡片上的图片没有设为画像；如需画像，请在人物页上传。")
    reading.preview = {
        "description": parsed.persona.description, "first_mes": parsed.persona.first_mes,
        "alternate_greetings": len(parsed.persona.alternate_greetings),
        "knowledge_entries": len(parsed.knowledge_entries), "life_stages": len(parsed.life_stages),
    }
    return reading


def _our_card(card: dict[str, Any]) -> ParsedCard:
    try:
        return card_parse(card)
    except CardError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError):
        # card_parse trusts the shapes it checks no further (the seed files); a hand-edited card may not.
        raise CardError(f"本站角色卡的 {EXT} 字段格式不对（人生阶段、史料或影视形象的某项缺少内容）。") from None


def _slug_from(name: str) -> str:
    return slugify("-".join(lazy_pinyin(name)))[:40].strip("-") or "figure"


def free_slug(base: str) -> str:
    """base, or base-2, base-3 … whichever no figure holds yet."""
    base = base[:44]
    taken = set(Persona.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def card_conflict(reading: CardReading) -> Persona | None:
    """The figure this card would clash with: by slug (our own cards), else by name."""
    if reading.ours and (same := Persona.objects.filter(slug=reading.slug).first()):
        return same
    return Persona.objects.filter(name=reading.name).order_by("pk").first()


# --- cards from other tools -------------------------------------------------------------------------

def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(f"角色卡的「{key}」应为文字。")
    return value


def _strings(value, label: str, notes: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        notes.append(f"{label}不是列表，已略去。")
        return []
    kept = [item for item in value if isinstance(item, str) and item.strip()]
    if len(kept) != len(value):
        notes.append(f"{label}中有 {len(value) - len(kept)} 项为空或不是文字，已略去。")
    return kept


def _foreign_parts(card: dict[str, Any]) -> tuple[ParsedCard, list[str]]:
    """A card made elsewhere as unsaved rows (no dynasty or years yet) and the notes for the curator."""
    data = card["data"]
    notes: list[str] = []
    unmapped: dict[str, Any] = {}
    persona = Persona()
    name = _text(data, "name").strip()
    if not name:
        raise CardError("角色卡缺少姓名（name）。")
    for key in TEXT_FIELDS:
        setattr(persona, key, _text(data, key))
    for key, (label, limit) in SHORT_FIELDS.items():
        value = _text(data, key).strip()
        if len(value) > limit and key == "name":
            raise CardError(f"姓名「{value[:20]}…」超过 {limit} 字。")
        if len(value) > limit:
            unmapped[key] = value
            notes.append(f"{label}（{key}）超过 {limit} 字，没有导入，原文保存在扩展字段 {UNMAPPED} 中。")
            value = ""
        setattr(persona, key, value)
    persona.name = name
    if not persona.description.strip():
        raise CardError("角色卡的简介（description）为空：本站的人物须有简介。")
    if not persona.first_mes.strip():
        raise CardError("角色卡没有开场白（first_mes）：本站的对话由开场白开始。")
    persona.alternate_greetings = _strings(data.get("alternate_greetings"), "其他开场白（alternate_greetings）", notes)
    persona.tags = _strings(data.get("tags"), "标签（tags）", notes)

    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        unmapped["extensions"] = extensions
        extensions = {}
    extensions = dict(extensions or {})
    if extensions:
        keys = "、".join(sorted(extensions)[:8]) + ("等" if len(extensions) > 8 else "")
        notes.append(f"其他工具的扩展字段 {len(extensions)} 项（{keys}）原样保留，本站不使用，导出时一并带上。")

    entries = _book_entries(data.get("character_book"), unmapped, notes)
    for key, value in data.items():
        if key not in MAPPED_FIELDS and value not in (None, "", [], {}):
            unmapped[key] = value
    other = [FIELD_LABELS.get(key, key) for key in unmapped if key not in ("character_book", *SHORT_FIELDS)]
    if other:
        notes.append(f"这些字段本站没有对应，原样保存在扩展字段 {UNMAPPED} 中：{'、'.join(other)}。")
    if unmapped:
        extensions[UNMAPPED] = unmapped
    persona.extensions = extensions
    if card["spec"] == "chara_card_v3" and _newer(card.get("spec_version")):
        notes.append(f"角色卡版本为 {card.get('spec_version')}，比本站支持的 3.0 新，新增的内容可能未能识别。")
    notes.append("角色卡没有朝代与生卒年：新建人物时须由你填写；更新已有人物时保留其原有的朝代、生卒年、"
                 "人生阶段、影视形象、角色内应答与发布状态。")
    notes.append("角色卡没有角色内应答（守卫婉拒时人物说的话）：新建的人物按通用句式填入，请到人物页逐条改写。")
    notes.append("新建的人物暂不发布，请审阅后再勾选「已发布」。")
    return ParsedCard(persona=persona, life_stages=[], knowledge_entries=entries, portrayals=[]), notes


def _newer(version) -> bool:
    try:
        return float(version) > 3.0
    except (TypeError, ValueError):
        return False


def _book_entries(book, unmapped: dict, notes: list[str]) -> list[KnowledgeEntry]:
    """The character book's entries as knowledge entries; their settings we do not use are kept aside."""
    if book is None:
        return []
    if not isinstance(book, dict) or not isinstance(book.get("entries", []), list):
        unmapped["character_book"] = book
        notes.append(f"知识书（character_book）格式不对，没有导入，原样保存在扩展字段 {UNMAPPED} 中。")
        return []
    kept_book = {key: value for key, value in book.items() if key not in BOOK_MAPPED}
    kept_entries, entries, titles, skipped, regex = [], [], set(), [], []
    for number, raw in enumerate(book.get("entries") or [], 1):
        content = raw.get("content") if isinstance(raw, dict) else None
        if not isinstance(content, str) or not content.strip():
            skipped.append(str(number))
            continue
        entry = _entry(raw, number, content, titles)
        entries.append(entry)
        extra = {key: value for key, value in raw.items() if key not in ENTRY_MAPPED}
        if extra:
            kept_entries.append({"title": entry.title, **extra})
        if raw.get("use_regex"):
            regex.append(str(number))
    if kept_book or kept_entries:
        unmapped["character_book"] = {**kept_book, "entries": kept_entries}
        fields = sorted({key for item in kept_entries for key in item if key != "title"} | set(kept_book))
        notes.append(f"知识书的这些设置本站不用，原样保存在扩展字段 {UNMAPPED} 中：{'、'.join(fields)}。")
    if skipped:
        notes.append(f"知识书第 {'、'.join(skipped)} 条没有内容，没有导入。")
    if regex:
        notes.append(f"知识书第 {'、'.join(regex)} 条的触发词是正则表达式（use_regex），本站按普通词语匹配，请核对。")
    unsourced = sum(1 for entry in entries if entry.source_book == FOREIGN_SOURCE)
    if unsourced:
        notes.append(f"知识书的 {unsourced} 条导入为史料条目，但没有出处：出处记为「{FOREIGN_SOURCE}」，"
                     "可信度标为「演绎」，请核对后补上出处。")
    return entries


def _entry(raw: dict, number: int, content: str, titles: set[str]) -> KnowledgeEntry:
    ext = raw.get("extensions") if isinstance(raw.get("extensions"), dict) else {}
    source = ext.get("guyue/source") if isinstance(ext.get("guyue/source"), dict) else {}
    label = ext.get("guyue/label") if ext.get("guyue/label") in EpistemicLabel.values else EpistemicLabel.ELABORATED
    base = next((str(v).strip() for v in (ext.get("guyue/title"), raw.get("name"), raw.get("comment"))
                 if isinstance(v, str) and v.strip()), content.strip()[:20])[:90]
    title, n = base, 1
    while title in titles:  # titles are the entries' natural key: keep them distinct
        n += 1
        title = f"{base}（{n}）"
    titles.add(title)
    order = raw.get("insertion_order")
    book = source.get("book") if isinstance(source.get("book"), str) and source.get("book").strip() else ""
    return KnowledgeEntry(
        title=title, content=content,
        trigger_keys=[k for k in raw.get("keys") or [] if isinstance(k, str) and k.strip()]
        if isinstance(raw.get("keys"), list) else [],
        source_book=book[:100] or FOREIGN_SOURCE, source_chapter=str(source.get("chapter") or "")[:150],
        source_quote=str(source.get("quote") or ""), label=label if book else EpistemicLabel.ELABORATED,
        enabled=raw.get("enabled") is not False,
        order=min(max(order, 0), 32767) if isinstance(order, int) and not isinstance(order, bool) else number,
    )


# --- writing ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportChoice:
    """What the curator chose: update `target`, or create a figure with `slug` (a copy when `copy`)."""

    target: Persona | None = None
    slug: str = ""
    copy: bool = False
    dynasty: str = ""
    birth_year: int | None = None
    death_year: int | None = None


def _generic_lines(name: str) -> dict[str, str]:
    # The guard's own fallback lines (personas leans on chat here only for a curator's import).
    from chat.guard.policy import FALLBACK_LINE, GENERIC_LINES

    return {key: GENERIC_LINES.get(key, FALLBACK_LINE).format(name=name) for key in SIGNATURE_CATEGORIES}


def _foreign_rows(reading: CardReading, choice: ImportChoice) -> ParsedCard:
    parsed, _ = _foreign_parts(reading.card)
    persona = parsed.persona
    if choice.target is not None:
        persona.extensions = {**choice.target.extensions, **persona.extensions}
        return parsed
    persona.slug = choice.slug
    persona.dynasty, persona.birth_year, persona.death_year = choice.dynasty, choice.birth_year, choice.death_year
    persona.signature_lines = _generic_lines(persona.name)
    persona.published = False
    try:
        persona.full_clean(exclude=["portrait"], validate_unique=False)
    except ValidationError as exc:
        raise CardError("；".join(exc.messages)) from None
    return parsed


@transaction.atomic
def persona_import(reading: CardReading, choice: ImportChoice) -> Persona:
    """Store a read card as the curator chose; the card is read again, so what is stored is checked."""
    if not reading.ours:
        parsed = _foreign_rows(reading, choice)
        if choice.target is not None:
            return persona_write(choice.target, parsed, fields=FOREIGN_CARD_FIELDS, prune=False)
        return persona_write(Persona(), parsed)
    parsed = _our_card(reading.card)
    if choice.target is not None:
        parsed.persona.slug = choice.target.slug  # "update that figure": its address stays
        return persona_write(choice.target, parsed)
    parsed.persona.slug = choice.slug
    if choice.copy:
        parsed.persona.published = False  # two of one figure in the gallery helps no one
    return persona_write(Persona(), parsed)
