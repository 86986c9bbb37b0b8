"""Claims marked with their sources (docs/citations.md).

A figure that draws on a knowledge entry writes its short id, 〔K12〕, after the sentence. The page
turns each id into a small mark whose label (史载 / 推测 / 演绎), book, chapter and quotation come from
the entry itself, never from the model; an id that names no entry the speaker may cite is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.utils.html import escape

from personas.models import EpistemicLabel, KnowledgeEntry, Persona

REF = re.compile(r"〔K(\d{1,10})〕")
LABEL_CLASS = {EpistemicLabel.RECORDED: "recorded", EpistemicLabel.INFERRED: "inferred",
               EpistemicLabel.ELABORATED: "elaborated"}


@dataclass(frozen=True)
class Citation:
    ref: int
    label: str
    title: str
    book: str
    chapter: str
    quote: str
    persona_id: int | None
    dynasty: str

    @classmethod
    def of(cls, entry: KnowledgeEntry) -> Citation:
        return cls(ref=entry.pk, label=entry.label, title=entry.title, book=entry.source_book,
                   chapter=entry.source_chapter, quote=entry.source_quote, persona_id=entry.persona_id,
                   dynasty=entry.dynasty)

    def citable_by(self, speaker: Persona) -> bool:
        """A figure cites its own entries and its era's, nobody else's."""
        return self.persona_id == speaker.pk or (self.persona_id is None and self.dynasty == speaker.dynasty)

    @property
    def source(self) -> str:
        return f"{self.book}·{self.chapter}" if self.chapter else self.book

    def payload(self) -> dict:
        """What the page needs to draw the mark while the reply streams."""
        return {"label": self.label, "kind": LABEL_CLASS.get(self.label, "recorded"), "title": self.title,
                "source": self.source, "quote": self.quote}


def ref_of(entry: KnowledgeEntry) -> str:
    return f"K{entry.pk}"


def refs_in(text: str) -> set[int]:
    return {int(number) for number in REF.findall(text)}


def citations_for(texts: Iterable[str]) -> dict[int, Citation]:
    """The entries the texts name, in one query (none when no text names any)."""
    refs = set().union(*(refs_in(text) for text in texts))
    if not refs:
        return {}
    return {entry.pk: Citation.of(entry) for entry in KnowledgeEntry.objects.filter(pk__in=refs, enabled=True)}


def tool_sources(data: dict, speaker: Persona) -> dict[str, dict]:
    """{"K12": payload} for the entries a tool result hands the model (labels read from the entries)."""
    items = data.get("结果") if isinstance(data, dict) else None
    refs = [item.get("编号", "") for item in items or [] if isinstance(item, dict)]
    found = citations_for(f"〔{ref}〕" for ref in refs if isinstance(ref, str))
    return {f"K{ref}": citation.payload() for ref, citation in citable(found, speaker).items()}


def citable(citations: Mapping[int, Citation], speaker: Persona) -> dict[int, Citation]:
    return {ref: citation for ref, citation in citations.items() if citation.citable_by(speaker)}


def mark_html(citation: Citation) -> str:
    """The mark: the label, and a note (opened by hover, focus or a tap) with the entry's source."""
    quote = f"<q>{escape(citation.quote)}</q>" if citation.quote else ""
    kind = LABEL_CLASS.get(citation.label, "recorded")
    return (f'<span class="cite cite-{kind}" tabindex="0" data-ref="K{citation.ref}" '
            f'aria-label="{escape(citation.label)}：{escape(citation.source)}">{escape(citation.label)}'
            f'<span class="cite-note" role="tooltip"><strong>{escape(citation.title)}</strong>'
            f"<cite>{escape(citation.source)}</cite>{quote}</span></span>")


def apply_marks(html: str, citations: Mapping[int, Citation]) -> str:
    """Sanitised HTML with each id replaced by its mark, or removed. The ids are plain text in it, so
    the marks (our own escaped markup) are added after the sanitiser, never passed through it."""
    return REF.sub(lambda m: mark_html(c) if (c := citations.get(int(m.group(1)))) else "", html)


def plain_marks(text: str, citations: Mapping[int, Citation]) -> str:
    """For exports: 〔史载·《史记》·卷七·项羽本纪〕 in place of each id; unknown ids removed."""
    return REF.sub(lambda m: f"〔{c.label}·{c.source}〕" if (c := citations.get(int(m.group(1)))) else "", text)


def strip_refs(text: str) -> str:
    """Text without ids, for what reads the words only (speech, titles, summaries)."""
    return REF.sub("", text)
