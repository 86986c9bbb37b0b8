"""朗读's two views: a sentence's audio (owner only), and the conversation's auto-read switch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chat import selectors
from chat.speech import services
from chat.speech.tts import SpeechError

logger = logging.getLogger(__name__)


def _refusal(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, json_dumps_params={"ensure_ascii": False})


@login_required
@require_GET
async def sentence(request: HttpRequest, message_id: int, index: int) -> HttpResponse:
    """Sentence `index` of a reply as mp3: 200 audio, 202 not final yet (ask again), 204 no such
    sentence (the reply is read to its end), 409/429/502 with a Chinese `error` for the page."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return _refusal("请在本站页面上朗读。", 403)  # a paid call is the owner's own action, never another site's
    user = await request.auser()
    try:
        message, config = await services.reply_and_config(user, message_id)
        text = await services.sentence_at(message, index, wait=settings.SPEECH_WAIT_SECONDS)
        if text is services.NOT_YET:
            return HttpResponse(status=202)
        if text is None:
            return HttpResponse(status=204)
        audio, keep = await services.sentence_audio(user=user, message=message, index=index, text=text,
                                                    config=config)
    except services.NoSpeech as refusal:
        return _refusal(refusal.message, 429 if refusal.message == services.TOO_MANY else 409)
    except SpeechError as error:
        logger.warning("speech for message %s failed: %s %s", message_id, error.kind, error.detail)
        return _refusal(error.message, 502)
    response = StreamingHttpResponse(_then(audio, keep), content_type="audio/mpeg")
    response["Content-Length"] = str(len(audio))
    response["Cache-Control"] = "private, max-age=86400"  # never in a shared cache: the reply is the owner's
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def _then(audio: bytes, keep) -> AsyncIterator[bytes]:
    """The audio, then (fresh audio only) its cache entry, written while the page already plays it."""
    yield audio
    if keep is not None:
        try:
            await keep()
        except Exception:  # noqa: BLE001 - the page has its audio; the next reading asks again
            logger.exception("keeping the audio of a sentence failed")


@login_required
@require_POST
def auto_read(request: HttpRequest, pk: int) -> HttpResponse:
    """The side panel's 自动朗读 switch (htmx): on, each new reply is read aloud as it is written."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    services.auto_read_set(conversation=conversation, on=request.POST.get("auto_read") == "on")
    context = {"conversation": conversation, "speech_offered": services.speech_offered(request.user), "saved": True}
    return render(request, "chat/_auto_read.html", context)


