"""One reply: resolve the key, call the provider, coalesce deltas into frames. A streamed reply's row
is written as it starts, checkpointed while it grows (chat/durable.py) and finished with one UPDATE."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import ApiCredential
from accounts.services import credential_guard, credential_mark_rejected, credential_resolve
from chat import durable, services
from chat.citations import tool_sources
from chat.context import reply_context
from chat.guard import judge
from chat.guard.categories import IN_SCOPE
from chat.guard.input import Verdict
from chat.guard.output import OutputGuard
from chat.guard.policy import STEER
from chat.guard.reply import (
    ANSWERED,
    REPLACED,
    Ending,
    OutputGate,
    output_guard,
    screen,
    second_opinion,
    settle,
    steered_hold,
)
from chat.jobs import queue as jobs
from chat.models import PASSED, BackgroundJob, Conversation, Message, MessageImage, ToolRun
from chat.prompting import (
    Company,
    PromptInputs,
    build_prompt,
    confidential_text,
    estimate_tokens,
    knowledge_cutoff,
    messages_tokens,
    turns_from_messages,
)
from chat.providers.chat import ProviderConfig, TextDelta, ToolCalls, Usage, stream_chat
from chat.providers.errors import INVALID_KEY_CODES, ProviderError
from chat.quota import QuotaExceeded, quota_check
from chat.recall.extract import extraction_due
from chat.recall.memories import preference_text
from chat.recall.recall import Recalled, recall_for
from chat.scenes import is_pass, others_of
from chat.speech.live import Tap
from chat.summary import summary_due, summary_for
from chat.titles import title_due, title_fallback
from chat.tools.registry import ToolContext
from chat.tools.runner import ToolRequest, ToolSession, render_card
from chat.userpersona import user_persona_text
from chat.vision.services import attachment_link, data_url, images_by_message
from guyue.lib.netguard import UnsafeURL, check_public_url
from personas.models import Persona
from personas.relations import relations_among

logger = logging.getLogger(__name__)

FRAME_INTERVAL = 0.05  # at most one delta frame per 50 ms per stream
PASS_HOLD = 8  # a salon figure that may pass: its first characters wait until they are not 「（静听）」
_DONE = object()
_FLUSH = object()
_STOP = object()
_JUDGED = object()  # the parallel judge has answered (or given up)

Send = Callable[[dict], Awaitable[None]]


@dataclass
class ReplyResult:
    status: str = Message.Status.COMPLETE
    error_kind: str = ""
    usage: Usage | None = None
    model: str = ""
    provider: str = ""
    parts: list[str] = field(default_factory=list)  # text the output guard released (shown, or held for the judge)
    ending: Ending | None = None  # the judge or the output guard stopped it: the line that replaces it
    guard_action: str = ""
    error: ProviderError | None = None
    sent_tokens: int = 0  # the prompts sent, estimated: the usage when the provider reports none


def _add_usage(total: Usage | None, more: Usage) -> Usage:
    """Each request of a reply reports its own usage (a tool round is a second request): they add up."""
    if total is None:
        return more
    return Usage(prompt_tokens=total.prompt_tokens + more.prompt_tokens,
                 completion_tokens=total.completion_tokens + more.completion_tokens,
                 total_tokens=total.total_tokens + more.total_tokens)


def _saved_action(action: str) -> str:
    return "" if action == ANSWERED else action  # a plain answer is saved with no guard action


def provider_config(credential: ApiCredential, task: str = "reply", persona: Persona | None = None) -> ProviderConfig:
    """How to call `credential` for `task` (a reply, or background work that may use a cheaper model).
    A figure's own model applies to its replies on site-wide connections only (docs/connections.md)."""
    base_url = credential.effective_base_url()
    model = credential.model_for(task)
    if task == "reply" and persona is not None and persona.chat_model and credential.is_site_wide:
        model = persona.chat_model
    if not credential.is_site_wide:
        check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)  # DNS may have moved since saving
    return ProviderConfig(
        kind=credential.kind,
        base_url=base_url,
        api_key=credential.api_key,
        model=model,
        protocol=credential.chat_protocol,
        connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
        first_byte_timeout=settings.PROVIDER_FIRST_BYTE_TIMEOUT,
        first_content_timeout=settings.PROVIDER_FIRST_CONTENT_TIMEOUT,
        idle_timeout=settings.PROVIDER_IDLE_TIMEOUT,
        total_timeout=settings.PROVIDER_TOTAL_TIMEOUT,
        site_url=settings.SITE_URL,
        guard=credential_guard(credential),  # the connection is checked too, not only the name
    )


@database_sync_to_async
def resolve_config(user, *, quota: bool = False, task: str = "reply") -> ProviderConfig | None:
    if quota:
        quota_check(user)
    credential = credential_resolve(user)
    return provider_config(credential, task) if credential else None


def key_rejected(error: ProviderError) -> bool:
    """A 401 (or the provider's own "invalid key" code) says the key itself is bad, not the request."""
    return error.kind == "auth" and (error.status == 401 or (error.code or "").lower() in INVALID_KEY_CODES)


def output_guard_for(conversation: Conversation, persona: Persona, life_stage, company: Company = ()) -> OutputGuard:
    secret = confidential_text(persona, life_stage, conversation.style_preset, conversation.canary, company)
    return output_guard(persona, canary=conversation.canary, confidential=secret,
                        cutoff_year=knowledge_cutoff(persona, life_stage), holdback=settings.OUTPUT_GUARD_HOLDBACK)


class _Coalescer:
    """At most one delta frame per FRAME_INTERVAL: the first text goes out at once, later text waits
    for the interval to pass. A timer puts _FLUSH on the run's queue (a timer handle per frame, not
    a task per token, which is what `asyncio.wait_for` would cost)."""

    def __init__(self, send: Send, queue: asyncio.Queue):
        self.send, self.queue = send, queue
        self.pending: list[str] = []
        self.last = -FRAME_INTERVAL
        self.timer: asyncio.TimerHandle | None = None

    async def add(self, text: str) -> None:
        self.pending.append(text)
        wait = self.last + FRAME_INTERVAL - time.monotonic()
        if wait <= 0:
            await self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(wait, self.queue.put_nowait, _FLUSH)

    async def flush(self) -> None:
        self.cancel()
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.last = time.monotonic()
            await self.send({"type": "delta", "text": text})

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class ReplyRun:
    """Streams one reply. `stop()` ends it early; the partial text is kept either way."""

    def __init__(self, *, user, conversation: Conversation, parent: Message, branch: list[Message], send: Send,
                 speaker: Persona | None = None, tool_request: ToolRequest | None = None, prefix: str = "",
                 announce: Callable[[Message], Awaitable[None]] | None = None, image: MessageImage | None = None,
                 cue_note: str = "", may_pass: bool = False):
        # `branch` ends with `parent`, where the reply attaches: the user's message, or in a scene the
        # other figure's reply to it. `question` is the user's message being answered either way. A new
        # question arrives unsaved: the reply saves it in its first trip to the database, before any
        # call out, and then `announce`s it (the page shows it before the reply starts).
        self.user, self.conversation, self.parent, self.branch, self.send = user, conversation, parent, branch, send
        self.speaker = speaker or conversation.persona
        self.others = others_of(conversation, self.speaker)
        self.company: Company = ()  # the others with the relations table's rows, read in the first trip
        # A salon turn's site note (docs/salon.md); a figure that was not addressed may pass (静听).
        self.cue_note, self.may_pass, self.passed = cue_note, may_pass, False
        self.life_stage = conversation.life_stage if self.speaker.pk == conversation.persona_id else None
        self.question = next(m for m in reversed(branch) if m.role == Message.Role.USER)
        self.announce = announce
        # A picture the new question shows, linked to it when it is saved (docs/vision.md); `shown` holds
        # the pictures of the branch's user messages, read in the trip before the call.
        self.image, self.shown, self.image_url = image, {}, ""
        self.started = False  # the reply_start frame has gone out
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopped = False
        # 续写: the partial text of an unfinished reply this one continues (and starts with).
        self.prefix = prefix
        self.reply: Message | None = None  # the streamed reply's row, once it exists
        self.tap: Tap | None = None  # what of it reached the page (chat/speech/live.py)
        self.judging: asyncio.Task | None = None  # the model judge running beside the reply
        self.recalled, self.preferences, self.user_persona = Recalled(), "", ""
        self.tools: ToolSession | None = None
        if tool_request is not None:
            last_reply = next((m.content for m in reversed(branch) if m.role == Message.Role.ASSISTANT), "")
            context = ToolContext(user=user, conversation=conversation, persona=self.speaker, question=self.question,
                                  last_reply=last_reply)
            self.tools = ToolSession(tool_request, context)

    def tool_runs(self) -> list[ToolRun]:
        """This reply's tool calls, for its bubble (the same rows the page reads back later)."""
        return self.tools.runs if self.tools is not None else []

    def stop(self) -> None:
        self.stopped = True
        self.queue.put_nowait(_STOP)

    def _question_saved(self) -> None:
        if self.question.pk is None:
            services.user_message_save(conversation=self.conversation, message=self.question)
        if self.image is not None and self.image.message_id is None:
            attachment_link(image=self.image, message=self.question)

    async def _save_question(self) -> None:
        if self.question.pk is None:
            await database_sync_to_async(self._question_saved)()
        await self._started()

    async def _announced(self) -> None:
        """The question is saved: the page shows it (when new)."""
        if self.announce is not None:
            announce, self.announce = self.announce, None
            await announce(self.question)

    async def _started(self) -> None:
        """The question is saved: the page shows it (when new), then the reply's bubble opens."""
        await self._announced()
        if not self.started:
            self.started = True
            start = {"type": "reply_start", "reply_to": self.parent.pk, "speaker": self.speaker.name}
            if self.reply is not None:
                start["id"] = self.reply.pk  # 自动朗读 asks for its sentences while it is written
            await self.send({**start, "text": self.prefix} if self.prefix else start)

    async def run(self) -> Message:
        persona = self.speaker
        earlier = [m.content for m in self.branch if m.role == Message.Role.USER and m is not self.question][-5:]
        try:
            screening = screen(self.question.content, persona, history=earlier, judge_on=judge.enabled())
        except Exception:
            await self._save_question()  # the user's words are kept whatever became of the guard
            raise
        if screening.judge_beside and not screening.policy.answers:
            await self._save_question()  # the judge is a call out: the words are saved first
            screening = await settle(screening, self._ask_judge, settings.GUARD_JUDGE_TIMEOUT)
        verdict, policy = screening.verdict, screening.policy
        # What the input guard made of the question, written in the same trip as the rest.
        flag = verdict.category if verdict.category not in (IN_SCOPE, self.question.guard_category) else ""
        if screening.canned and not self.prefix:  # answered in role by the site itself: no key, nothing leaves
            line = screening.line(persona)
            reply = await self._save(ReplyResult(parts=[line], provider="guard", guard_action=screening.action),
                                     category=verdict.category, flag=flag)
            self.reply = reply  # its id goes out with reply_start (自动朗读 asks for it by id)
            await self._started()
            await self.send({"type": "delta", "text": line})
            return reply
        result = ReplyResult(guard_action=_saved_action(screening.action), parts=[self.prefix] if self.prefix else [])
        try:
            begun = await database_sync_to_async(self._begin)(result, flag)
        except QuotaExceeded:
            await self._announced()  # the question is saved and shown; the refusal is a notice, not a reply
            raise
        if isinstance(begun, Message):  # no usable key: the error reply is saved already
            await self._started()
            return begun
        credential, config = begun
        judged = screening.judge_beside and not self.prefix  # a continuation is not judged again
        if judged:  # asked now, so building the prompt hides a little of the judge's time
            judge_config = dataclasses.replace(config, model=credential.model_for("judge"))
            self.judging = asyncio.create_task(self._judge_in_parallel(judge_config))
        durable.checkpointer().track(self.reply.pk, result.parts)
        try:
            # The rules pass it, with a risk signal: the judge runs while the reply is generated, and
            # the reply's text is held until it clears (docs/guard.md, The model judge).
            guidance = "\n".join(note for note in (policy.note, self.cue_note) if note)
            hold_first = steered_hold(policy, settings.OUTPUT_GUARD_STEERED_HOLD)
            await self._stream(config, result, guidance=guidance, judged=judged, steered=policy.action == STEER,
                               hold_first=max(hold_first, PASS_HOLD) if self.may_pass else hold_first)
        except asyncio.CancelledError:
            result.status = Message.Status.STOPPED  # the process is going away: keep what was written
            await asyncio.shield(self._finish(result, category=""))
            raise
        except Exception:  # noqa: BLE001 - a fault of ours must still leave the reply saved
            logger.exception("reply %s failed", self.reply.pk)
            result.status, result.error_kind = Message.Status.ERROR, "internal"
        await self._started()  # (already, unless the reply failed before its call)
        category = screening.category
        if result.ending is not None:  # the judge or the output guard stopped it: an in-role line replaces it all
            ending = result.ending
            result.parts = [ending.text]
            result.status, result.error_kind, result.guard_action = Message.Status.COMPLETE, "", ending.action
            category = ending.category
            if ending.action != REPLACED:  # the judge's verdict is the message's
                await database_sync_to_async(services.message_flag)(message=self.question, category=category)
        if self.passed:
            result.guard_action = PASSED
        reply = await self._finish(result, category=category)
        if result.error is not None and key_rejected(result.error):
            await database_sync_to_async(credential_mark_rejected)(credential)
        return reply

    def _begin(self, result: ReplyResult, flag: str) -> Message | tuple[ApiCredential, ProviderConfig]:
        """The one trip to the database before the call: the question's guard category, the user's
        quota, the key, what the figure remembers, how the user wants it to talk, and the reply's own
        row (so a crash from here on loses at most a checkpoint). Without a usable key, the error reply,
        saved; over the quota, QuotaExceeded (the question is saved either way)."""
        self._question_saved()
        if flag:
            services.message_flag(message=self.question, category=flag)
        quota_check(self.user)
        self.shown = images_by_message(self.branch)
        # Only the question being answered shows its picture; a scene's second figure hears of it.
        image = self.shown.get(self.question.pk) if self.parent is self.question else None
        try:
            credential = credential_resolve(self.user)
            config = provider_config(credential, "vision" if image else "reply", self.speaker) if credential else None
        except UnsafeURL:
            credential, config, result.error_kind = None, None, "bad_request"
        if config is not None and not config.model:  # a picture, and no vision model on the key: no call
            config, result.error_kind = None, "no_vision"
        if config is None:
            result.status, result.error_kind = Message.Status.ERROR, result.error_kind or "no_key"
            if title_due(self.conversation, self.branch):  # no key: the first question names it, no call
                title_fallback(self.conversation, self.branch)
            return self._save_sync(result, "")
        result.model, result.provider = config.model, config.kind
        if self.others:
            self.company = relations_among(self.speaker, self.others)
        self.image_url = data_url(image) if image else ""
        self.preferences, self.user_persona = self._context()
        self.recalled = recall_for(self.user, self.conversation, self.speaker.pk, self.question.content)
        self.reply = services.reply_begin(
            conversation=self.conversation, parent=self.parent, model=result.model, provider=result.provider,
            speaker=self.speaker if self.others else None, content=self.prefix,
            credential=credential,
        )
        return credential, config

    async def _finish(self, result: ReplyResult, *, category: str) -> Message:
        durable.checkpointer().untrack(self.reply.pk)
        if self.tap is not None:
            self.tap.close()  # from here the saved row is what 朗读 reads
        return await database_sync_to_async(self._finish_sync)(result, category)

    def _finish_sync(self, result: ReplyResult, category: str) -> Message:
        reply = services.reply_finish(
            reply=self.reply, content="".join(result.parts), status=result.status, error_kind=result.error_kind,
            prompt_tokens=result.usage.prompt_tokens if result.usage else None,
            completion_tokens=result.usage.completion_tokens if result.usage else None,
            guard_action=result.guard_action, guard_category=category,
        )
        if self.tools is not None:
            self.tools.save(reply)
        if reply.status == Message.Status.COMPLETE and not self.passed:
            self._queue_background(reply)
        return reply

    def _context(self) -> tuple[str, str]:
        """One statement (chat/context.py): the rolling summary (and whether a title was given) as stored
        now — background jobs in the worker write them, and an open socket's copy of the conversation may
        predate it — and how the user wants this figure to talk and who the user says they are, as the
        prompt's preferences and user-persona text."""
        context = reply_context(self.conversation.pk, self.user.pk, self.speaker.pk)
        if context is None:
            return "", ""
        self.conversation.summary, self.conversation.summary_through_id = context.summary, context.summary_through_id
        self.conversation.title_origin = context.title_origin  # the title job or a rename may have set it
        return preference_text(context.preference), user_persona_text(context.user_persona)

    async def _judge_in_parallel(self, config: ProviderConfig) -> Verdict | None:
        """The judge's verdict (None when it fails or does not answer within GUARD_JUDGE_TIMEOUT, so the
        rules stand); wakes the stream either way."""
        try:
            return await second_opinion(lambda: judge.judge(self.question.content, self.speaker, config),
                                        settings.GUARD_JUDGE_TIMEOUT)
        finally:
            self.queue.put_nowait(_JUDGED)

    async def _ask_judge(self) -> Verdict | None:
        """A second opinion from the model on a borderline refusal, with the user's own key; none for a
        user over the quota (the rules stand, and the reply that follows is refused before its call)."""
        try:
            config = await resolve_config(self.user, quota=True, task="judge")
        except (UnsafeURL, QuotaExceeded):
            return None
        return await judge.judge(self.question.content, self.speaker, config) if config is not None else None

    async def _save(self, result: ReplyResult, *, category: str, flag: str = "") -> Message:
        """A reply that never streamed (a line of the site's own, or no key): written once."""
        return await database_sync_to_async(self._save_sync)(result, category, flag)

    def _save_sync(self, result: ReplyResult, category: str, flag: str = "") -> Message:
        self._question_saved()
        if flag:
            services.message_flag(message=self.question, category=flag)
        reply = services.reply_save(
            conversation=self.conversation, parent=self.parent, content="".join(result.parts),
            status=result.status, error_kind=result.error_kind, model=result.model, provider=result.provider,
            prompt_tokens=result.usage.prompt_tokens if result.usage else None,
            completion_tokens=result.usage.completion_tokens if result.usage else None,
            guard_action=result.guard_action, guard_category=category,
            speaker=self.speaker if self.others else None,
        )
        if self.tools is not None:
            self.tools.save(reply)
        return reply

    def _prompt(self, guidance: str) -> list[dict]:
        conversation = self.conversation
        if self.parent is self.question:
            turns, new_message = self.branch[:-1], self.question.content
        else:  # a scene's second speaker: the question and the first figure's answer are both history
            turns, new_message = self.branch, ""
        return build_prompt(PromptInputs(
            persona=self.speaker, company=self.company, life_stage=self.life_stage,
            style=conversation.style_preset,
            turns=turns_from_messages(turns, figures=conversation.figures, images=self.shown),
            new_message=new_message, summary=summary_for(conversation, self.branch), canary=conversation.canary,
            memories=self.recalled.memories, exchanges=self.recalled.exchanges, preferences=self.preferences,
            user_persona=self.user_persona,
            guidance=guidance, budget_tokens=settings.PROMPT_TOKEN_BUDGET, request_tokens=settings.PROMPT_REQUEST_TOKENS, reply_max_tokens=settings.REPLY_MAX_TOKENS,
            continue_from=self.prefix, image_url=self.image_url,
        )).messages

    def _output_guard(self) -> OutputGuard:
        return output_guard_for(self.conversation, self.speaker, self.life_stage, self.company)

    def _queue_background(self, reply: Message) -> None:
        """Fold older turns into the rolling summary, pick out memories, name the conversation: jobs for
        the worker, queued in the reply's last trip; the reply never waits for them (docs/jobs.md)."""
        branch = [*self.branch, reply]
        model_reads = settings.MEMORY_EXTRACTION and self.user.memory_auto  # the user's extraction switch
        if summary_due(self.conversation, branch):
            jobs.enqueue(BackgroundJob.Kind.SUMMARY, self.conversation.pk)
        if extraction_due(self.conversation, branch, enabled=model_reads):
            jobs.enqueue(BackgroundJob.Kind.EXTRACT, self.conversation.pk)
        if title_due(self.conversation, branch):
            if model_reads:
                jobs.enqueue(BackgroundJob.Kind.TITLE, self.conversation.pk)
            else:  # switched off: the first question is the title, and no model reads it
                title_fallback(self.conversation, branch)

    async def _tool_frames(self, runs: list[ToolRun]) -> None:
        for run in runs:
            html = await sync_to_async(render_card)(run)
            # The entries the reply may now cite, so the page can draw their marks as the text streams.
            sources = await sync_to_async(tool_sources)(run.data, self.speaker)
            await self.send({"type": "tool", "name": run.name, "label": run.label, "ok": run.ok, "html": html,
                             "sources": sources})

    async def _stream(self, config: ProviderConfig, result: ReplyResult, *, guidance: str, judged: bool = False,
                      hold_first: int = 0, steered: bool = False) -> None:
        # The rules pass it with a risk signal: its text is held until the judge beside it clears it.
        gate = OutputGate(self._output_guard(), hold=judged, prefix=self.prefix, parts=result.parts,
                          hold_first=hold_first, steered=steered)
        # What reaches the page may be read aloud: tapped before reply_start, which 朗读 answers by asking.
        shown = self.tap = Tap(self.reply.pk, self.prefix, self.send)
        messages = self._prompt(guidance)
        if self.tools is not None and self.tools.request.trigger != ToolRun.Trigger.MODEL:
            await self._started()
            added, run = await database_sync_to_async(self.tools.run_user_call)()
            messages += added
            await self._tool_frames([run])
        pumps = [self._request(config, messages, result)]
        await self._started()  # the question and the reply's bubble reach the page while the request leaves
        frames = _Coalescer(shown.send, self.queue)
        calls, round_text, streamed = None, [], []
        try:
            while not gate.stopped:
                item = await self.queue.get()
                if item is _JUDGED:
                    await self._show(frames, gate.judged(self.judging.result()))
                elif isinstance(item, ToolCalls):
                    calls = item.calls
                elif item is _DONE and calls and self.tools is not None and self.tools.tools_for_request():
                    # The model asked for tools the user allowed: run them, then ask again with the results.
                    added, runs = await database_sync_to_async(self.tools.run_model_calls)(calls, "".join(round_text))
                    messages += added
                    await self._tool_frames(runs)
                    calls, round_text = None, []
                    pumps.append(self._request(config, messages, result))
                elif isinstance(item, TextDelta):
                    round_text.append(item.text)
                    streamed.append(item.text)
                    await self._show(frames, gate.feed(item.text))  # a short window is held so no leak shows
                elif item is _FLUSH:
                    await frames.flush()
                elif isinstance(item, Usage):
                    result.usage = _add_usage(result.usage, item)
                elif item is _STOP:
                    result.status = Message.Status.STOPPED
                    break
                elif item is _DONE:
                    break
                elif isinstance(item, ProviderError):
                    result.status, result.error_kind, result.error = Message.Status.ERROR, item.kind, item
                    break
                elif isinstance(item, BaseException):
                    logger.error("reply failed", exc_info=item)
                    result.status, result.error_kind = Message.Status.ERROR, "internal"
                    break
            frames.pending.append(gate.finish())  # what was held back, if the whole text is clean (also when stopped)
            if gate.holding and not gate.stopped:  # the reply ended before the judge did: its verdict decides
                frames.pending.append(gate.judged(await self.judging))
            result.ending = gate.ending(self.speaker)
            if self.may_pass and result.ending is None and result.status == Message.Status.COMPLETE \
                    and is_pass("".join(result.parts)):
                frames.pending.clear()  # it had nothing to add: nothing of it is shown
                self.passed = True
            if result.ending is None:
                await frames.flush()
        finally:
            # Nothing of a stopped reply is shown; cancelling the pumps hangs up on the provider.
            if self.judging is not None and not self.judging.done():
                self.judging.cancel()
            frames.cancel()
            # Cancelling the pump closes the httpx response, which releases (or drops) the connection.
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if result.usage is None and streamed:
                # No usage reported (stopped, broken off, or a provider that never sends it): the site's own
                # estimate counts instead, so stopping a reply before its end does not escape the quota.
                completion = estimate_tokens("".join(streamed))
                result.usage = Usage(prompt_tokens=result.sent_tokens, completion_tokens=completion,
                                     total_tokens=result.sent_tokens + completion)

    def _request(self, config: ProviderConfig, messages: list[dict], result: ReplyResult) -> asyncio.Task:
        # A tool round's messages carry calls and results (content may be None): only their text counts.
        result.sent_tokens += messages_tokens([{"content": m.get("content") or ""} for m in messages])
        return asyncio.create_task(self._pump(config, messages))

    @staticmethod
    async def _show(frames: _Coalescer, text: str) -> None:
        if text:
            await frames.add(text)

    async def _pump(self, config: ProviderConfig, messages: list[dict]) -> None:
        tools = self.tools.tools_for_request() if self.tools is not None else None
        messages = list(messages)  # the next round appends to the caller's list
        try:
            async for event in stream_chat(config, messages, tools=tools, max_tokens=settings.REPLY_MAX_TOKENS):
                await self.queue.put(event)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer loop, which records it
            await self.queue.put(exc)
            return
        await self.queue.put(_DONE)
