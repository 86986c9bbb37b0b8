"""Tools inside one reply: the user's own call (command or button) before the first request, the
model's calls (only when the user allowed tools for this message) between rounds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.template.loader import render_to_string

from chat.models import ToolRun
from chat.services import MessageRejected
from chat.tools import registry
from chat.tools.registry import ToolContext

MAX_MODEL_ROUNDS = 2  # model tool rounds per reply; after that the request carries no tools
DEFAULT_ARGUMENTS = {"screen_portrayals": "你在影视作品中是什么样的形象？"}


@dataclass(frozen=True)
class ToolRequest:
    trigger: str  # ToolRun.Trigger: command | button | model
    name: str = ""  # the tool, for a command or a button
    argument: str = ""


def request_from(text: str, *, button: str | None, allow_tools: bool) -> ToolRequest | None:
    """What the user asked for with this message; MessageRejected when the command is unusable."""
    if button:
        if button not in registry.tools():
            raise MessageRejected("没有这个工具。")
        return ToolRequest(ToolRun.Trigger.BUTTON, button, text.strip())
    parsed = registry.parse_command(text)
    if parsed is not None:
        tool, argument = parsed
        argument = argument or DEFAULT_ARGUMENTS.get(tool.name, "")
        if not argument:
            raise MessageRejected(f"请在 /{tool.command} 后写上内容，例如「/{tool.command} {_example(tool.name)}」。")
        return ToolRequest(ToolRun.Trigger.COMMAND, tool.name, argument)
    return ToolRequest(ToolRun.Trigger.MODEL) if allow_tools else None


def _example(name: str) -> str:
    return {"history_search": "安史之乱", "era_check": "你怎么看互联网", "generate_image": "月下独酌的李白",
            "style_adapter": "宋词风", "remember": "我喜欢边塞诗"}.get(name, "……")


def render_card(run: ToolRun) -> str:
    """A tool call's card: the same for a run in progress (unsaved) and one read back with its reply."""
    return render_to_string("chat/_tool_card.html", {"label": run.label, "ok": run.ok, "summary": run.summary,
                                                     "data": run.data})


@dataclass
class ToolSession:
    request: ToolRequest
    context: ToolContext
    runs: list[ToolRun] = field(default_factory=list)  # unsaved until the reply is
    model_rounds: int = 0
    _ids: int = 0

    def tools_for_request(self) -> list[dict] | None:
        """The `tools` of the next request: all of them when the user allowed tools, until the rounds
        run out; a user's own call gets none (its result is already in the messages)."""
        if self.request.trigger == ToolRun.Trigger.MODEL and self.model_rounds < MAX_MODEL_ROUNDS:
            return registry.definitions()
        return None

    def _call_id(self) -> str:
        self._ids += 1
        return f"call_user_{self._ids}"

    def run_user_call(self) -> tuple[list[dict], ToolRun]:
        """The user's command or button: run it now and hand the model the call and its result."""
        tool = registry.tools()[self.request.name]
        raw = json.dumps({tool.argument: self.request.argument}, ensure_ascii=False)
        if self.request.name == "style_adapter" and "改写" in self.request.argument:
            raw = json.dumps({"style": self.request.argument.replace("改写", "").strip() or self.request.argument,
                              "mode": "rewrite"}, ensure_ascii=False)
        call_id = self._call_id()
        run = self._run(tool.name, raw, self.request.trigger)
        return [registry.assistant_call_message([(call_id, tool.name, raw)]),
                registry.tool_message(call_id, run.data)], run

    def run_model_calls(self, calls, text: str) -> tuple[list[dict], list[ToolRun]]:
        """The model's calls of one round: the assistant turn that made them, then each result."""
        self.model_rounds += 1
        messages = [registry.assistant_call_message([(c.id or self._call_id(), c.name, c.arguments) for c in calls], text)]
        runs = []
        for call, spec in zip(calls, messages[0]["tool_calls"]):
            run = self._run(call.name, call.arguments, ToolRun.Trigger.MODEL)
            messages.append(registry.tool_message(spec["id"], run.data))
            runs.append(run)
        return messages, runs

    def _run(self, name: str, raw: str, trigger: str) -> ToolRun:
        tool, args, result = registry.run(name, raw, self.context)
        run = ToolRun(name=name[:40], label=tool.label if tool else "工具", trigger=trigger, arguments=args,
                      ok=result.ok, summary=result.summary[:200], data=result.data)
        self.runs.append(run)
        return run

    def save(self, reply) -> None:
        for run in self.runs:
            run.message = reply
        ToolRun.objects.bulk_create(self.runs)
