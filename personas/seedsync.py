"""Seeding that never undoes a curator.

Every row seeding writes gets a SeedRecord holding a hash of the values it wrote. On the next run a
row whose values still hash to that record is the seed's and follows the seed; a row that differs
was changed by a curator and is left alone. Rows without a record are a curator's own. A reset
(`reset=True`) restores a group to the seed whatever a curator did.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

from personas.cards import PERSONA_CARD_FIELDS, CardError
from personas.models import FigureRelation, KnowledgeEntry, LifeStage, Persona, ScreenPortrayal, SeedRecord, StylePreset

# The values a seed file sets, per model: counters, timestamps, uploads and parent links are not.
SEEDED_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Persona: PERSONA_CARD_FIELDS,
    LifeStage: ("name", "start_year", "end_year", "notes", "order"),
    KnowledgeEntry: (
        "dynasty", "title", "content", "trigger_keys", "source_book", "source_chapter", "source_quote", "label",
        "enabled", "order",
    ),
    ScreenPortrayal: ("production", "year", "actor", "depiction", "departures"),
    StylePreset: ("slug", "name", "description", "instructions", "examples", "order"),
    FigureRelation: ("kind", "note", "since_year", "source"),
}


def _normal(value):
    # Saving a form in the admin turns newlines into CRLF and strips text: that alone is no edit.
    if isinstance(value, str):
        return value.replace("\r\n", "\n").strip()
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def row_hash(obj: models.Model) -> str:
    values = {field: _normal(getattr(obj, field)) for field in SEEDED_FIELDS[type(obj)]}
    text = json.dumps(values, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Group:
    """Rows that one part of the seed owns: a figure's knowledge entries, all era entries, …"""

    kind: str
    scope: str
    rows: list[models.Model]  # the live rows the seed's rows may match
    key: Callable[[models.Model], str]  # the natural key a seed row is known by


@dataclass
class Step:
    # created, updated, unchanged, kept (a curator changed it), skipped (a curator deleted it),
    # removed (the seed dropped it), discarded (a curator's row, on reset), forgotten (a record only)
    action: str
    group: Group
    key: str
    seed: models.Model | None = None  # the seed's values (unsaved)
    row: models.Model | None = None  # the live row it applies to
    record: SeedRecord | None = None

    @property
    def target(self) -> models.Model | None:
        """The row that stands for this seed row once the step is applied."""
        return self.seed if self.action == "created" else self.row


def group_plan(group: Group, wanted: list[models.Model], *, reset: bool = False, prune: bool = True) -> list[Step]:
    """Decide what to do with each row of a group; nothing is written. prune=False never deletes."""
    records = {r.key: r for r in SeedRecord.objects.filter(kind=group.kind, scope=group.scope)}
    by_pk = {row.pk: row for row in group.rows}
    claimed = {r.object_id for r in records.values() if r.object_id in by_pk}
    by_key: dict[str, models.Model] = {}
    for row in group.rows:
        if row.pk not in claimed:
            by_key.setdefault(group.key(row), row)
    keys = [group.key(seed) for seed in wanted]
    if len(set(keys)) != len(keys):
        raise CardError(f"{group.kind} {group.scope}: 标识有重复")
    steps = []
    for seed in wanted:
        key = group.key(seed)
        record = records.get(key)
        row = by_pk.get(record.object_id) if record else None
        if row is None and (record is None or reset):
            # Never seen (or being reset): take over a row that already holds the key, else create one.
            row = by_key.pop(key, None)
            if row is not None:
                claimed.add(row.pk)
        steps.append(Step(_action(seed, row, record, reset), group, key, seed, row, record))
    if prune:
        steps += _prune_steps(group, records, by_pk, claimed, {group.key(s) for s in wanted}, reset)
    return steps


def _action(seed: models.Model, row: models.Model | None, record: SeedRecord | None, reset: bool) -> str:
    if row is None:
        # A record without its row: a curator deleted what the seed made.
        return "skipped" if record is not None and not reset else "created"
    current = row_hash(row)
    if current == row_hash(seed):
        return "unchanged"
    if reset or (record is not None and current == record.seed_hash):
        return "updated"
    return "kept"


def _prune_steps(group, records, by_pk, claimed, wanted_keys, reset) -> list[Step]:
    steps = []
    for key, record in records.items():
        if key in wanted_keys:
            continue
        row = by_pk.get(record.object_id)
        if row is None:
            steps.append(Step("forgotten", group, key, record=record))
        elif reset or row_hash(row) == record.seed_hash:
            steps.append(Step("removed", group, key, row=row, record=record))
        else:
            steps.append(Step("kept", group, key, row=row, record=record))
    if reset:
        seeded = {r.object_id for r in records.values()} | claimed
        steps += [Step("discarded", group, group.key(row), row=row) for row in group.rows if row.pk not in seeded]
    return steps


def steps_apply(steps: list[Step]) -> Counter:
    """Write the steps in order (a figure before its children) and count them by action."""
    for step in steps:
        _apply(step)
    return Counter(step.action for step in steps if step.action != "forgotten")


def _apply(step: Step) -> None:
    if step.action == "created":
        step.seed.save()
    elif step.action == "updated":
        for field in SEEDED_FIELDS[type(step.row)]:
            setattr(step.row, field, getattr(step.seed, field))
        step.row.save()
    elif step.action in ("removed", "discarded", "forgotten"):
        if step.row is not None:
            step.row.delete()
        if step.record is not None:
            step.record.delete()
        return
    if step.action == "skipped" or (step.action == "kept" and step.record is not None) or _recorded(step):
        return
    # Created, updated, unchanged, or a curator's version of a row seen for the first time: the
    # record now holds what the seed says, so a kept row stays kept until it matches the seed again.
    SeedRecord.objects.update_or_create(
        kind=step.group.kind, scope=step.group.scope, key=step.key,
        defaults={"object_id": step.target.pk, "seed_hash": row_hash(step.seed)},
    )


def _recorded(step: Step) -> bool:
    """An unchanged row whose record already says so needs no write."""
    record = step.record
    return (step.action == "unchanged" and record is not None and record.object_id == step.row.pk
            and record.seed_hash == row_hash(step.seed))
