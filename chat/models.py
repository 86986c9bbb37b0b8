from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from encrypted_model_fields.fields import EncryptedCharField

from personas.models import LifeStage, Persona, StylePreset


def new_canary() -> str:
    """A fresh per-conversation marker for the system part; seeing it in a reply means a leak."""
    return "gy-" + secrets.token_hex(6)


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> ConversationQuerySet:
        return self.filter(owner=user)

    def with_figures(self) -> ConversationQuerySet:
        """The host and a salon's guests in the same fetch (two queries), so `guests` costs none later."""
        return self.select_related("persona").prefetch_related(seats_prefetch())


class Conversation(models.Model):
    class TitleOrigin(models.TextChoices):
        START = "", "开场默认"  # "与李白对话" until the first exchange names it
        AUTO = "auto", "自动"  # the title job (chat/titles.py): the model's, or the first question's
        USER = "user", "用户命名"  # renamed by its owner: nothing writes it again

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="conversations")
    life_stage = models.ForeignKey(LifeStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    style_preset = models.ForeignKey(StylePreset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField("标题", max_length=100, blank=True)
    title_origin = models.CharField("标题来源", max_length=4, choices=TitleOrigin.choices, default=TitleOrigin.START,
                                    blank=True)
    archived = models.BooleanField("已归档", default=False)
    # The leaf of the branch being shown; regenerate/edit/switch only move this pointer.
    active_leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    canary = models.CharField(max_length=32, default=new_canary, editable=False)
    # Rolling summary of older turns (chat/summary.py). It belongs to the branch that holds
    # summary_through; on any other branch it is ignored until rebuilt.
    summary = models.TextField("摘要", blank=True)
    summary_through = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary_updated_at = models.DateTimeField(null=True, blank=True)
    # The last message the automatic memory extraction has read (chat/recall/extract.py).
    memory_through = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # 自动朗读: the owner's switch; on, each new reply is read aloud as it is written (docs/voice.md).
    auto_read = models.BooleanField("自动朗读", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        verbose_name = "对话"
        verbose_name_plural = "对话"
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "archived", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"与{self.persona_id}的对话"

    # A salon (雅集): the conversation's figure is the host, up to MAX_GUESTS others sit with it
    # (docs/salon.md). Read through `with_figures()`, these cost no query.
    @property
    def guests(self) -> list[Persona]:
        return [seat.persona for seat in self.seats.all()]

    @property
    def figures(self) -> list[Persona]:
        """Everyone who speaks here, host first, then the guests in their seats' order."""
        return [self.persona, *self.guests]

    @property
    def names(self) -> str:
        """"李白", "李白与杜甫", "李白、杜甫与苏轼": everyone who speaks here."""
        figures = [figure.name for figure in self.figures]
        return "、".join(figures[:-1]) + f"与{figures[-1]}" if len(figures) > 1 else figures[0]

    @property
    def guest_names(self) -> str:
        return "、".join(guest.name for guest in self.guests)

    @property
    def is_salon(self) -> bool:
        return bool(self.guests)

    def figure(self, persona_id: int | None) -> Persona | None:
        return next((figure for figure in self.figures if figure.pk == persona_id), None)


MAX_GUESTS = 3  # four figures in all


def seats_prefetch() -> models.Prefetch:
    return models.Prefetch("seats", queryset=SalonSeat.objects.select_related("persona").order_by("position"))


class SalonSeat(models.Model):
    """One guest of a salon, in speaking order after the host (chosen when the conversation starts)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="seats")
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+", verbose_name="同场人物")
    position = models.PositiveSmallIntegerField("座次")

    class Meta:
        verbose_name = "同场人物"
        verbose_name_plural = "同场人物"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "persona"], name="one_seat_per_figure"),
            models.UniqueConstraint(fields=["conversation", "position"], name="one_figure_per_seat"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.persona_id}"


# A reply's guard_action that keeps its question out of every later prompt: the attack, or the
# off-role request, is not replayed, summarised, mined for memories, recalled or remembered.
WITHHELD_ACTIONS = frozenset({"refused", "steered"})
# A salon figure who was not addressed and had nothing to add (静听): its row keeps the reply's tokens
# for usage and quotas, and no tree, branch or export shows it.
PASSED = "passed"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "用户"
        ASSISTANT = "assistant", "人物"

    class Status(models.TextChoices):
        COMPLETE = "complete", "完成"
        STREAMING = "streaming", "生成中"
        STOPPED = "stopped", "已停止"
        ERROR = "error", "出错"
        # The process writing it went away mid-reply (crash, kill): the text up to the last checkpoint.
        INTERRUPTED = "interrupted", "已中断"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    # Which figure spoke an assistant message in a scene; null means conversation.persona.
    speaker = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    error_kind = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    # The key a reply was made with, for usage per key (chat/usage.py); kept when the key is deleted.
    credential = models.ForeignKey(
        "accounts.ApiCredential", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the guard decided: a user message's category ("hijack"…), a reply's action
    # ("refused", "replaced", "guided", "steered").
    guard_category = models.CharField(max_length=20, blank=True)
    guard_action = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While a reply streams, its process checkpoints the text and stamps this on the database's
    # clock; a `streaming` row whose stamp is older than the lease lost its process (chat/durable.py).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "消息"
        verbose_name_plural = "消息"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["conversation", "parent"]),
            # A user's tokens since midnight (the quota, before every reply) and usage by day.
            models.Index(fields=["conversation", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:30]}"


def speech_upload_to(speech: MessageSpeech, filename: str) -> str:
    # Never under a public media prefix: audio is served by an owner-checked view (chat/speech/views.py).
    return f"speech/{speech.message_id}/{filename}"


class MessageSpeech(models.Model):
    """The audio of one sentence of a reply, read once and kept until the message goes (docs/voice.md).
    `digest` covers the text, model, voice and speed, so a changed voice or text is read anew."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="speech")
    index = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    audio = models.FileField(upload_to=speech_upload_to)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "朗读音频"
        verbose_name_plural = "朗读音频"
        constraints = [models.UniqueConstraint(fields=["message", "index", "digest"], name="one_audio_per_sentence")]

    def __str__(self) -> str:
        return f"#{self.message_id}·{self.index}"


class OwnedQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(owner=user)


class FigurePreference(models.Model):
    """How one user wants one figure to talk to them; shapes every later reply (prompt builder)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="figure_preferences")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+")
    personality = models.CharField("个性倾向", max_length=200, blank=True)
    knowledge = models.CharField("知识偏好", max_length=200, blank=True)
    language_style = models.CharField("语言风格", max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "人物偏好"
        verbose_name_plural = "人物偏好"
        constraints = [models.UniqueConstraint(fields=["owner", "persona"], name="one_preference_per_figure")]

    def __str__(self) -> str:
        return f"{self.owner_id}×{self.persona_id}"


class UserPersona(models.Model):
    """Who the user says they are: a name and a short self-description the figures know, as quoted
    data (docs/prompting.md). `persona` null: the one every figure sees; a row for a figure overrides
    it field by field."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_personas")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    name = models.CharField("称呼", max_length=30, blank=True)
    description = models.CharField("自我介绍", max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "用户人设"
        verbose_name_plural = "用户人设"
        constraints = [
            models.UniqueConstraint(fields=["owner", "persona"], name="one_user_persona_per_figure"),
            # NULLs are distinct in a unique index: the shared one needs its own.
            models.UniqueConstraint(fields=["owner"], condition=models.Q(persona=None), name="one_shared_user_persona"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}×{self.persona_id or '*'}"


class Memory(models.Model):
    """A fact a figure keeps about its user. `persona` null: the profile every figure shares."""

    class Origin(models.TextChoices):
        ASKED = "asked", "用户要求"  # "记住……" in a message
        ACTION = "action", "记住这句"
        TOOL = "tool", "记忆工具"
        AUTO = "auto", "自动提取"
        MANUAL = "manual", "手动添加"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories")
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    content = models.CharField("内容", max_length=300)
    pinned = models.BooleanField("置顶", default=False)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    # Where it came from; the conversation link survives the message being deleted on its own.
    source_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="memories"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "记忆"
        verbose_name_plural = "记忆"
        ordering = ["-pinned", "-updated_at", "-pk"]
        # Pinned first: recall reads a user's pinned rows of a figure and of the profile every reply.
        indexes = [models.Index(fields=["owner", "pinned", "persona"])]

    def __str__(self) -> str:
        return self.content[:30]


class ToolRun(models.Model):
    """One tool call made for a reply, shown under it as a card."""

    class Trigger(models.TextChoices):
        COMMAND = "command", "指令"
        BUTTON = "button", "按钮"
        MODEL = "model", "模型（用户已允许）"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="tool_runs")
    name = models.CharField(max_length=40)
    label = models.CharField(max_length=40)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    arguments = models.JSONField(default=dict)
    ok = models.BooleanField(default=True)
    summary = models.CharField(max_length=200)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "工具调用"
        verbose_name_plural = "工具调用"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name}: {self.summary}"
def attachment_upload_to(image: MessageImage, filename: str) -> str:
    # Never under a public media prefix: served only by the owner-checked view (chat/vision/views.py).
    return f"attachments/{image.owner_id}/{filename}"


class MessageImage(models.Model):
    """A picture the user shows the figure (docs/vision.md): checked and re-encoded as JPEG on upload,
    pending (no message) until a sent message takes it, deleted with that message."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="images")
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="image")
    image = models.FileField(upload_to=attachment_upload_to)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "消息图片"
        verbose_name_plural = "消息图片"
        indexes = [models.Index(fields=["owner", "message", "created_at"])]

    def __str__(self) -> str:
        return f"{self.width}×{self.height}"


def media_upload_to(job: MediaJob, filename: str) -> str:
    # Never under a public media prefix: files are served by an owner-checked view (chat/media/views.py).
    folder = {"video": "video", "audio": "audio"}.get(job.mime.partition("/")[0], "images")
    return f"{folder}/{job.owner_id}/{filename}"


def image_upload_to(job, filename: str) -> str:
    # Named by migration 0006; new files go through media_upload_to.
    return f"images/{job.owner_id}/{filename}"


class MediaJobQuerySet(models.QuerySet):
    def for_user(self, user) -> MediaJobQuerySet:
        return self.filter(owner=user)


class MediaJob(models.Model):
    """One picture, edit, video clip, song or Midjourney grid and its way through the worker (docs/media.md)."""

    class Kind(models.TextChoices):
        IMAGE = "image", "图片"
        IMAGE_EDIT = "image_edit", "改图"
        VIDEO = "video", "视频"
        MUSIC = "music", "谱曲"
        MIDJOURNEY = "midjourney", "Midjourney"

    class Status(models.TextChoices):
        QUEUED = "queued", "排队中"
        SUBMITTING = "submitting", "提交中"
        GENERATING = "generating", "生成中"
        DONE = "done", "已完成"
        FAILED = "failed", "失败"
        BLOCKED = "blocked", "未通过审核"

    ACTIVE = (Status.QUEUED, Status.SUBMITTING, Status.GENERATING)
    FINAL = (Status.DONE, Status.FAILED, Status.BLOCKED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="media_jobs")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="media_jobs")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.IMAGE)
    source_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The picture an edit, a clip or a Midjourney button starts from (the owner's own job, checked on creation).
    source_job = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The key chosen when the job was made: a provider task only exists under the account that created it.
    credential = models.ForeignKey(
        "accounts.ApiCredential", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt = models.TextField("描述")
    actual_prompt = models.TextField("实际提示词", blank=True)
    negative_prompt = models.TextField("反向提示词", blank=True)
    revised_prompt = models.TextField("服务端改写后的提示词", blank=True)
    size = models.CharField(max_length=20, default="1024*1024")
    # Per kind: duration/resolution/aspect_ratio (video), tags/title (music), action (Midjourney) …
    params = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)  # 0-100 when the provider reports it
    task_id = models.CharField(max_length=100, blank=True)
    error_kind = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    warning = models.CharField(max_length=300, blank=True)
    file = models.FileField(upload_to=media_upload_to, blank=True, max_length=200)
    mime = models.CharField(max_length=40, blank=True)
    # What a finished task left besides the file: Midjourney's buttons, Suno's tracks, Seedance's tokens.
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims by a worker
    submissions = models.PositiveSmallIntegerField(default=0)  # generation requests sent upstream
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The claim's lease: renewed by the worker's heartbeat, read on the database's clock (docs/media.md).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    poll_since = models.DateTimeField(null=True, blank=True)  # the poll deadline counts from here
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MediaJobQuerySet.as_manager()

    class Meta:
        verbose_name = "媒体任务"
        verbose_name_plural = "媒体任务"
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["conversation", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_status_display()}: {self.prompt[:30]}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def media_type(self) -> str:
        """"image", "video" or "audio": what the page shows for a finished job."""
        return self.mime.partition("/")[0] or ("audio" if self.kind == self.Kind.MUSIC else
                                               "video" if self.kind == self.Kind.VIDEO else "image")  # fmt: skip

    @property
    def status_line(self) -> str:
        if self.status == self.Status.GENERATING:
            return WORKING[self.kind]
        return {self.Status.QUEUED: "排队中……", self.Status.SUBMITTING: "正在提交……",
                self.Status.BLOCKED: "未通过审核"}.get(self.status, "生成失败")  # fmt: skip

    @property
    def caption(self) -> str:
        return CAPTIONS[self.media_type]

    @property
    def estimate_label(self) -> str:
        from chat.media.services import video_estimate  # services import this module

        return video_estimate(self.params or {}).label()


WORKING = {"image": "正在作画……", "image_edit": "正在改画……", "video": "正在生成视频……", "music": "正在谱曲……",
           "midjourney": "Midjourney 正在作画……"}  # fmt: skip
# Every file says what it is: an AI's imagining, not a source.
CAPTIONS = {"image": "AI 想象图，非史料", "video": "AI 生成视频，非史料", "audio": "AI 谱曲，非古乐原貌"}


class BackgroundJob(models.Model):
    """Model work no one waits for (the rolling summary, memory extraction, the callback greeting, the title),
    queued by the web process and run by the worker (docs/jobs.md)."""

    class Kind(models.TextChoices):
        SUMMARY = "summary", "滚动摘要"
        EXTRACT = "extract", "记忆提取"
        CALLBACK = "callback", "接续问候"
        TITLE = "title", "对话标题"

    class Status(models.TextChoices):
        QUEUED = "queued", "排队中"
        RUNNING = "running", "进行中"
        DONE = "done", "已完成"
        FAILED = "failed", "失败"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=12, choices=Kind.choices)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="background_jobs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims by a worker
    claimed_by = models.CharField(max_length=64, blank=True)
    # A lease on the database's clock: a running job whose lease lapsed lost its worker and is taken over.
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "后台任务"
        verbose_name_plural = "后台任务"
        ordering = ["created_at", "pk"]
        constraints = [
            # One waiting job of a kind per conversation: it reads the newest state when it runs.
            models.UniqueConstraint(fields=["conversation", "kind"], condition=models.Q(status="queued"),
                                    name="one_queued_job_per_conversation_and_kind"),
        ]
        indexes = [models.Index(fields=["status", "lease_until"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.conversation_id}: {self.get_status_display()}"


def share_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ShareLink(models.Model):
    """A read-only link to one branch, frozen at the leaf shown when it was made (chat/sharing/).

    The link is found by the SHA-256 of its token, so neither a timing difference nor a copy of the
    table gives the token away; the encrypted copy only lets the owner copy the link again."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="share_links")
    leaf = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token = EncryptedCharField(max_length=100, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "分享链接"
        verbose_name_plural = "分享链接"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"分享 #{self.conversation_id}→{self.leaf_id}"


class SubmitSlot(models.Model):
    """Task submissions to one provider account in one second of the database's clock, for the shared
    submit limit without Redis (chat/media/limits.py). `account` is a hash, never the key."""

    account = models.CharField(max_length=32)
    second = models.BigIntegerField()  # Unix time of the window's start
    count = models.PositiveIntegerField(default=0)  # attempts, granted or not

    class Meta:
        verbose_name = "提交计数"
        verbose_name_plural = "提交计数"
        constraints = [
            models.UniqueConstraint(fields=["account", "second"], name="one_submit_slot_per_account_second"),
        ]

    def __str__(self) -> str:
        return f"{self.account} @ {self.second}: {self.count}"
