"""The user's persona: the name and self-description a figure knows them by (SillyTavern's persona).

Shared by every figure, or set for one; a figure's own row wins field by field. Like preferences it
reaches every prompt, so it is checked by the input guard when saved and goes to the model only as
quoted data (chat/prompting.py)."""

from __future__ import annotations

from django.db.models import F, Q

from chat.models import UserPersona
from chat.recall.memories import PreferenceRejected, check_not_attack
from chat.services import MessageRejected
from personas.models import Persona

FIELDS = ("name", "description")


def user_persona_rows(owner, persona: Persona | None) -> list[UserPersona]:
    """The figure's row (if any) first, then the shared one: one query."""
    which = Q(persona=persona) | Q(persona=None) if persona is not None else Q(persona=None)
    return list(UserPersona.objects.for_user(owner).filter(which).order_by(F("persona").asc(nulls_last=True)))


def user_persona_text(rows: list[UserPersona]) -> str:
    """What the prompt says about who the user is ("" when nothing is set)."""
    values = {field: next((getattr(r, field) for r in rows if getattr(r, field)), "") for field in FIELDS}
    parts = []
    if values["name"]:
        parts.append(f"称呼：{values['name']}")
    if values["description"]:
        parts.append(f"自述：{values['description']}")
    return "；".join(parts)


def user_persona_update(*, owner, persona: Persona | None, name: str, description: str) -> UserPersona | None:
    """Save (or, both fields empty, remove) the user's persona for `persona` (None: every figure).

    PreferenceRejected, naming the field, for a value that is too long or reads as an attack."""
    values = {"name": " ".join(name.split()), "description": " ".join(description.split())}
    for field, value in values.items():
        model_field = UserPersona._meta.get_field(field)
        if len(value) > model_field.max_length:
            raise PreferenceRejected(f"{model_field.verbose_name}太长了，请控制在 {model_field.max_length} 字以内。",
                                     "too_long", field)
        if value:
            try:
                check_not_attack(value, persona)
            except MessageRejected as exc:
                raise PreferenceRejected(f"{model_field.verbose_name}：{exc}", exc.code, field) from None
    rows = UserPersona.objects.for_user(owner).filter(persona=persona)
    if not any(values.values()):
        rows.delete()
        return None
    row, _ = UserPersona.objects.update_or_create(owner=owner, persona=persona, defaults=values)
    return row
