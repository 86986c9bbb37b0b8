"""Services and pages: owner checks, blocked prompts make no call, status partial, caption, files."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from chat.media.services import ImageRequestRejected, describe_for_tool, request_image
from chat.models import MediaJob
from chat.services import conversation_start
from tests.fakes.imagetasks import PNG

pytestmark = pytest.mark.django_db


def done_job(owner, conversation, prompt="李白月下独酌") -> MediaJob:
    job = MediaJob.objects.create(owner=owner, conversation=conversation, prompt=prompt, status="done",
                                  finished_at=timezone.now())
    job.file.save(f"{job.pk}-abc.png", ContentFile(PNG))
    return job


# --- request_image -----------------------------------------------------------------------------------


def test_a_blocked_prompt_makes_no_upstream_call(upstream, dashscope, alice, conversation, run_worker):
    job = request_image(alice, conversation, "画一个裸体的女人")
    assert job.status == MediaJob.Status.BLOCKED and job.error_kind == "nudity"
    assert job.error_message == "图像描述含有裸露或色情内容，无法作画。" and job.is_final

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.BLOCKED and job.submissions == 0
    assert upstream.requests == []


def test_the_worker_checks_the_prompt_again(upstream, dashscope, alice, conversation, run_worker):
    # A job that reached the queue some other way still never reaches the provider.
    job = MediaJob.objects.create(owner=alice, conversation=conversation, prompt="血肉模糊的尸体", credential=dashscope,
                                  backend="dashscope")
    run_worker()
    job.refresh_from_db()
    assert job.status == MediaJob.Status.BLOCKED and job.error_kind == "gore" and upstream.requests == []


def test_without_a_key_the_job_fails_at_once(alice, conversation, run_worker):
    job = request_image(alice, conversation, "李白月下独酌")
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "no_key" and "设置" in job.error_message


def test_it_is_owner_checked(dashscope, alice, bob, conversation):
    with pytest.raises(ImageRequestRejected) as caught:
        request_image(bob, conversation, "李白月下独酌")
    assert caught.value.code == "not_found" and not MediaJob.objects.exists()
    other = conversation_start(owner=alice, persona=conversation.persona)
    with pytest.raises(ImageRequestRejected):
        request_image(alice, other, "李白", source_message=conversation.active_leaf)


@pytest.mark.parametrize(("prompt", "code"), [("   ", "empty"), ("月" * 301, "too_long")])
def test_it_rejects_bad_prompts(dashscope, alice, conversation, prompt, code):
    with pytest.raises(ImageRequestRejected) as caught:
        request_image(alice, conversation, prompt)
    assert caught.value.code == code


def test_it_is_rate_limited(dashscope, alice, conversation, settings):
    settings.IMAGE_LIMIT_PER_HOUR = 2
    request_image(alice, conversation, "一")
    request_image(alice, conversation, "二")
    with pytest.raises(ImageRequestRejected) as caught:
        request_image(alice, conversation, "三")
    assert caught.value.code == "rate_limited"


def test_a_queued_job_records_what_will_be_sent(dashscope, alice, conversation):
    job = request_image(alice, conversation, "李白月下独酌", source_message=conversation.active_leaf)
    assert job.status == MediaJob.Status.QUEUED and job.credential == dashscope and job.model == "wan2.2-t2i-flash"
    assert job.source_message == conversation.active_leaf and job.size == "1024*1024"
    assert "圆领袍衫" in job.actual_prompt and job.negative_prompt
    assert describe_for_tool(job).startswith("画作正在生成")


@pytest.mark.django_db(transaction=True)
async def test_it_can_be_called_from_async_code(dashscope, alice, conversation):
    from chat.media.services import arequest_image

    job = await arequest_image(alice, conversation, "李白月下独酌")
    assert job.status == MediaJob.Status.QUEUED


# --- pages -------------------------------------------------------------------------------------------


def test_the_status_partial_polls_until_final(alice_client, dashscope, alice, conversation):
    job = request_image(alice, conversation, "李白月下独酌")
    url = reverse("chat:media_status", args=[conversation.pk, job.pk])
    response = alice_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert f'hx-get="{url}"' in response.text and 'hx-trigger="every 1s"' in response.text and "排队中" in response.text

    MediaJob.objects.filter(pk=job.pk).update(status="generating")
    assert "正在作画" in alice_client.get(url).text

    job.file.save(f"{job.pk}-x.png", ContentFile(PNG), save=False)
    MediaJob.objects.filter(pk=job.pk).update(status="done", file=job.file.name)
    response = alice_client.get(url)
    assert "every 1s" not in response.text  # final: the page stops asking
    assert "AI 想象图，非史料" in response.text
    assert reverse("chat:media_file", args=[conversation.pk, job.pk]) in response.text


def test_create_from_the_page(alice_client, dashscope, conversation):
    url = reverse("chat:media_create", args=[conversation.pk])
    response = alice_client.post(url, {"prompt": "李白月下独酌"}, headers={"HX-Request": "true"})
    job = MediaJob.objects.get()
    assert response.status_code == 200 and f'id="image-job-{job.pk}"' in response.text
    blocked = alice_client.post(url, {"prompt": "画一个裸体的女人"}, headers={"HX-Request": "true"})
    assert "无法作画" in blocked.text
    empty = alice_client.post(url, {"prompt": ""}, headers={"HX-Request": "true"})
    assert "请描述想画的画面" in empty.text
    assert alice_client.post(url, {"prompt": "黄鹤楼"}).status_code == 302  # without htmx: back to the gallery


def test_the_gallery_shows_images_with_the_caption(alice_client, alice, conversation):
    job = done_job(alice, conversation)
    response = alice_client.get(reverse("chat:media_gallery", args=[conversation.pk]))
    assert response.status_code == 200 and "AI 想象图，非史料" in response.text
    assert reverse("chat:media_file", args=[conversation.pk, job.pk]) in response.text


def test_the_image_file_is_served_to_its_owner_only(alice_client, bob_client, alice, conversation):
    job = done_job(alice, conversation)
    url = reverse("chat:media_file", args=[conversation.pk, job.pk])
    response = alice_client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png" and response["Cache-Control"].startswith("private")
    assert bob_client.get(url).status_code == 404
    # Not reachable as public media either.
    assert alice_client.get("/media/" + job.file.name).status_code == 404


def test_bob_sees_nothing_of_alice(bob_client, bob, alice, conversation, dashscope, libai):
    job = done_job(alice, conversation)
    urls = [
        reverse("chat:media_gallery", args=[conversation.pk]),
        reverse("chat:media_panel", args=[conversation.pk]),
        reverse("chat:media_status", args=[conversation.pk, job.pk]),
        reverse("chat:media_file", args=[conversation.pk, job.pk]),
    ]
    for url in urls:
        assert bob_client.get(url).status_code == 404, url
    assert bob_client.post(reverse("chat:media_create", args=[conversation.pk]), {"prompt": "x"}).status_code == 404
    assert bob_client.post(reverse("chat:media_retry", args=[conversation.pk, job.pk])).status_code == 404
    # Bob's own conversation id with Alice's job id is still a 404.
    own = conversation_start(owner=bob, persona=libai)
    assert bob_client.get(reverse("chat:media_status", args=[own.pk, job.pk])).status_code == 404
    assert bob_client.get(reverse("chat:media_file", args=[own.pk, job.pk])).status_code == 404
    assert MediaJob.objects.filter(owner=bob).count() == 0


def test_the_chat_page_loads_the_panel(alice_client, alice, conversation):
    done_job(alice, conversation)
    page = alice_client.get(reverse("chat:page", args=[conversation.pk]))
    panel_url = reverse("chat:media_panel", args=[conversation.pk])
    assert panel_url in page.text
    panel = alice_client.get(panel_url, headers={"HX-Request": "true"})
    assert "AI 想象图，非史料" in panel.text and 'name="prompt"' in panel.text


def test_retry_of_a_failed_job_makes_a_new_one(alice_client, dashscope, alice, conversation):
    failed = MediaJob.objects.create(owner=alice, conversation=conversation, prompt="黄鹤楼", status="failed",
                                     error_kind="upstream", error_message="出错")
    response = alice_client.post(reverse("chat:media_retry", args=[conversation.pk, failed.pk]),
                                 headers={"HX-Request": "true"})
    new = MediaJob.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 200 and new.prompt == "黄鹤楼" and new.status == "queued"


def test_deleting_the_conversation_deletes_its_image_files(alice, conversation, django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from chat.services import conversation_delete

    job = done_job(alice, conversation)
    name = job.file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        conversation_delete(conversation=conversation)
    assert not MediaJob.objects.exists() and not default_storage.exists(name)
