"""记忆存储: keep a fact or preference of the user's for later conversations (chat/recall)."""

from __future__ import annotations

from chat.models import Memory
from chat.recall.memories import memory_add
from chat.services import MessageRejected
from chat.tools.registry import Tool, ToolContext, ToolResult, UserText, register


def _remember(context: ToolContext, args: dict) -> ToolResult:
    fact = args["fact"]
    try:  # memory_add has the input guard check the fact: an attack dressed as one is refused
        memory, new = memory_add(owner=context.user, persona=context.persona, content=fact, origin=Memory.Origin.TOOL,
                                 source_message=context.question)
    except MessageRejected as exc:
        return ToolResult(False, {"error": str(exc)}, str(exc))
    return ToolResult(True, {"已记住": UserText(memory.content), "新记": new}, f"已记住：{memory.content}")


register(Tool(
    name="remember", label="记忆存储", command="记住",
    description="把用户明确要求记住的偏好或事实存入记忆，日后对话可以想起。仅在用户要求“记住……”时使用。",
    argument="fact", argument_description="要记住的事，简短一句",
    run=_remember,
))
