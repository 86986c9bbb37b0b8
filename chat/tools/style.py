"""语言风格适配: answer (or rewrite the last reply) in a chosen period style from the presets."""

from __future__ import annotations

from chat.guard.normalize import to_simplified
from chat.tools.registry import Tool, ToolContext, ToolResult, UserText, register
from personas.models import StylePreset


def find_preset(name: str) -> StylePreset | None:
    wanted = to_simplified(name.strip().lower())
    presets = list(StylePreset.objects.all())
    for preset in presets:
        if wanted in (preset.slug.lower(), preset.name):
            return preset
    return next((p for p in presets if p.name in wanted or (wanted and wanted in p.name)), None)


def _style(context: ToolContext, args: dict) -> ToolResult:
    preset = find_preset(args["style"])
    names = "、".join(StylePreset.objects.values_list("name", flat=True))
    if preset is None:
        return ToolResult(False, {"error": "没有这种语言风格", "所求风格": UserText(args["style"]), "可选风格": names},
                          f"没有「{args['style']}」这种风格")
    rewrite = args.get("mode") == "rewrite" and context.last_reply
    data = {"风格": preset.name, "写作要求": preset.instructions, "示例": list(preset.examples)[:3]}
    if rewrite:
        data["要改写的上一段回答"] = context.last_reply[:1500]
        data["提示"] = "请把上一段回答按此风格重写一遍，意思不变，仍以你的口吻。"
        summary = f"以「{preset.name}」改写上一段回答"
    else:
        data["提示"] = "这一次回答请按此风格来写，仍以你的口吻、守你的时代。"
        summary = f"这一次以「{preset.name}」作答"
    return ToolResult(True, data, summary)


register(Tool(
    name="style_adapter", label="语言风格适配", command="风格",
    description="取得一种语言风格（如唐风文言、宋词风、元曲风、浅白文言、白话）的写作要求与示例，用于这一次回答，或改写上一段回答。仅在用户要求换风格时使用。",
    argument="style", argument_description="风格名称，如“唐风文言”",
    extra={"mode": {"type": "string", "enum": ["answer", "rewrite"],
                    "description": "answer：这一次回答用此风格；rewrite：改写上一段回答"}},
    run=_style,
))
