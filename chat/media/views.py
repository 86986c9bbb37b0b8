"""Media pages and partials. Every lookup goes through the owner's conversation, then the owner's
jobs in it: another user's id is a 404, and files are served only through `media_file`."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.services import credential_resolve
from chat import selectors
from chat.media import services
from chat.media.engines import offers_of
from chat.media.files import MIMES
from chat.media.ranges import ranged
from chat.models import MediaJob, Message

JOB = "chat/media/_job.html"
VIDEO_FORM = "chat/media/_video_form.html"
PANEL_SIZE = 6


@login_required
@require_GET
def gallery(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    jobs = services.conversation_media(request.user, conversation)
    return render(request, "chat/media/gallery.html", {"conversation": conversation, "jobs": jobs,
                                                       "media_offers": offers_of(credential_resolve(request.user))})  # fmt: skip


@login_required
@require_GET
def panel(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    jobs = services.conversation_media(request.user, conversation, limit=PANEL_SIZE)
    # With Redis the chat page's socket relays the worker's pushes: its jobs poll only as a fallback.
    return render(request, "chat/media/_panel.html", {"conversation": conversation, "jobs": jobs,
                                                      "live": bool(settings.REDIS_URL)})


def _job_response(request: HttpRequest, conversation, make_job) -> HttpResponse:
    """Create or retry a job; the job's partial for htmx, the gallery otherwise."""
    try:
        job = make_job()
    except services.ImageRequestRejected as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("chat:media_gallery", conversation.pk)
        # 200, as elsewhere on the page: htmx 2 does not swap 4xx answers, and the message must show.
        return render(request, "chat/media/_rejected.html", {"error": str(exc)})
    if not request.htmx:
        return redirect("chat:media_gallery", conversation.pk)
    return render(request, JOB, {"job": job, "live": _live(request)})


def _live(request: HttpRequest) -> bool:
    # Asked from the chat page, whose socket relays the worker's pushes (the gallery has none); only a
    # channel layer shared between processes (Redis) carries them from the worker to the site.
    if not settings.REDIS_URL or not request.htmx:
        return False
    return "/media/" not in (request.htmx.current_url or "")


@login_required
@require_POST
def create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    engine = request.POST.get("engine", "")
    return _job_response(request, conversation, lambda: services.request_image(
        request.user, conversation, request.POST.get("prompt", ""), engine=engine))


@login_required
@require_POST
def edit(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    picture = services.get_media_job_for_user(request.user, conversation, job_id)
    return _job_response(request, conversation,
                         lambda: services.request_edit(request.user, picture, request.POST.get("prompt", "")))


@login_required
@require_POST
def midjourney_action(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    grid = services.get_media_job_for_user(request.user, conversation, job_id)
    return _job_response(request, conversation, lambda: services.request_midjourney_action(
        request.user, grid, request.POST.get("custom_id", "")))


@login_required
@require_POST
def music(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    message = Message.objects.filter(conversation=conversation, pk=message_id).first()
    if message is None:
        raise Http404
    return _job_response(request, conversation, lambda: services.request_music(
        request.user, conversation, message, tags=request.POST.get("tags", ""), title=request.POST.get("title", "")))


def _video_inputs(request: HttpRequest, conversation) -> tuple[MediaJob | None, Message | None, dict]:
    """The clip's source (an owner's picture or a message of this conversation) and its settings, from
    the form (GET while choosing, POST to submit)."""
    data = request.POST if request.method == "POST" else request.GET
    job_id, message_id = data.get("job", ""), data.get("message", "")
    picture = services.get_media_job_for_user(request.user, conversation, int(job_id)) if job_id.isdigit() else None
    message = None
    if message_id.isdigit():
        message = Message.objects.filter(conversation=conversation, pk=int(message_id)).first()
        if message is None:
            raise Http404
    params = services.video_params(data.get("duration"), data.get("resolution"), data.get("aspect_ratio"))
    return picture, message, params


@login_required
@require_GET
def video_form(request: HttpRequest, pk: int) -> HttpResponse:
    """The clip's settings and what it will cost: nothing is submitted from here."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    picture, message, params = _video_inputs(request, conversation)
    prompt = request.GET.get("prompt")
    if prompt is None:
        prompt = (picture.prompt if picture else services.lyrics_of(message.content) if message else "")[:200]
    return render(request, VIDEO_FORM, {
        "conversation": conversation, "picture": picture, "message": message, "params": params, "prompt": prompt,
        "estimate": services.video_estimate(params), "durations": settings.VIDEO_DURATIONS,
        "resolutions": services.VIDEO_RESOLUTIONS, "ratios": services.VIDEO_RATIOS,
    })


@login_required
@require_POST
def video(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    picture, message, params = _video_inputs(request, conversation)
    return _job_response(request, conversation, lambda: services.request_video(
        request.user, conversation, request.POST.get("prompt", ""), params=params, source_job=picture,
        source_message=message, confirmed=request.POST.get("confirmed") == "1"))


@login_required
@require_GET
def status(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_media_job_for_user(request.user, conversation, job_id)
    return render(request, JOB, {"job": job, "live": request.GET.get("live") == "1"})


@login_required
@require_POST
def retry(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_media_job_for_user(request.user, conversation, job_id)
    confirmed = request.POST.get("confirmed") == "1"
    return _job_response(request, conversation, lambda: services.media_job_retry(request.user, job, confirmed=confirmed))


@login_required
@require_GET
def media_file(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    job = services.get_media_job_for_user(request.user, conversation, job_id)
    if job.status != MediaJob.Status.DONE or not job.file:
        raise Http404
    mime = job.mime or MIMES.get(job.file.name.rsplit(".", 1)[-1], "image/png")
    handle = job.file.open("rb")
    # A clip or a song is sought through by byte ranges (<video>, <audio>); a picture is sent whole.
    response = ranged(request, handle, job.file.size, mime) or FileResponse(handle, content_type=mime)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=86400"  # never in a shared cache: the file is the owner's
    response["X-Content-Type-Options"] = "nosniff"
    return response
