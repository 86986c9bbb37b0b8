"""图像生成: an image job for the conversation (chat/images); the worker draws it, the card follows it."""

from __future__ import annotations

from chat.media.services import ImageRequestRejected, describe_for_tool, request_image
from chat.tools.registry import Tool, ToolContext, ToolResult, UserText, register


def _image(context: ToolContext, args: dict) -> ToolResult:
    try:
        job = request_image(context.user, context.conversation, args["prompt"], context.question)
    except ImageRequestRejected as exc:
        return ToolResult(False, {"error": str(exc)}, str(exc))
    line = describe_for_tool(job)
    data = {"作画": line, "画面": UserText(job.prompt), "job_id": job.pk, "conversation_id": job.conversation_id,
            "提示": "画由画师另行绘制，会单独显示并标注“AI 想象图，非史料”。请以你的口吻简短回应这幅画的题材，"
                    "不要描述你没有见到的画面细节。"}
    return ToolResult(not job.is_final or job.status == "done", data, line)


register(Tool(
    name="generate_image", label="图像生成", command="画",
    description="按用户的描述请画师作一幅画（人物肖像或历史场景），画作会附在对话中。仅在用户要求作画时使用。",
    argument="prompt", argument_description="画面描述，简体中文，如“月下独酌的李白”",
    run=_image,
))
