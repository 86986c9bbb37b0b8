"""The chat websocket (protocol in docs/websocket.md). Thin: checks, then services and ReplyRun."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.cache import cache

from chat import durable, games, services
from chat.bubbles import can_continue, message_payload
from chat.citations import citations_for
from chat.frames import Frame, parse_frame
from chat.jobs import queue as jobs
from chat.models import BackgroundJob, Conversation, Message
from chat.notify import conversation_group
from chat.recall.extract import extraction_due
from chat.recall.memories import remember_from_message, remember_request
from chat.scenes import PASS_LINE, Cue, absent_note, plan_turn, speaker_of
from chat.selectors import branch_messages, conversation_tree
from chat.streaming import ReplyRun
from chat.tools.runner import ToolRequest, request_from
from chat.tree import Tree
from chat.vision.services import attachment_link, pending_attachment
from guyue import ratelimit
from personas.models import Persona

logger = logging.getLogger(__name__)
INTERNAL_MESSAGE = "本站内部出错，请求没有完成，请稍后再试。"


@database_sync_to_async
def _load(user, conversation_id: int) -> tuple[Conversation, Tree, list[Message]] | None:
    conversation = (
        Conversation.objects.for_user(user).with_figures().select_related("life_stage", "style_preset")
        .filter(pk=conversation_id).first()
    )
    if conversation is None:
        return None
    durable.sweep_once()  # a restarted process first marks the replies its predecessors left streaming
    tree = conversation_tree(conversation)
    branch = branch_messages(conversation, tree)
    durable.recover(branch)
    return conversation, tree, branch


# Frames of a reply that the owner's other sockets on the same conversation (other tabs, in any process)
# receive as well, through the conversation's channel-layer group; refusals stay with the socket that asked.
SHARED_FRAMES = frozenset({"message", "reply_start", "delta", "tool", "reply_end", "reply_pass"})

# The reply lock lives this long unless the reply's task refreshes it, so a process that dies
# mid-reply (SIGKILL) leaves the conversation busy for at most this long, even with Redis.
LOCK_SECONDS = 30
LOCK_REFRESH_SECONDS = 10


def message_payload_with_sources(message: Message, siblings: list[int], persona, tool_runs, image=None,
                                 note: str = "") -> dict:
    # One trip: the entries the reply cites (no query when it cites none) and its bubble.
    return message_payload(message, siblings=siblings, persona=persona, tool_runs=tool_runs, image=image,
                           citations=citations_for([message.content]), note=note)


@database_sync_to_async
def _absent_names(conversation: Conversation) -> list[str]:
    here = {figure.pk for figure in conversation.figures}
    return [name for pk, name in Persona.objects.published().values_list("pk", "name") if pk not in here]


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # The server is shutting down (daphne cancels every connection on SIGTERM): keep the
            # reply being written, saved as stopped, before letting go.
            await self._stop_and_wait()
            raise

    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        loaded = await _load(self.user, self.conversation_id) if self.user.is_authenticated else None
        if loaded is None:
            await self.close()  # before accept(): the handshake is refused, nothing leaks
            return
        self.conversation, self.tree, self.branch = loaded
        self.stale = False
        self.send_frames = True
        self.run: ReplyRun | None = None
        self.task: asyncio.Task | None = None
        self.lock_pending = False  # taken for a frame whose reply has not started yet
        self.image = None  # the picture the last send showed (docs/vision.md)
        # A salon: the names of the site's other figures, so a message to one of them is answered with a note.
        self.absent_names = await _absent_names(self.conversation) if self.conversation.is_salon else []
        await self.channel_layer.group_add(conversation_group(self.conversation_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "conversation", None) is None:
            return
        await self.channel_layer.group_discard(conversation_group(self.conversation_id), self.channel_name)
        await self._stop_and_wait()
        await self._extract_on_leave()

    async def _stop_and_wait(self) -> None:
        task = getattr(self, "task", None)
        if task is not None and not task.done():
            self.send_frames = False
            self.run.stop()
            await asyncio.wait([task], timeout=10)  # the partial reply is saved as stopped

    async def _extract_on_leave(self) -> None:
        """Leaving a conversation with new things said is when its memories are picked out: one row
        queued for the worker, so many sockets closing at once cost the web process one write each."""
        enabled = settings.MEMORY_EXTRACTION and settings.MEMORY_EXTRACT_ON_LEAVE and self.user.memory_auto
        if extraction_due(self.conversation, self.branch, enabled=enabled, leaving=True):
            await database_sync_to_async(jobs.enqueue)(BackgroundJob.Kind.EXTRACT, self.conversation_id)

    async def dispatch(self, message: dict) -> None:
        if message["type"] == "reply.frame":
            # No database in it: skip the thread hop channels spends on close_old_connections for every
            # message (a reply's own frames come back to its socket through the group and are dropped).
            await self.reply_frame(message)
            return
        await super().dispatch(message)

    async def conversation_changed(self, event: dict) -> None:
        self.stale = True

    async def conversation_titled(self, event: dict) -> None:
        await self._deliver({"type": "title", "title": event["title"]})

    async def media_job(self, event: dict) -> None:
        # Ids and a status only: the page asks for the job's partial through the owner-checked view.
        await self._deliver({"type": "media_job", "job": int(event["job"]), "status": str(event["status"])})

    async def reply_frame(self, event: dict) -> None:
        """A reply another socket of this conversation is streaming: follow it (never our own, never
        another owner's)."""
        if event["sender"] == self.channel_name or event["owner"] != self.user.pk:
            return
        if event["frame"]["type"] in ("message", "reply_end"):
            self.stale = True  # the tree grew elsewhere: reload before acting on it
        await self._deliver(event["frame"])

    # --- frames in -------------------------------------------------------------------------------
    async def receive_json(self, content, **kwargs) -> None:
        try:
            frame = parse_frame(content)  # by shape, before anything takes the reply lock
        except services.MessageRejected as exc:
            await self._refuse(exc.code, str(exc))
            return
        handler = {"send": self._send, "regenerate": self._regenerate, "edit": self._edit,
                   "continue": self._continue, "stop": self._stop}[frame.type]
        try:
            await handler(frame)
        except services.MessageRejected as exc:
            await self._refuse(exc.code, str(exc))
        except Exception:
            logger.exception("frame %s in conversation %s failed", frame.type, self.conversation_id)
            await self._refuse("internal", INTERNAL_MESSAGE)
        finally:
            if self.lock_pending:  # taken, but no reply started that would release it
                self.lock_pending = False
                await sync_to_async(cache.delete)(self._lock_key)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:  # not JSON
            await self._refuse("bad_request", "无法识别的请求。")

    def _replying(self) -> bool:
        return self.run is not None and self.task is not None and not self.task.done()

    async def _stop(self, frame: Frame) -> None:
        if self._replying():
            self.run.stop()
            return
        # A tab that only follows a reply stops it where it runs: the socket that sent it, in any process.
        event = {"type": "reply.stop", "owner": self.user.pk, "sender": self.channel_name}
        await self.channel_layer.group_send(conversation_group(self.conversation_id), event)

    async def reply_stop(self, event: dict) -> None:
        """Another tab of the owner asked to stop: the reply running here stops (saved as stopped)."""
        if event["sender"] == self.channel_name or event["owner"] != self.user.pk:
            return
        if self._replying():
            self.run.stop()

    async def _send(self, frame: Frame) -> None:
        text = frame.text
        # Pure parsing, no queries: no thread hop on the send path.
        tool_request = request_from(text, button=frame.tool, allow_tools=frame.tools)
        # A picture: the owner's own, chosen here and not yet sent (any other id is not found, nothing sent).
        self.image = None
        if frame.image_id is not None:
            self.image = await database_sync_to_async(pending_attachment)(self.user, self.conversation, frame.image_id)
            if self.image is None:
                await self._refuse("not_found", "找不到这幅图，请重新选择图片。")
                return
        if not await self._admit():
            return
        await self._refresh(frame.parent_id)
        parent = self.branch[-1] if self.branch else None
        cues = self._cues(frame.to, text, self.branch)
        if isinstance(cues, str):  # the user spoke to a figure who is not in the salon: the host says so
            await self._answer_absent(text, parent, cues)
            return
        speakers = cues
        if remember_request(text) is None:
            # Checked here, saved by the reply in its one trip to the database before the call.
            question = services.user_message_new(conversation=self.conversation, text=text, parent=parent)
            await self._start(question, branch=[*self.branch, question], announce=True, speakers=speakers,
                              tool_request=tool_request, image=self.image)
            return
        # A "记住……" message is saved first, for the memory it leaves.
        user_message = await database_sync_to_async(self._save_user_message)(text, parent)
        try:
            memory = await database_sync_to_async(remember_from_message)(
                owner=self.user, conversation=self.conversation, message=user_message
            )
        except services.MessageRejected as exc:  # not kept (an attack, too long); the figure still answers
            await self._emit({"type": "memory_refused", "message": str(exc)})
        else:
            await self._emit({"type": "memory_saved", "memory_id": memory.pk, "content": memory.content})
        await self._start(user_message, branch=[*self.branch, user_message], announce=True, speakers=speakers,
                          tool_request=tool_request)

    def _cues(self, to, text: str, branch: list[Message]) -> list[Cue] | str:
        """Who speaks after this message, put after `branch`, in order (docs/salon.md); the absent figure's
        name when the user addressed one. In a verse game every figure takes its turn, and the site
        checks the user's own line first (MessageRejected with the rule it breaks)."""
        game, _ = games.game_of(branch)
        try:
            started = games.start_command(text)
        except games.GameRuleBroken as exc:
            raise services.MessageRejected(str(exc), "game_rule") from None
        if started is None and game is not None and not games.is_end(text):
            reason = games.broken(game, text)
            if reason:
                raise services.MessageRejected(f"{reason}（发送 /结束 可结束本局。）", "game_rule")
        max_turns = settings.SALON_MAX_TURNS
        if started is not None or (game is not None and not games.is_end(text)):
            return [Cue(figure) for figure in self.conversation.figures][:max_turns]
        plan = plan_turn(self.conversation, to, text, max_turns=max_turns, absent_names=self.absent_names)
        return plan.absent or plan.cues

    async def _answer_absent(self, text: str, parent: Message | None, absent: str) -> None:
        note = absent_note(absent, self.conversation.figures)
        question, reply = await database_sync_to_async(self._save_absent)(text, parent, note)
        await self._announce(question)
        self._add_to_tree(reply)
        self.branch = [*self.branch, question, reply]
        await self._emit({"type": "message", "message": await self._payload(reply)})

    def _save_absent(self, text: str, parent: Message | None, note: str) -> tuple[Message, Message]:
        question = services.message_add_user(conversation=self.conversation, text=text, parent=parent)
        reply = services.reply_save(conversation=self.conversation, parent=question, content=note,
                                    status=Message.Status.COMPLETE, provider="salon", speaker=self.conversation.persona)
        return question, reply

    def _save_user_message(self, text: str, parent: Message | None) -> Message:
        message = services.message_add_user(conversation=self.conversation, text=text, parent=parent)
        if self.image is not None:
            attachment_link(image=self.image, message=message)
        return message

    async def _edit(self, frame: Frame) -> None:
        original = await self._message(frame.message_id, Message.Role.USER)
        if original is None or not await self._admit():
            return
        earlier = await self._messages(self.tree.path_to(original.parent_id))
        cues = self._cues(frame.to, frame.text, earlier)  # a game's rules, before anything is saved
        if isinstance(cues, str):  # spoken to someone absent: in an edit the host simply answers
            cues = [Cue(self.conversation.persona)]
        edited = await database_sync_to_async(services.message_edit)(
            conversation=self.conversation, original=original, text=frame.text
        )
        await self._start(edited, branch=[*earlier, edited], announce=True, speakers=cues)

    async def _regenerate(self, frame: Frame) -> None:
        reply = await self._message(frame.message_id, Message.Role.ASSISTANT)
        if reply is None or reply.parent_id is None or not await self._admit():
            return
        path = self.tree.path_to(reply.parent_id)
        branch = await self._messages(path)
        question = next((m for m in reversed(branch) if m.role == Message.Role.USER), None)
        tool_request = request_from(question.content, button=None, allow_tools=False) if question else None
        # Only the figure who spoke that reply speaks again; a slash command runs again.
        await self._start(branch[-1], branch=branch, announce=False,
                          speakers=[Cue(speaker_of(reply, self.conversation))], tool_request=tool_request)

    async def _continue(self, frame: Frame) -> None:
        """续写: a new version of an unfinished reply that starts with its text and carries on."""
        reply = await self._message(frame.message_id, Message.Role.ASSISTANT)
        if reply is None:
            return
        await database_sync_to_async(durable.recover)([reply])
        if reply.status == Message.Status.STREAMING:
            await self._refuse("busy", "这条回答还在生成中，请稍候。")
            return
        if not can_continue(reply):
            await self._refuse("bad_request", "这条回答不需要续写。")
            return
        if not await self._admit():
            return
        branch = await self._messages(self.tree.path_to(reply.parent_id))
        await self._start(branch[-1], branch=branch, announce=False,
                          speakers=[Cue(speaker_of(reply, self.conversation))], prefix=reply.content)

    # --- helpers ---------------------------------------------------------------------------------
    async def _admit(self) -> bool:
        """One reply at a time per conversation (across tabs and processes), and a per-user pace."""
        if self.task is not None and not self.task.done():
            await self._refuse("busy", "上一条回答还在生成，请稍候或先停止它。")
            return False
        refused = await sync_to_async(self._pace_and_lock)()  # one thread hop for both
        if refused == "rate_limited":
            await self._refuse("rate_limited", f"发送太频繁了：每分钟最多 {settings.SEND_LIMIT_PER_MINUTE} 条，请稍后再试。")
            return False
        if refused == "busy":
            await self._refuse("busy", "这段对话正在另一个窗口中生成回答，请稍候。")
            return False
        self.lock_pending = True
        return True

    def _pace_and_lock(self) -> str:
        send_key = ratelimit.cache_key("send", str(self.user.pk))
        if not ratelimit.hit(send_key, limit=settings.SEND_LIMIT_PER_MINUTE, window=60):
            return "rate_limited"
        if not cache.add(self._lock_key, 1, LOCK_SECONDS):
            return "busy"
        return ""

    @property
    def _lock_key(self) -> str:
        return f"reply-lock:{self.conversation_id}"

    async def _refresh(self, parent_id) -> None:
        """Reload when HTTP changed the conversation, or when the page shows another leaf than ours."""
        leaf_id = self.branch[-1].pk if self.branch else None
        if self.stale or (parent_id is not None and parent_id != leaf_id):
            self.conversation, self.tree, self.branch = await _load(self.user, self.conversation_id)
            self.stale = False
        if parent_id is not None and self.branch and parent_id != self.branch[-1].pk and parent_id in self.tree.parent:
            self.branch = await self._messages(self.tree.path_to(parent_id))

    async def _message(self, message_id, role: str) -> Message | None:
        if self.stale:
            await self._refresh(None)
        if not isinstance(message_id, int) or message_id not in self.tree.parent:
            await self._refuse("not_found", "找不到这条消息。")
            return None
        message = (await self._messages([message_id]))[0]
        if message.role != role:
            await self._refuse("bad_request", "这条消息不能这样操作。")
            return None
        return message

    @database_sync_to_async
    def _messages(self, ids: list[int]) -> list[Message]:
        by_id = Message.objects.filter(conversation_id=self.conversation_id).in_bulk(ids)
        return [by_id[pk] for pk in ids]

    async def _start(self, parent: Message, *, branch: list[Message], announce: bool, speakers: list,
                     tool_request: ToolRequest | None = None, prefix: str = "", image=None) -> None:
        self.send_frames = True
        if parent.pk is None:  # a new question: the reply saves it, then the page is shown it
            later = self._announce
        else:
            later = None
            if announce:
                await self._announce(parent)
            else:
                self._add_to_tree(parent)
        # Tools serve the first figure's answer.
        self.run = self._run_for(branch, speakers[0], tool_request, prefix=prefix, announce=later, image=image,
                                 addressed=speakers)
        self.task = asyncio.create_task(self._reply(branch, speakers))
        self.lock_pending = False  # the task releases it now

    async def _announce(self, message: Message) -> None:
        """A new user message: the page shows it before the reply starts."""
        self._add_to_tree(message)
        await self._emit({"type": "message", "message": await self._payload(message)})

    def _run_for(self, branch: list[Message], cue: Cue, tool_request: ToolRequest | None = None,
                 prefix: str = "", announce=None, image=None, addressed=()) -> ReplyRun:
        return ReplyRun(user=self.user, conversation=self.conversation, parent=branch[-1], branch=branch,
                        send=self._emit, speaker=cue.persona, tool_request=tool_request, prefix=prefix,
                        announce=announce, image=image, cue_note=self._cue_note(branch, cue, addressed),
                        may_pass=cue.optional)

    def _cue_note(self, branch: list[Message], cue: Cue, addressed) -> str:
        """The site's note for this speaker's turn: a game's rule, or, for a figure not addressed, that
        it may keep silent (curator text only: names of figures, never the user's words)."""
        game, _ = games.game_of(branch)
        if game is not None:
            return games.cue_note(game, cue.persona.name)
        if not cue.optional:
            return ""
        asked = "、".join(other.persona.name for other in addressed if not other.optional)
        return (f"用户这次问的是{asked}。你若有值得补充或不同的看法，就用你自己的口吻简短说出，不要重复别人说过的话；"
                f"若无话可补，只回答「{PASS_LINE}」四个字。")

    async def _hold_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_REFRESH_SECONDS)
            await sync_to_async(cache.touch)(self._lock_key, LOCK_SECONDS)

    async def _reply(self, branch: list[Message], speakers: list[Cue]) -> None:
        """Each figure of the turn speaks in order, hearing those before it (docs/salon.md)."""
        holder = asyncio.create_task(self._hold_lock())
        try:
            for index, cue in enumerate(speakers):
                if index:
                    self.run = self._run_for(branch, cue, addressed=speakers)
                reply = await self.run.run()
                if self.run.passed:  # nothing to add: its bubble goes, the next figure hears the same
                    await self._emit({"type": "reply_pass", "id": reply.pk, "speaker": cue.persona.name})
                    continue
                self._add_to_tree(reply)
                branch = self.branch = [*branch, reply]
                _, notes = games.game_of(branch)
                await self._emit({"type": "reply_end", "message": await self._payload(reply, self.run.tool_runs(),
                                                                                     note=notes.get(reply.pk, ""))})
                if self.run.stopped or reply.status != Message.Status.COMPLETE:
                    break  # a stop, or a failure, ends the whole turn
        except services.MessageRejected as exc:  # over the quota: no call was made, the question is kept
            await self._refuse(exc.code, str(exc))
        except Exception:
            logger.exception("reply for conversation %s failed", self.conversation_id)
            await self._refuse("internal", INTERNAL_MESSAGE)  # a fault of ours, before a reply could be saved
        finally:
            holder.cancel()
            await sync_to_async(cache.delete)(self._lock_key)

    def _add_to_tree(self, message: Message) -> None:
        if message.pk not in self.tree.parent:
            self.tree.parent[message.pk] = message.parent_id
            self.tree.children[message.parent_id].append(message.pk)

    async def _payload(self, message: Message, tool_runs=(), note: str = "") -> dict:
        siblings = self.tree.siblings(message.pk)
        persona = speaker_of(message, self.conversation)
        image = getattr(self, "image", None)  # the picture this socket's last send showed, once linked
        image = image if image is not None and image.message_id == message.pk else None
        return await sync_to_async(message_payload_with_sources)(message, siblings, persona, tool_runs, image, note)

    async def _emit(self, frame: dict) -> None:
        if frame["type"] not in SHARED_FRAMES:
            await self._deliver(frame)
        elif frame["type"] == "reply_end":
            # Shared first: once the page has it, the turn is over (the next send must not find it busy).
            await self._share(frame)
            await self._deliver(frame)
        else:
            await self._deliver(frame)
            await self._share(frame)

    async def _deliver(self, frame: dict) -> None:
        if not getattr(self, "send_frames", True):
            return
        try:
            await self.send_json(frame)
        except Exception:  # noqa: BLE001 - a closed socket must never stop a reply from being saved
            self.send_frames = False
            logger.info("conversation %s: the socket went away mid-reply", self.conversation_id)

    async def _share(self, frame: dict) -> None:
        event = {"type": "reply.frame", "frame": frame, "owner": self.user.pk, "sender": self.channel_name}
        try:
            await self.channel_layer.group_send(conversation_group(self.conversation_id), event)
        except Exception:  # noqa: BLE001 - other tabs missing a frame must never stop the reply
            logger.warning("conversation %s: a reply frame did not reach the other sockets", self.conversation_id,
                           exc_info=True)

    async def _refuse(self, code: str, message: str) -> None:
        await self._emit({"type": "error", "code": code, "message": message})
