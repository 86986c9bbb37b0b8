"""Cards as other tools write them, built to the published specs (Character Card V2:
malfoyslastname/character-card-spec-v2 spec_v2.md; V3: kwaroran/character-card-spec-v3 SPEC_V3.md),
and PNG files made chunk by chunk, as SillyTavern does (tEXt before IEND), not with our writer."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

from PIL import Image


def v2_card(**data) -> dict:
    """A TavernCardV2 as SillyTavern exports it: the V1 fields repeated at the top level."""
    body = {
        "name": "Seraphina",
        "description": "{{char}} is a guardian of the forest glade. <script>alert('x')</script>",
        "personality": "warm, protective",
        "scenario": "{{user}} wakes up in {{char}}'s glade.",
        "first_mes": "*Seraphina smiles.* Welcome, {{user}}.",
        "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: I am Seraphina.",
        "creator_notes": "Made for testing.",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["*The glade is quiet.* You are awake.", "Rest a while."],
        "character_book": {
            "name": "Glade lore",
            "scan_depth": 4,
            "token_budget": 512,
            "recursive_scanning": False,
            "extensions": {},
            "entries": [
                {"keys": ["glade"], "content": "The glade is hidden by old magic.", "extensions": {}, "enabled": True,
                 "insertion_order": 10, "name": "The glade", "priority": 5, "id": 1, "comment": "",
                 "selective": True, "secondary_keys": ["magic"], "constant": False, "position": "before_char"},
                {"keys": ["forest"], "content": "Shadows walk the forest at night.", "extensions": {},
                 "enabled": False, "insertion_order": 20},
            ],
        },
        "tags": ["fantasy", "guardian"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "fav": False, "world": "",
                       "depth_prompt": {"prompt": "", "depth": 4}},
    }
    body.update(data)
    return {
        "spec": "chara_card_v2", "spec_version": "2.0", "data": body,
        # SillyTavern's V1 backfill at the top level: duplicates, ignored on import.
        "name": body["name"], "description": body["description"], "first_mes": body["first_mes"],
    }


def v3_card(**data) -> dict:
    """A CharacterCardV3 from another tool (no guyue extension)."""
    body = {
        "name": "Aria",
        "nickname": "Ari",
        "description": "A wandering bard of the northern roads.",
        "personality": "curious",
        "scenario": "",
        "first_mes": "A song for the road, {{user}}?",
        "mes_example": "",
        "creator_notes": "V3 test card.",
        "system_prompt": "Stay in character as {{char}}.",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "group_only_greetings": ["Hello, everyone!"],
        "tags": ["bard"],
        "creator": "tester",
        "character_version": "3",
        "extensions": {"risu/utilityBot": False},
        "character_book": {
            "extensions": {},
            "entries": [
                {"keys": ["^lute$"], "content": "@@depth 4\nAria's lute was her mother's.", "extensions": {},
                 "enabled": True, "insertion_order": 0, "use_regex": True, "constant": False},
            ],
        },
        "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        "creator_notes_multilingual": {"en": "V3 test card."},
        "source": ["https://example.invalid/aria"],
        "creation_date": 1700000000,
        "modification_date": 1700000500,
    }
    body.update(data)
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": body}


def encoded(card: dict) -> bytes:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with(chunks: dict[str, bytes]) -> bytes:
    """A small PNG with one tEXt chunk per keyword, written after the image data like SillyTavern."""
    out = io.BytesIO()
    Image.new("RGB", (8, 12), (200, 180, 150)).save(out, format="PNG")
    data = out.getvalue()
    iend = data.rindex(b"IEND") - 4
    text = b"".join(_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + value) for keyword, value in chunks.items())
    return data[:iend] + text + data[iend:]
