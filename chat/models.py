from __future__ import annotations

from django.conf import settings
from django.db import models

from personas.models import LifeStage, Persona, StylePreset


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> ConversationQuerySet:
        return self.filter(owner=user)


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="conversations")
    life_stage = models.ForeignKey(LifeStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    style_preset = models.ForeignKey(StylePreset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField("标题", max_length=100, blank=True)
    archived = models.BooleanField("已归档", default=False)
    # The leaf of the branch being shown; regenerate/edit/switch only move this pointer.
    active_leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "用户"
        ASSISTANT = "assistant", "人物"

    class Status(models.TextChoices):
        COMPLETE = "complete", "完成"
        STREAMING = "streaming", "生成中"
        STOPPED = "stopped", "已停止"
        ERROR = "error", "出错"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    error_kind = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "消息"
        verbose_name_plural = "消息"
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "parent"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:30]}"
