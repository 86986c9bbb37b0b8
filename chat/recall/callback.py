"""A new conversation may open with a callback to the last one: "上次你问我'互联网是何物'……".

Offered (a button on the page) when the conversation has not started yet and the user talked with
this figure before. On request, one short model call writes the greeting from the last
conversation's summary, or its last exchanges when it had none, and the greeting becomes a
sibling of the card's own, so the user can switch back to the card's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from chat.models import Conversation, Message
from chat.prompting import PromptInputs, build_prompt, withheld_questions
from chat.providers.chat import ProviderConfig, TextDelta, stream_chat
from chat.recall.recall import exchange_line
from chat.selectors import branch_messages
from chat.userpersona import user_persona_rows, user_persona_text

EXCHANGES = 3
NO_KEY_NOTICE = "尚未配置可用的大模型密钥，无法请人物忆起上回。"
MAX_TOKENS = 200


@dataclass(frozen=True)
class Previous:
    conversation: Conversation
    summary: str
    exchanges: list[str]
    days: int


def _started(conversation: Conversation) -> bool:
    return conversation.messages.filter(role=Message.Role.USER).exists()


def previous_for(user, conversation: Conversation) -> Previous | None:
    """The user's last other conversation with this figure that has something said in it."""
    if conversation.is_salon or _started(conversation):
        return None
    candidates = (
        Conversation.objects.for_user(user).filter(persona_id=conversation.persona_id, seats__isnull=True)
        .exclude(pk=conversation.pk).filter(messages__role=Message.Role.USER).distinct().order_by("-updated_at", "-pk")
    )
    last = candidates.first()
    if last is None:
        return None
    branch = branch_messages(last)
    withheld = withheld_questions(branch)  # what the guard turned away is not recalled
    pairs = [
        exchange_line(message, branch[index + 1].content if index + 1 < len(branch) else None)
        for index, message in enumerate(branch) if message.role == Message.Role.USER and index not in withheld
    ]
    if not pairs and not last.summary:
        return None  # everything said there was turned away by the guard: nothing to recall
    days = max((timezone.localdate() - timezone.localdate(last.updated_at)).days, 0)  # calendar days
    return Previous(conversation=last, summary=last.summary, exchanges=pairs[-EXCHANGES:], days=days)


def offered(user, conversation: Conversation) -> bool:
    """Shown while the card's own greeting opens the conversation and there is a last time to recall."""
    leaf = conversation.active_leaf
    if leaf is None or leaf.provider != "greeting":
        return False
    return previous_for(user, conversation) is not None


_NUMERALS = "零一二三四五六七八九十"


def _when(days: int) -> str:
    """How long ago, as a person would say it: 今天早些时候, 前天, 五天前, 两个多月前."""
    if days == 0:
        return "今天早些时候"
    if days <= 2:
        return ("昨天", "前天")[days - 1]
    if days <= 10:
        return f"{_NUMERALS[days]}天前"
    if days < 30:
        return f"{days}天前"
    if days < 365:
        months = days // 30
        return f"{'两' if months == 2 else _NUMERALS[months] if months <= 10 else months}个多月前"
    return "一年多以前" if days < 730 else f"{days // 365}年多以前"


def callback_messages(conversation: Conversation, previous: Previous) -> list[dict[str, str]]:
    guidance = (
        f"这位访客又来看你了，你们上一回交谈是{_when(previous.days)}。请用你自己的口吻说一两句问候，"
        "自然地提起上回谈到的话题（只取自此前对话的摘要或从前的对话），也可以说说这些日子你对它的新想法。"
        "不要编造没有谈过的往事，也不要提到“资料”二字。"
    )
    return build_prompt(PromptInputs(
        persona=conversation.persona, life_stage=conversation.life_stage, style=conversation.style_preset,
        summary=previous.summary, exchanges=previous.exchanges, canary=conversation.canary, guidance=guidance,
        user_persona=user_persona_text(user_persona_rows(conversation.owner, conversation.persona)),
        new_message="（访客再次来访，还没有开口。）", budget_tokens=settings.PROMPT_TOKEN_BUDGET,
        request_tokens=settings.PROMPT_REQUEST_TOKENS, reply_max_tokens=MAX_TOKENS,
    )).messages


async def write_callback(config: ProviderConfig, messages: list[dict[str, str]], guard) -> str:
    """The greeting, checked by the output guard as a whole; "" when the guard objects."""
    parts = []
    async for event in stream_chat(config, messages, max_tokens=MAX_TOKENS):
        if isinstance(event, TextDelta):
            parts.append(guard.feed(event.text))
            if guard.hit is not None:
                return ""
    parts.append(guard.finish())
    return "" if guard.hit is not None else "".join(parts).strip()


def callback_save(*, conversation: Conversation, text: str, model: str, provider: str) -> Message | None:
    """A new root beside the card's greeting; None if the user spoke meanwhile (nothing changes then)."""
    if _started(conversation):
        return None
    greeting = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content=text, model=model, provider=provider,
        finished_at=timezone.now(),
    )
    conversation.active_leaf = greeting
    conversation.save(update_fields=["active_leaf", "updated_at"])
    return greeting
