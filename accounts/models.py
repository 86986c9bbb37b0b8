from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from encrypted_model_fields.fields import EncryptedCharField


class User(AbstractUser):
    display_name = models.CharField("昵称", max_length=40, blank=True)
    # Off: no automatic memory extraction call is ever made for this user.
    memory_auto = models.BooleanField("自动记住对话中的要点", default=True)

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"

    def __str__(self) -> str:
        return self.display_name or self.username


class CredentialKind(models.TextChoices):
    DASHSCOPE = "dashscope", "阿里云百炼（DashScope）"
    OPENROUTER = "openrouter", "OpenRouter"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI 兼容接口"


class ChatProtocol(models.TextChoices):
    OPENAI = "openai", "OpenAI 兼容"
    ANTHROPIC = "anthropic", "Anthropic Messages"
    GEMINI = "gemini", "Gemini generateContent"


class CredentialRegion(models.TextChoices):
    BEIJING = "beijing", "中国内地（北京）"
    SINGAPORE = "singapore", "国际（新加坡）"


class CredentialStatus(models.TextChoices):
    UNCHECKED = "unchecked", "未验证"
    VALID = "valid", "有效"
    INVALID = "invalid", "密钥无效"
    WRONG_REGION = "wrong_region", "地域不匹配"
    UNREACHABLE = "unreachable", "无法连接"
    ERROR = "error", "验证出错"


DEFAULT_TEXT_MODEL = {
    CredentialKind.DASHSCOPE: "qwen-plus",
    CredentialKind.OPENROUTER: "qwen/qwen-plus",
    CredentialKind.OPENAI_COMPATIBLE: "qwen-plus",
}
DEFAULT_IMAGE_MODEL = {
    CredentialKind.DASHSCOPE: "wan2.2-t2i-flash",
    CredentialKind.OPENROUTER: "google/gemini-2.5-flash-image",
    CredentialKind.OPENAI_COMPATIBLE: "nano-banana",
}


# Work done for the site rather than typed to a figure: a cheaper model may serve it.
BACKGROUND_TASKS = ("summary", "title", "extract", "judge", "callback")
CAPABILITY_FIELDS = {
    "vision": "vision_model", "speech": "speech_model", "transcription": "transcription_model",
    "rerank": "rerank_model", "edit": "edit_model", "video": "video_model", "music": "music_model",
    "midjourney": "midjourney_model",
}


def mask_key(key: str) -> str:
    """`sk-…a1b2`: enough to recognise a key, never enough to use it."""
    prefix = ""
    for candidate in ("sk-or-", "sk-"):
        if key.startswith(candidate):
            prefix = candidate
            break
    return f"{prefix}…{key[-4:]}"


class ApiCredential(models.Model):
    # No owner means a site-wide credential, managed by curators in the admin.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials"
    )
    kind = models.CharField("平台", max_length=20, choices=CredentialKind.choices, default=CredentialKind.DASHSCOPE)
    label = models.CharField("名称", max_length=60)
    region = models.CharField(
        "地域", max_length=20, choices=CredentialRegion.choices, default=CredentialRegion.BEIJING,
        help_text="仅百炼使用；密钥与地域绑定",
    )
    base_url = models.URLField("接口地址", max_length=300, blank=True, help_text="留空则使用平台默认地址")
    api_key = EncryptedCharField("密钥", max_length=500)
    key_hint = models.CharField("密钥（已遮盖）", max_length=40, editable=False)
    # Capabilities (docs/connections.md): chat and images always, with the preset's defaults; every
    # other one is offered only when its model is named.
    chat_protocol = models.CharField("对话协议", max_length=20, choices=ChatProtocol.choices,
                                     default=ChatProtocol.OPENAI)
    text_model = models.CharField("文本模型", max_length=100, blank=True, help_text="回复所用的模型；留空用平台默认")
    task_model = models.CharField("辅助模型", max_length=100, blank=True,
                                  help_text="摘要、标题、记忆提取与审查所用；留空则与文本模型相同")
    image_model = models.CharField("图像模型", max_length=100, blank=True)
    vision_model = models.CharField("识图模型", max_length=100, blank=True, help_text="能读图片的对话模型；留空表示不提供")
    speech_model = models.CharField("朗读模型", max_length=100, blank=True, help_text="为回复朗读配音的模型；留空表示不提供")
    transcription_model = models.CharField("听写模型", max_length=100, blank=True,
                                           help_text="把语音转成文字的模型；留空表示不提供")
    rerank_model = models.CharField("重排序模型", max_length=100, blank=True, help_text="为史料检索重新排序的模型；留空表示不提供")
    # The media studio (docs/media.md, Back-ends): "platform:<name>" means the task platform's API.
    edit_model = models.CharField("改图模型", max_length=100, blank=True,
                                  help_text="按描述修改图片、保持人物相貌的模型，如 nano-banana；留空表示不提供")
    video_model = models.CharField("视频模型", max_length=100, blank=True,
                                   help_text="如 doubao-seedance-1-0-pro 或 platform:kling；留空表示不提供")
    music_model = models.CharField("作曲模型", max_length=100, blank=True,
                                   help_text="Suno 版本如 chirp-v4，或 platform:suno；留空表示不提供")
    midjourney_model = models.CharField("Midjourney", max_length=100, blank=True,
                                        help_text="填 midjourney 或 niji 即通过中转的 /mj 接口作画；留空表示不提供")
    # The model ids the provider listed at the last check: offered as choices, and a name not among
    # them gets a warning (an empty list means the provider gave none, so nothing is warned).
    listed_models = models.JSONField("可用模型", default=list, blank=True, editable=False)
    credit = models.JSONField("余额", null=True, blank=True, editable=False)
    is_default = models.BooleanField("站点默认", default=False, help_text="仅对站点密钥有效")
    status = models.CharField(
        "状态", max_length=20, choices=CredentialStatus.choices, default=CredentialStatus.UNCHECKED
    )
    validated_at = models.DateTimeField("验证时间", null=True, blank=True)
    last_error = models.CharField("最近错误", max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API 密钥"
        verbose_name_plural = "API 密钥"
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.label}（{self.get_kind_display()} {self.key_hint}）"

    @property
    def is_site_wide(self) -> bool:
        return self.owner_id is None

    @property
    def is_usable(self) -> bool:
        return self.status == CredentialStatus.VALID or (
            self.is_site_wide and self.status == CredentialStatus.UNCHECKED
        )

    def effective_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.kind == CredentialKind.DASHSCOPE:
            return settings.DASHSCOPE_REGIONS[self.region or CredentialRegion.BEIJING]
        if self.kind == CredentialKind.OPENROUTER:
            return settings.OPENROUTER_BASE_URL
        return ""

    def effective_text_model(self) -> str:
        return self.text_model or DEFAULT_TEXT_MODEL[CredentialKind(self.kind)]

    def effective_image_model(self) -> str:
        return self.image_model or DEFAULT_IMAGE_MODEL[CredentialKind(self.kind)]

    def model_for(self, task: str) -> str:
        """The model a task runs on, or "" when this connection does not offer it (docs/connections.md)."""
        if task == "reply":
            return self.effective_text_model()
        if task in BACKGROUND_TASKS:
            return self.task_model or self.effective_text_model()
        if task == "image":
            return self.effective_image_model()
        return getattr(self, CAPABILITY_FIELDS[task]).strip()

    def offers(self, capability: str) -> bool:
        return bool(self.model_for(capability))

    def model_fields(self) -> list[tuple[str, str, str]]:
        """(field, label, model) of every model this connection names itself, blank fields left out."""
        names = ["text_model", "task_model", "image_model", *CAPABILITY_FIELDS.values()]
        return [(name, str(self._meta.get_field(name).verbose_name), getattr(self, name).strip())
                for name in names if getattr(self, name).strip()]

    def listed_ids(self) -> list[str]:
        return [entry["id"] for entry in self.listed_models if isinstance(entry, dict) and entry.get("id")]

    def unlisted_models(self) -> list[tuple[str, str]]:
        """(label, model) for each named model the provider did not list at the last check: most often
        a typing mistake. Nothing when the provider gave no list."""
        listed = set(self.listed_ids())
        if not listed:
            return []
        return [(label, model) for _, label, model in self.model_fields() if model not in listed]

    def set_key(self, key: str) -> None:
        self.api_key = key
        self.key_hint = mask_key(key)


class QuotaSettings(models.Model):
    """The site-wide usage limits: one row (pk 1), edited by curators in the admin. A row rather than a
    setting so every process sees a change at once, with no restart."""

    daily_token_quota = models.PositiveIntegerField(
        "每位用户每日 token 额度", null=True, blank=True,
        help_text="按北京时间（站点时区）自然日计算，零点重置。留空或填 0 表示不限。单个用户可另设额度。",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "用量与额度"
        verbose_name_plural = "用量与额度"

    def __str__(self) -> str:
        return "站点额度"

    @classmethod
    def load(cls) -> QuotaSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class UserQuota(models.Model):
    """One user's own daily limit, in place of the site-wide default. Its own model, so that curators
    can set it without the permission to change users (which would let them make themselves staff)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota",
                                verbose_name="用户")
    daily_token_quota = models.PositiveIntegerField(
        "每日 token 额度", help_text="替代站点默认额度。填 0 表示此用户不限。")
    note = models.CharField("备注", max_length=200, blank=True)
    updated_at = models.DateTimeField("修改时间", auto_now=True)

    class Meta:
        verbose_name = "用户额度"
        verbose_name_plural = "用户额度"
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user}：{self.daily_token_quota}"
