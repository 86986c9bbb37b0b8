"""What each kind of background job does. A handler returns "" when done, else a short reason
(the job is then `failed`); it never needs the web process (docs/jobs.md)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.services import credential_resolve
from chat.models import BackgroundJob, Conversation
from chat.notify import aconversation_changed
from chat.providers.chat import ProviderConfig
from chat.providers.errors import ProviderError
from chat.quota import QuotaExceeded, quota_check
from chat.recall import callback as callbacks
from chat.recall.extract import extract_memories
from chat.summary import refresh_summary
from chat.titles import title_conversation
from guyue.lib.netguard import UnsafeURL

Kind = BackgroundJob.Kind


NO_KEY = "没有可用的密钥"


@database_sync_to_async
def _config(conversation: Conversation, task: str) -> ProviderConfig | None:
    """The owner's key as it stands when the job runs (it may have been replaced since it was queued).
    Raises QuotaExceeded for an owner who has spent today's tokens: no call is made for them."""
    from chat.streaming import provider_config  # streaming imports this package's queue

    quota_check(conversation.owner)
    credential = credential_resolve(conversation.owner)
    try:
        return provider_config(credential, task) if credential else None
    except UnsafeURL:
        return None


async def summary(job: BackgroundJob) -> str:
    try:
        config = await _config(job.conversation, "summary")
    except QuotaExceeded as exc:
        return str(exc)
    if config is None:
        return NO_KEY
    if await refresh_summary(job.conversation_id, config):
        await aconversation_changed(job.conversation_id)
    return ""


async def extract(job: BackgroundJob) -> str:
    if not (settings.MEMORY_EXTRACTION and job.conversation.owner.memory_auto):
        return ""  # switched off after it was queued: nothing is read, nothing is sent
    try:
        config = await _config(job.conversation, "extract")
    except QuotaExceeded as exc:
        return str(exc)
    if config is None:
        return NO_KEY
    await extract_memories(job.conversation_id, config)
    return ""


@database_sync_to_async
def _callback_inputs(conversation: Conversation):
    """The prompt and the output guard, or None when the greeting is no longer wanted (the user spoke,
    or a callback greeting already opens the conversation)."""
    from chat.streaming import output_guard_for

    owner = conversation.owner
    conversation = Conversation.objects.select_related("persona", "life_stage", "style_preset", "active_leaf").get(
        pk=conversation.pk)
    leaf = conversation.active_leaf
    previous = callbacks.previous_for(owner, conversation) if leaf and leaf.provider == "greeting" else None
    if previous is None:
        return None
    guard = output_guard_for(conversation, conversation.persona, conversation.life_stage, None)
    return conversation, callbacks.callback_messages(conversation, previous), guard


async def callback(job: BackgroundJob) -> str:
    """The figure greets a returning user with a callback to their last conversation; the page that
    asked follows the job and shows the reason when there is no greeting."""
    inputs = await _callback_inputs(job.conversation)
    if inputs is None:
        return ""
    conversation, messages, guard = inputs
    try:
        config = await _config(conversation, "callback")
    except QuotaExceeded as exc:
        return str(exc)  # shown where the greeting would have been
    if config is None:
        return callbacks.NO_KEY_NOTICE
    try:
        text = await callbacks.write_callback(config, messages, guard)
    except ProviderError as exc:
        return exc.message
    if not text:
        return "未能写出接续的问候，请直接开始对话。"
    saved = await database_sync_to_async(callbacks.callback_save)(
        conversation=conversation, text=text, model=config.model, provider=config.kind)
    if saved is not None:
        await aconversation_changed(conversation.pk)
    return ""


async def title(job: BackgroundJob) -> str:
    """A short title from the model; the first question's words when the switch went off since it was
    queued, when there is no key, or when the call fails (then the job records why)."""
    enabled = settings.MEMORY_EXTRACTION and job.conversation.owner.memory_auto
    try:
        config = await _config(job.conversation, "title") if enabled else None
    except QuotaExceeded:
        config = None  # over today's quota: the local title, no call
    return await title_conversation(job.conversation_id, config)


HANDLERS = {Kind.SUMMARY: summary, Kind.EXTRACT: extract, Kind.CALLBACK: callback, Kind.TITLE: title}
