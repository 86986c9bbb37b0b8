from __future__ import annotations

from personas.models import SIGNATURE_CATEGORIES, KnowledgeEntry, LifeStage, Persona, ScreenPortrayal


def make_persona(slug: str, name: str, *, dynasty: str = "tang", birth_year: int = 701, death_year: int = 762,
                 published: bool = True) -> Persona:
    persona = Persona.objects.create(
        slug=slug, name=name, dynasty=dynasty, birth_year=birth_year, death_year=death_year, published=published,
        description="描述" * 160, first_mes="幸会。", signature_lines={k: f"{k}之言" for k in SIGNATURE_CATEGORIES},
    )
    LifeStage.objects.create(persona=persona, name="供奉翰林", start_year=742, end_year=744)
    KnowledgeEntry.objects.create(
        persona=persona, title="赐金放还", content="天宝三载赐金放还。", source_book="《新唐书》",
        source_chapter="文艺传中·李白传", label="史载",
    )
    ScreenPortrayal.objects.create(persona=persona, production="《妖猫传》", year=2017, actor="辛柏青", depiction="狂放")
    return persona
