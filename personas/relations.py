"""The relations table (docs/relations.md): what the record says one figure knew of another."""

from __future__ import annotations

from personas.models import FigureRelation, Persona


def relation_of(figure: Persona, other: Persona) -> FigureRelation | None:
    return FigureRelation.objects.filter(figure=figure, other=other).first()
