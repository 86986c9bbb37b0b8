"""Image pages and partials. Every lookup goes through the owner's conversation, then the owner's
jobs in it: another user's id is a 404, and image files are served only through `image_file`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chat import selectors
from chat.images import services
from chat.models import ImageJob

JOB = "chat/images/_job.html"
PANEL_SIZE = 6


@login_required
@require_GET
def gallery(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    jobs = services.conversation_images(request.user, conversation)
    return render(request, "chat/images/gallery.html", {"conversation": conversation, "jobs": jobs})


@login_required
@require_GET
def panel(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    jobs = services.conversation_images(request.user, conversation, limit=PANEL_SIZE)
    return render(request, "chat/images/_panel.html", {"conversation": conversation, "jobs": jobs})


def _job_response(request: HttpRequest, conversation, make_job) -> HttpResponse:
    """Create or retry a job; the job's partial for htmx, the gallery otherwise."""
    try:
        job = make_job()
    except services.ImageRequestRejected as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("chat:image_gallery", conversation.pk)
        # 200, as elsewhere on the page: htmx 2 does not swap 4xx answers, and the message must show.
        return render(request, "chat/images/_rejected.html", {"error": str(exc)})
    if not request.htmx:
        return redirect("chat:image_gallery", conversation.pk)
    return render(request, JOB, {"job": job})


@login_required
@require_POST
def create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    return _job_response(request, conversation,
                         lambda: services.request_image(request.user, conversation, request.POST.get("prompt", "")))


@login_required
@require_GET
def status(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_image_job_for_user(request.user, conversation, job_id)
    return render(request, JOB, {"job": job})


@login_required
@require_POST
def retry(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_image_job_for_user(request.user, conversation, job_id)
    return _job_response(request, conversation, lambda: services.image_job_retry(request.user, job))


@login_required
@require_GET
def image_file(request: HttpRequest, pk: int, job_id: int) -> FileResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_image_job_for_user(request.user, conversation, job_id)
    if job.status != ImageJob.Status.DONE or not job.image:
        raise Http404
    response = FileResponse(job.image.open("rb"), content_type=_content_type(job.image.name))
    response["Cache-Control"] = "private, max-age=86400"  # never in a shared cache: the image is the owner's
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _content_type(name: str) -> str:
    return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}.get(name.rsplit(".", 1)[-1], "image/png")
