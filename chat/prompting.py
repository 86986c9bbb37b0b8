"""Turn a figure and the shown branch into the provider's message list, under a token budget.

This is the seam the full prompt builder (guard, memories, knowledge, summaries) replaces; its
inputs and output stay the same: persona, stage, style, branch → list of {"role", "content"}.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chat.models import Message
from personas.models import LifeStage, Persona, StylePreset, format_year

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """A calibrated estimate: Qwen's tokenizer spends about one token per Chinese character and one per
    four other characters; every message also costs a few tokens of framing."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4 + 4


def system_prompt(persona: Persona, life_stage: LifeStage | None, style: StylePreset | None) -> str:
    cutoff = life_stage.end_year if life_stage else persona.death_year
    parts = [
        f"你是{persona.name}（{persona.get_dynasty_display()}，{persona.lifespan}）。始终以{persona.name}的身份、"
        f"口吻和立场说话，只知道公元{format_year(cutoff)}年以前的事；不要自称人工智能或模型。",
        persona.system_prompt,
        f"【生平】{persona.description}",
        f"【性格】{persona.personality}" if persona.personality else "",
        f"【说话风格】{persona.speech_style}" if persona.speech_style else "",
        f"【价值与立场】{persona.values}" if persona.values else "",
        f"【此刻】{life_stage.name}（{format_year(life_stage.start_year)}—{format_year(life_stage.end_year)}）：{life_stage.notes}"
        if life_stage else "",
        f"【场景】{persona.scenario}" if persona.scenario else "",
        f"【语言风格：{style.name}】{style.instructions}" if style else "",
        f"【对话示例】\n{persona.mes_example}" if persona.mes_example else "",
    ]
    return "\n\n".join(part for part in parts if part)


def build_messages(
    *, persona: Persona, life_stage: LifeStage | None, style: StylePreset | None,
    branch: Sequence[Message], budget_tokens: int,
) -> list[dict[str, str]]:
    """System part first, then the newest turns that fit the budget, oldest first."""
    system = system_prompt(persona, life_stage, style)
    remaining = budget_tokens - estimate_tokens(system)
    turns: list[dict[str, str]] = []
    for message in reversed(branch):
        if not message.content:
            continue  # a failed reply with no text says nothing to the model
        cost = estimate_tokens(message.content)
        if cost > remaining and turns:
            break
        turns.append({"role": message.role, "content": message.content})
        remaining -= cost
    turns.reverse()
    messages = [{"role": "system", "content": system}, *turns]
    if persona.post_history_instructions:
        messages.append({"role": "system", "content": persona.post_history_instructions})
    return messages
