"""The relations table (docs/relations.md): what the record says one figure knew of another."""

from __future__ import annotations

from personas.models import FigureRelation, Persona


def relations_among(figure: Persona, others: list[Persona]) -> list[tuple[Persona, FigureRelation | None]]:
    """Each other figure of a scene or salon with the table's row for figure → it (one query)."""
    rows = {row.other_id: row for row in FigureRelation.objects.filter(figure=figure, other__in=others)}
    return [(other, rows.get(other.pk)) for other in others]
