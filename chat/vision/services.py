"""Pictures shown to the figure: stored owner-only, linked to the message that showed them
(docs/vision.md). Every read filters by owner in the query."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.core.files.base import ContentFile
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.services import credential_resolve
from chat.models import Conversation, Message, MessageImage
from chat.vision.checks import ImageRejected, checked_image

NO_VISION = "当前密钥不支持识图：请在设置中为密钥填写识图模型后再附图。"
PENDING_HOURS = 24  # a picture chosen but never sent is dropped after this
PENDING_LIMIT = 10  # chosen and not yet sent, per user


def vision_offered(user) -> bool:
    credential = credential_resolve(user)
    return credential is not None and credential.offers("vision")


def attachment_create(*, owner, conversation: Conversation, data: bytes) -> MessageImage:
    """Check and keep a picture for the owner's next message, or ImageRejected (nothing stored)."""
    if not vision_offered(owner):
        raise ImageRejected(NO_VISION)
    checked = checked_image(data)
    _drop_stale(owner)
    if MessageImage.objects.for_user(owner).filter(message=None).count() >= PENDING_LIMIT:
        raise ImageRejected("已选的图片太多了，请先发送或稍后再试。")
    image = MessageImage(owner=owner, conversation=conversation, width=checked.width, height=checked.height)
    image.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(checked.jpeg), save=False)
    image.save()
    return image


def _drop_stale(owner) -> None:
    cutoff = timezone.now() - timedelta(hours=PENDING_HOURS)
    for stale in MessageImage.objects.for_user(owner).filter(message=None, created_at__lt=cutoff):
        stale.delete()  # one by one: the delete signal takes each file


def pending_attachment(user, conversation: Conversation, pk) -> MessageImage | None:
    """The user's own picture, chosen in this conversation and not yet sent; None for any other id."""
    if isinstance(pk, bool) or not isinstance(pk, int):
        return None
    return MessageImage.objects.for_user(user).filter(conversation=conversation, message=None, pk=pk).first()


def get_attachment_for_user(user, conversation: Conversation, pk: int) -> MessageImage:
    image = MessageImage.objects.for_user(user).filter(conversation=conversation, pk=pk).first()
    if image is None:
        raise Http404
    return image


def attachment_link(*, image: MessageImage, message: Message) -> None:
    """The saved message takes the picture; one that another message took meanwhile is not moved."""
    if MessageImage.objects.filter(pk=image.pk, message=None).update(message=message):
        image.message = message


def images_by_message(messages: Iterable[Message]) -> dict[int, MessageImage]:
    """The pictures the given user messages showed, by message id (one query)."""
    ids = [m.pk for m in messages if m.pk is not None and m.role == Message.Role.USER]
    if not ids:
        return {}
    return {image.message_id: image for image in MessageImage.objects.filter(message_id__in=ids)}


def file_url(image: MessageImage) -> str:
    return reverse("chat:attachment_file", args=[image.conversation_id, image.pk])


def shown_image(message: Message) -> MessageImage | None:
    """The picture of a message fetched with select_related("image") (no query of its own)."""
    try:
        return message.image
    except MessageImage.DoesNotExist:
        return None


def data_url(image: MessageImage) -> str:
    """The stored JPEG as the data URL an image part carries (it is always a JPEG: see checks.py)."""
    with image.image.open("rb") as file:
        return "data:image/jpeg;base64," + base64.b64encode(file.read()).decode("ascii")
