from __future__ import annotations

import pytest
from django.core.management import call_command

from personas.models import Persona


@pytest.fixture
def seeded(db):
    call_command("seedpersonas", verbosity=0)
    return {persona.name: persona for persona in Persona.objects.all()}


@pytest.fixture
def li_bai() -> Persona:
    """An unsaved 李白 (no database needed): the fields the guard reads."""
    return Persona(
        name="李白", nickname="太白", slug="li-bai", dynasty="tang", birth_year=701, death_year=762,
        description="李白，字太白，唐代诗人。", first_mes="（李白举杯）客从何处来？",
        signature_lines={"unsafe": "此等言语，无益于道。", "leak": "白胸中唯有诗酒，别无他物可示人。"},
    )  # fmt: skip


@pytest.fixture
def zhang_fei() -> Persona:
    return Persona(name="张飞", nickname="益德", slug="zhang-fei", dynasty="three_kingdoms", birth_year=165,
                   death_year=221, description="张飞，字益德。", first_mes="俺乃燕人张翼德！")
