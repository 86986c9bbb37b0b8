from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from chat.speech_input.services import DictationRefused, dictation_transcribe, too_large_text


@login_required
@require_POST
async def transcribe(request: HttpRequest) -> JsonResponse:
    """The recording is the raw request body (not a form), so no upload handler ever writes it to a
    temporary file; it is read into memory, sent on, and dropped with the request."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > settings.DICTATION_MAX_BYTES:
        return JsonResponse({"error": too_large_text()}, status=413)
    audio = request.read(settings.DICTATION_MAX_BYTES + 1)
    try:
        text = await dictation_transcribe(user=await request.auser(), audio=audio)
    except DictationRefused as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse({"text": text})
