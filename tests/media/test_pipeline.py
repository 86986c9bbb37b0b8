"""Media jobs of every kind through services, the worker (in this thread) and the pages, against the
scripted upstream on real sockets: what is sent, what is stored, what the owner (and no one else) sees."""

from __future__ import annotations

import asyncio
import base64

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.urls import reverse

from accounts.models import ApiCredential, CredentialKind, CredentialStatus
from chat.media import services
from chat.media.cost import estimate_video
from chat.media.engines import KEEP_LOOK
from chat.media.seedance import TASKS_PATH
from chat.models import MediaJob, Message
from chat.notify import conversation_group
from tests.fakes.imagetasks import png_bytes
from tests.fakes.upstream import json_reply
from tests.media.helpers import HTML, MP3, MP4, PNG, file_reply, form

KEY = "sk-relay-media-0123456789"
EDITED = png_bytes(rgb=(20, 120, 40))


@pytest.fixture
def relay(upstream, db):
    """A site-wide relay key that offers every media service."""
    credential = ApiCredential(owner=None, kind=CredentialKind.OPENAI_COMPATIBLE, label="relay",
                               base_url=f"{upstream.url}/v1", status=CredentialStatus.VALID, is_default=True,
                               image_model="nano-banana", edit_model="nano-banana",
                               video_model="doubao-seedance-1-0-pro-250528", music_model="chirp-v4",
                               midjourney_model="midjourney")  # fmt: skip
    credential.set_key(KEY)
    credential.save()
    return credential


@pytest.fixture
def picture(alice, conversation, relay):
    """A finished picture of the conversation."""
    job = MediaJob.objects.create(owner=alice, conversation=conversation, prompt="李白月下独酌", status="done",
                                  mime="image/png", credential=relay)  # fmt: skip
    job.file.save(f"{job.pk}-pic.png", ContentFile(PNG))
    return job


@pytest.fixture
def poem(conversation):
    return Message.objects.create(conversation=conversation, role="assistant", content="床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。")


def rows(upstream, path: str) -> list:
    return [r for r in upstream.requests if r.path == path]


class Pushes:
    """A channel in the conversation's group: what the worker tells the conversation's pages."""

    def __init__(self, conversation_id: int) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(conversation_group(conversation_id), self.channel)


@pytest.fixture
def pushes(conversation, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return Pushes(conversation.pk)


def receive_all(pushes: Pushes) -> list[dict]:
    async def collect():
        events = []
        while True:
            try:
                events.append(await asyncio.wait_for(pushes.layer.receive(pushes.channel), 0.05))
            except TimeoutError:
                return events

    return async_to_sync(collect)()


# --- video ---------------------------------------------------------------------------------------


def seedance(upstream, body: bytes = MP4, mime: str = "video/mp4") -> None:
    upstream.route("POST", TASKS_PATH, json_reply(200, {"id": "cgt-1"}))
    upstream.route("GET", f"{TASKS_PATH}/cgt-1", json_reply(200, {"id": "cgt-1", "status": "running"}),
                   json_reply(200, {"id": "cgt-1", "status": "succeeded", "usage": {"completion_tokens": 108900},
                                    "content": {"video_url": upstream.url + "/tos/v.mp4?X-Tos-Signature=s"}}))
    upstream.route("GET", "/tos/v.mp4", file_reply(body, mime))


def test_a_clip_from_a_picture_starts_from_it_and_plays_on_the_page(alice, alice_client, conversation, picture,
                                                                     upstream, run_worker, pushes):
    seedance(upstream)
    params = services.video_params(5, "720p", "16:9")
    job = services.request_video(alice, conversation, "李白泛舟江上", params=params, source_job=picture, confirmed=True)
    assert job.status == "queued" and job.params["estimate_tokens"] == estimate_video(5).tokens

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.mime, job.submissions, job.backend) == ("done", "video/mp4", 1, "seedance")
    assert job.file.name.startswith(f"video/{alice.pk}/") and job.file.read() == MP4
    assert job.result == {"tokens": 108900}
    [create] = [r for r in upstream.requests if r.method == "POST"]
    content = create.json()["content"]
    assert "李白泛舟江上" in content[0]["text"] and "--duration 5" in content[0]["text"]
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert all("authorization" not in r.headers for r in upstream.requests if r.path == "/tos/v.mp4")
    assert {e["status"] for e in receive_all(pushes)} >= {"submitting", "generating", "done"}

    page = alice_client.get(reverse("chat:media_status", args=[conversation.pk, job.pk]))
    assert "<video controls" in page.text and "AI 生成视频，非史料" in page.text
    served = alice_client.get(reverse("chat:media_file", args=[conversation.pk, job.pk]))
    assert served["Content-Type"] == "video/mp4" and b"".join(served.streaming_content) == MP4


def test_a_clip_is_made_only_after_the_estimate_was_confirmed(alice, alice_client, conversation, picture, upstream):
    with pytest.raises(services.ImageRequestRejected) as raised:
        services.request_video(alice, conversation, "李白泛舟", params=services.video_params(5, "720p", "16:9"))
    assert raised.value.code == "unconfirmed"
    url = reverse("chat:media_video", args=[conversation.pk])
    refused = alice_client.post(url, {"prompt": "李白泛舟", "job": picture.pk}, headers={"HX-Request": "true"})
    assert "请先确认预计消耗" in refused.text
    assert MediaJob.objects.filter(kind="video").count() == 0 and upstream.requests == []

    form_page = alice_client.get(reverse("chat:media_video_form", args=[conversation.pk]),
                                 {"job": picture.pk, "duration": "10", "resolution": "1080p"})
    tokens = estimate_video(10, "1080p", "16:9").tokens
    assert f"{tokens:,}" in form_page.text and 'name="confirmed" value="1"' in form_page.text
    assert "李白月下独酌" in form_page.text  # the picture's words, to edit before confirming


def test_a_returned_file_that_is_not_a_video_fails_clearly_and_keeps_nothing(alice, conversation, relay, upstream,
                                                                               run_worker):
    seedance(upstream, body=HTML, mime="video/mp4")
    job = services.request_video(alice, conversation, "李白泛舟", params=services.video_params(5, "", ""),
                                 confirmed=True)
    run_worker()
    job.refresh_from_db()
    assert job.status == "failed" and "不是视频" in job.error_message and not job.file
    storage = MediaJob._meta.get_field("file").storage
    assert not storage.exists(f"video/{alice.pk}") or storage.listdir(f"video/{alice.pk}")[1] == []


def test_a_connection_without_the_service_says_so_and_calls_nothing(alice, conversation, relay, upstream):
    ApiCredential.objects.filter(pk=relay.pk).update(video_model="", music_model="")
    job = services.request_video(alice, conversation, "李白泛舟", params=services.video_params(5, "", ""),
                                 confirmed=True)
    assert (job.status, job.error_kind) == ("failed", "not_offered") and "没有配置视频模型" in job.error_message
    assert upstream.requests == []


def test_a_job_whose_conversation_is_deleted_meanwhile_leaves_no_file(alice, conversation, relay, upstream,
                                                                      run_worker, monkeypatch):
    seedance(upstream)
    job = services.request_video(alice, conversation, "李白泛舟", params=services.video_params(5, "", ""),
                                 confirmed=True)
    storage = MediaJob._meta.get_field("file").storage
    saved = []
    original = FileSystemStorage.save

    def save_then_delete(self, name, content, **kwargs):
        saved.append(original(self, name, content, **kwargs))
        conversation.delete()  # the owner deletes it while the file is being written
        return saved[-1]

    monkeypatch.setattr(FileSystemStorage, "save", save_then_delete)
    run_worker()
    assert saved and not storage.exists(saved[0]) and not MediaJob.objects.filter(pk=job.pk).exists()


# --- music ---------------------------------------------------------------------------------------


def test_a_poem_of_the_figure_is_set_to_music(alice, alice_client, conversation, relay, poem, upstream, run_worker,
                                              pushes):
    upstream.route("POST", "/suno/submit/music", json_reply(200, {"code": "success", "data": "suno-1"}))
    clip = {"id": "c1", "title": "静夜思", "status": "complete", "audio_url": upstream.url + "/cdn/a.mp3"}
    upstream.route("GET", "/suno/fetch/suno-1",
                   json_reply(200, {"code": "success", "data": {"status": "IN_PROGRESS", "progress": "40%"}}),
                   json_reply(200, {"code": "success", "data": {"status": "SUCCESS", "progress": "100%",
                                                                "data": [clip]}}))
    upstream.route("GET", "/cdn/a.mp3", file_reply(MP3, "audio/mpeg"))

    response = alice_client.post(reverse("chat:media_music", args=[conversation.pk, poem.pk]),
                                 {"tags": "古风、古琴", "title": "静夜思"}, headers={"HX-Request": "true"})
    job = MediaJob.objects.get(kind="music")
    assert f'id="image-job-{job.pk}"' in response.text
    run_worker()

    job.refresh_from_db()
    assert (job.status, job.mime, job.backend) == ("done", "audio/mpeg", "suno") and job.file.read() == MP3
    [submit] = rows(upstream, "/suno/submit/music")
    assert submit.json() == {"prompt": "床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。", "tags": "古风,古琴",
                             "title": "静夜思", "mv": "chirp-v4"}
    assert job.result == {"tracks": [{"title": "静夜思"}]}
    assert 40 in [e.get("progress") for e in receive_all(pushes)]  # the page saw the progress
    page = alice_client.get(reverse("chat:media_status", args=[conversation.pk, job.pk]))
    assert "<audio controls" in page.text and "《静夜思》" in page.text


def test_lyrics_and_tags_pass_the_checks_before_any_call(alice, conversation, relay, upstream):
    bad = Message.objects.create(conversation=conversation, role="assistant", content="一丝不挂的美人\n脱光衣裳")
    job = services.request_music(alice, conversation, bad)
    assert job.status == "blocked" and upstream.requests == []
    fine = Message.objects.create(conversation=conversation, role="assistant", content="春眠不觉晓")
    assert services.request_music(alice, conversation, fine, tags="裸体").status == "blocked"


def test_only_the_figures_own_words_are_set_to_music(alice, conversation, relay):
    mine = Message.objects.create(conversation=conversation, role="user", content="我写的诗")
    with pytest.raises(services.ImageRequestRejected):
        services.request_music(alice, conversation, mine)


# --- Midjourney ------------------------------------------------------------------------------------


def test_midjourney_draws_a_grid_whose_buttons_make_new_pictures(alice, alice_client, conversation, relay, upstream,
                                                                  run_worker):
    buttons = [{"customId": f"MJ::JOB::upsample::{i}::abc", "label": f"U{i}", "emoji": ""} for i in (1, 2)]
    buttons += [{"customId": "MJ::JOB::variation::1::abc", "label": "V1"}, {"customId": "MJ::JOB::reroll::0::abc",
                                                                           "label": "", "emoji": "🔄"}]
    upstream.route("POST", "/mj/submit/imagine", json_reply(200, {"code": 1, "description": "提交成功", "result": 1712}))
    upstream.route("GET", "/mj/task/1712/fetch",
                   json_reply(200, {"status": "IN_PROGRESS", "progress": "50%"}),
                   json_reply(200, {"status": "SUCCESS", "progress": "100%", "imageUrl": upstream.url + "/mj/g.png",
                                    "buttons": buttons}))
    upstream.route("GET", "/mj/g.png", file_reply(PNG, "image/png"))
    response = alice_client.post(reverse("chat:media_create", args=[conversation.pk]),
                                 {"prompt": "长安城夜景", "engine": "midjourney"}, headers={"HX-Request": "true"})
    grid = MediaJob.objects.get()
    assert grid.kind == "midjourney" and 'id="image-job-' in response.text
    run_worker()
    grid.refresh_from_db()
    assert grid.status == "done" and grid.file.read() == PNG
    assert [b["label"] for b in grid.result["buttons"]] == ["U1", "U2", "V1"]  # reroll is not offered
    imagine = rows(upstream, "/mj/submit/imagine")[0].json()
    assert imagine["botType"] == "MID_JOURNEY" and imagine["prompt"].startswith("长安城夜景")
    page = alice_client.get(reverse("chat:media_status", args=[conversation.pk, grid.pk]))
    assert "MJ::JOB::upsample::1::abc" in page.text and ">U1<" in page.text

    upstream.route("POST", "/mj/submit/action", json_reply(200, {"code": 1, "result": "1713"}))
    upstream.route("GET", "/mj/task/1713/fetch", json_reply(200, {"status": "SUCCESS", "imageUrl": upstream.url + "/mj/u.png"}))
    upstream.route("GET", "/mj/u.png", file_reply(EDITED, "image/png"))
    alice_client.post(reverse("chat:media_action", args=[conversation.pk, grid.pk]),
                      {"custom_id": "MJ::JOB::upsample::1::abc"}, headers={"HX-Request": "true"})
    run_worker()
    upscaled = MediaJob.objects.exclude(pk=grid.pk).get()
    assert (upscaled.status, upscaled.source_job_id, upscaled.params["action"]["label"]) == ("done", grid.pk, "U1")
    assert upscaled.file.read() == EDITED
    assert rows(upstream, "/mj/submit/action")[0].json() == {"customId": "MJ::JOB::upsample::1::abc", "taskId": "1712",
                                                             "chooseSameChannel": True}
    with pytest.raises(services.ImageRequestRejected):
        services.request_midjourney_action(alice, grid, "MJ::JOB::reroll::0::abc")


# --- edits and the reference portrait ---------------------------------------------------------------


def test_an_edit_sends_the_picture_and_the_words(alice, alice_client, conversation, picture, upstream, run_worker):
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"data": [{"b64_json": base64.b64encode(EDITED).decode()}]}))
    alice_client.post(reverse("chat:media_edit", args=[conversation.pk, picture.pk]), {"prompt": "把背景换成长安城"},
                      headers={"HX-Request": "true"})
    run_worker()
    edit = MediaJob.objects.get(kind="image_edit")
    assert (edit.status, edit.source_job_id, edit.backend) == ("done", picture.pk, "edits")
    assert edit.file.read() == EDITED
    [sent] = rows(upstream, "/v1/images/edits")
    parts = {name: data for name, _, _, data in form(sent)}
    assert parts["image"] == PNG and "把背景换成长安城" in parts["prompt"].decode() and parts["model"] == b"nano-banana"


def test_a_figure_with_a_reference_portrait_keeps_its_look(alice, conversation, relay, libai, upstream, run_worker):
    portrait = png_bytes(rgb=(1, 2, 3))
    libai.reference_portrait.save("libai.png", ContentFile(portrait))
    upstream.route("POST", "/v1/images/edits", json_reply(200, {"data": [{"b64_json": base64.b64encode(EDITED).decode()}]}))
    job = services.request_image(alice, conversation, "李白登黄鹤楼")
    run_worker()
    job.refresh_from_db()
    assert (job.status, job.backend) == ("done", "edits")
    [sent] = rows(upstream, "/v1/images/edits")
    parts = {name: data for name, _, _, data in form(sent)}
    assert parts["image"] == portrait and parts["prompt"].decode().startswith(KEEP_LOOK)


def test_without_a_reference_portrait_a_picture_is_drawn_as_before(alice, conversation, relay, upstream, run_worker):
    upstream.route("POST", "/v1/images/generations", json_reply(200, {"data": [{"b64_json": base64.b64encode(PNG).decode()}]}))
    job = services.request_image(alice, conversation, "李白登黄鹤楼")
    run_worker()
    job.refresh_from_db()
    assert (job.status, job.backend) == ("done", "openai_compatible") and rows(upstream, "/v1/images/edits") == []


# --- someone else's ---------------------------------------------------------------------------------


def test_another_users_pictures_and_messages_are_not_found(alice, bob_client, bob, conversation, picture, poem, relay):
    from chat.services import conversation_start

    own = conversation_start(owner=bob, persona=conversation.persona)
    for url, data in [
        (reverse("chat:media_edit", args=[conversation.pk, picture.pk]), {"prompt": "x"}),
        (reverse("chat:media_action", args=[conversation.pk, picture.pk]), {"custom_id": "x"}),
        (reverse("chat:media_music", args=[conversation.pk, poem.pk]), {}),
        (reverse("chat:media_music", args=[own.pk, poem.pk]), {}),  # alice's message through bob's conversation
        (reverse("chat:media_edit", args=[own.pk, picture.pk]), {"prompt": "x"}),
    ]:
        assert bob_client.post(url, data, headers={"HX-Request": "true"}).status_code == 404, url
    sneaky = bob_client.post(reverse("chat:media_video", args=[own.pk]),
                             {"prompt": "x", "job": picture.pk, "confirmed": "1"}, headers={"HX-Request": "true"})
    assert sneaky.status_code == 404
    assert bob_client.get(reverse("chat:media_video_form", args=[own.pk]), {"job": picture.pk}).status_code == 404
    assert MediaJob.objects.filter(owner=bob).count() == 0


def test_the_page_hides_services_the_connection_lacks(alice_client, conversation, relay, picture):
    page = alice_client.get(reverse("chat:page", args=[conversation.pk]))
    assert 'data-offers="edit video music midjourney"' in page.text
    ApiCredential.objects.filter(pk=relay.pk).update(video_model="", midjourney_model="")
    page = alice_client.get(reverse("chat:media_gallery", args=[conversation.pk]))
    assert 'data-offers="edit music"' in page.text and 'class="offer-video"' in page.text  # hidden by CSS


def test_the_chat_page_polls_jobs_only_as_a_fallback(alice_client, alice, conversation, relay, settings):
    job = services.request_image(alice, conversation, "李白")
    alone = alice_client.get(reverse("chat:media_panel", args=[conversation.pk]), headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in alone.text  # no Redis: the worker's pushes cannot reach the site
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # only read here; nothing connects
    live = alice_client.get(reverse("chat:media_panel", args=[conversation.pk]), headers={"HX-Request": "true"})
    assert 'hx-trigger="media-job, every 10s"' in live.text and "?live=1" in live.text
    gallery = alice_client.get(reverse("chat:media_gallery", args=[conversation.pk]))
    assert f'id="image-job-{job.pk}"' in gallery.text and 'hx-trigger="every 1s"' in gallery.text


def test_music_and_clip_buttons_sit_on_the_figures_poem(alice_client, conversation, relay, poem):
    bubble = alice_client.get(reverse("chat:bubble", args=[conversation.pk, poem.pk]))
    assert reverse("chat:media_music", args=[conversation.pk, poem.pk]) in bubble.text
    assert f"?message={poem.pk}" in bubble.text and 'class="media-action offer-music"' in bubble.text


def test_lyrics_are_the_replys_lines_without_markup():
    assert services.lyrics_of("**床前明月光**[1]\n\n> 疑是地上霜。\n`举头`望明月") == "床前明月光\n疑是地上霜。\n举头望明月"


def test_a_clip_that_never_finishes_times_out_and_resumes_the_same_task(alice, conversation, relay, upstream,
                                                                        run_worker):
    upstream.route("POST", TASKS_PATH, json_reply(200, {"id": "cgt-9"}))
    upstream.route("GET", f"{TASKS_PATH}/cgt-9", json_reply(200, {"id": "cgt-9", "status": "running"}), repeat=True)
    job = services.request_video(alice, conversation, "李白泛舟", params=services.video_params(5, "", ""),
                                 confirmed=True)
    run_worker(poll_deadline=0.2)
    job.refresh_from_db()
    assert (job.status, job.error_kind, job.task_id) == ("failed", "poll_timeout", "cgt-9")
    assert "视频生成超时" in job.error_message and "不会重复计费" in job.error_message
    resumed = services.media_job_retry(alice, job)  # 继续等待: no confirmation, no new task
    assert (resumed.pk, resumed.status, resumed.task_id) == (job.pk, "generating", "cgt-9")
    assert len([r for r in upstream.requests if r.method == "POST"]) == 1


def test_a_failed_clip_is_made_again_only_when_confirmed_again(alice, conversation, relay, upstream, run_worker):
    upstream.route("POST", TASKS_PATH, json_reply(200, {"id": "cgt-8"}))
    upstream.route("GET", f"{TASKS_PATH}/cgt-8", json_reply(200, {"id": "cgt-8", "status": "failed",
                                                                  "error": {"code": "x", "message": "生成失败"}}))
    job = services.request_video(alice, conversation, "李白泛舟", params=services.video_params(10, "1080p", "9:16"),
                                 confirmed=True)
    run_worker()
    job.refresh_from_db()
    assert job.status == "failed"
    with pytest.raises(services.ImageRequestRejected):
        services.media_job_retry(alice, job)
    again = services.media_job_retry(alice, job, confirmed=True)
    assert again.pk != job.pk and again.kind == "video" and again.params["duration"] == 10
    assert again.params["aspect_ratio"] == "9:16" and again.status == "queued"


def test_a_clip_is_served_by_byte_ranges_for_seeking(alice_client, alice, conversation, relay):
    job = MediaJob.objects.create(owner=alice, conversation=conversation, kind="video", prompt="泛舟", status="done",
                                  mime="video/mp4", credential=relay)  # fmt: skip
    job.file.save(f"{job.pk}-v.mp4", ContentFile(MP4))
    url = reverse("chat:media_file", args=[conversation.pk, job.pk])
    part = alice_client.get(url, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and b"".join(part.streaming_content) == MP4[4:12]
    assert part["Content-Range"] == f"bytes 4-11/{len(MP4)}" and part["Content-Type"] == "video/mp4"
    tail = alice_client.get(url, headers={"Range": "bytes=-10"})
    assert b"".join(tail.streaming_content) == MP4[-10:]
    rest = alice_client.get(url, headers={"Range": "bytes=100-"})
    assert b"".join(rest.streaming_content) == MP4[100:]
    beyond = alice_client.get(url, headers={"Range": f"bytes={len(MP4)}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(MP4)}"
    whole = alice_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and b"".join(whole.streaming_content) == MP4


def test_a_gemini_edit_model_edits_through_generate_content_at_the_relay_root(alice, conversation, picture, relay,
                                                                             upstream, run_worker):
    ApiCredential.objects.filter(pk=relay.pk).update(edit_model="gemini-2.5-flash-image")
    answer = {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png",
                                                                    "data": base64.b64encode(EDITED).decode()}}]}}]}
    upstream.route("POST", "/v1beta/models/gemini-2.5-flash-image:generateContent", json_reply(200, answer))
    job = services.request_edit(alice, picture, "给画中人添一把油纸伞")
    run_worker()
    job.refresh_from_db()
    assert (job.status, job.backend) == ("done", "gemini") and job.file.read() == EDITED
    [sent] = [r for r in upstream.requests if r.path.endswith(":generateContent")]
    parts = sent.json()["contents"][0]["parts"]
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == PNG and "油纸伞" in parts[-1]["text"]
