"""Attaching a picture to the next message, and showing it back to its owner only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from chat import selectors
from chat.vision import services
from chat.vision.checks import MAX_BYTES, ImageRejected, too_large
from guyue import ratelimit

UPLOADS_PER_MINUTE = 20
FORM_OVERHEAD = 64 * 1024  # multipart headers around the file


@login_required
@require_POST
def upload(request: HttpRequest, pk: int) -> JsonResponse:
    """A picture for the owner's next message: its id to send with it, or a message fit to show (400)."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    # Refused before Django reads the body into a temporary file.
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_BYTES + FORM_OVERHEAD:
        return JsonResponse({"error": too_large(length)}, status=400)
    if not ratelimit.hit(ratelimit.cache_key("attach", str(request.user.pk)), limit=UPLOADS_PER_MINUTE, window=60):
        return JsonResponse({"error": f"上传太频繁了：每分钟最多 {UPLOADS_PER_MINUTE} 幅，请稍后再试。"}, status=429)
    upload = request.FILES.get("image")
    try:
        data = upload.read(MAX_BYTES + 1) if upload is not None else b""
        image = services.attachment_create(owner=request.user, conversation=conversation, data=data)
    except ImageRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"id": image.pk, "url": services.file_url(image), "width": image.width, "height": image.height},
                        status=201)


@login_required
@require_GET
def attachment_file(request: HttpRequest, pk: int, image_id: int) -> FileResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    image = services.get_attachment_for_user(request.user, conversation, image_id)
    response = FileResponse(image.image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"  # never in a shared cache: the picture is the owner's
    response["X-Content-Type-Options"] = "nosniff"
    return response
