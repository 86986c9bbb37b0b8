"""Background jobs (chat/jobs): queued once, claimed by one worker, leases on the database clock,
handed back on stop, run with the owner's key against the scripted upstream (docs/jobs.md)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

from chat import services
from chat.jobs import queue
from chat.jobs.runner import JobRunner, RunnerOptions
from chat.models import BackgroundJob, Conversation
from tests.chat.test_consumer import KEY, PATH, credential, fast_timeouts, stream  # noqa: F401  (fixtures)
from tests.fakes.jobs import run_jobs, run_jobs_sync
from tests.fakes.upstream import json_reply
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)
Kind, Status = BackgroundJob.Kind, BackgroundJob.Status


@pytest.fixture
def conversation(alice):
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


def fill(conversation: Conversation, pairs: int) -> None:
    for n in range(pairs):
        asked = services.message_add_user(conversation=conversation, text=f"第{n}问：我叫林晓，在杭州教书。")
        services.reply_save(conversation=conversation, parent=asked, content=f"第{n}答。", status="complete")


def test_one_job_of_a_kind_waits_per_conversation(conversation):
    assert queue.enqueue(Kind.SUMMARY, conversation.pk) is True
    assert queue.enqueue(Kind.SUMMARY, conversation.pk) is False  # the waiting one will read the newest state
    assert queue.enqueue(Kind.EXTRACT, conversation.pk) is True
    job = queue.claim("w1:1:a", 60)
    assert job.kind == Kind.SUMMARY and job.status == Status.RUNNING and job.attempts == 1
    # Once it runs, a new one may wait behind it (what was said meanwhile is not lost).
    assert queue.enqueue(Kind.SUMMARY, conversation.pk) is True
    assert BackgroundJob.objects.filter(kind=Kind.SUMMARY).count() == 2


def test_a_live_lease_is_never_taken_and_a_lapsed_one_is(conversation):
    queue.enqueue(Kind.SUMMARY, conversation.pk)
    first = queue.claim("hostA:1:a", 60)
    # Same host name, same pid even: only the lease on the database clock decides.
    assert queue.claim("hostA:1:b", 60) is None
    BackgroundJob.objects.filter(pk=first.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    second = queue.claim("hostA:1:b", 60)
    assert second.pk == first.pk and second.claimed_by == "hostA:1:b" and second.attempts == 2
    assert queue.finish(first, "hostA:1:a") is False  # the old holder's end changes nothing
    assert queue.extend("hostA:1:a", 60) == 0
    assert queue.finish(second, "hostA:1:b") is True
    assert BackgroundJob.objects.get(pk=first.pk).status == Status.DONE


def test_the_lease_is_set_on_the_database_clock(conversation):
    queue.enqueue(Kind.SUMMARY, conversation.pk)
    job = queue.claim("w:1:a", 30)
    assert BackgroundJob.objects.filter(pk=job.pk, lease_until__gt=Now()).exists()
    BackgroundJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=5))
    assert queue.extend("w:1:a", 30) == 1
    assert BackgroundJob.objects.filter(pk=job.pk, lease_until__gt=Now()).exists()


def test_ended_jobs_are_pruned_after_the_keep_time(conversation):
    queue.enqueue(Kind.SUMMARY, conversation.pk)
    queue.enqueue(Kind.EXTRACT, conversation.pk)
    old = queue.claim("w:1:a", 60)
    queue.finish(old, "w:1:a")
    BackgroundJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))
    assert queue.prune(7) == 1
    assert list(BackgroundJob.objects.values_list("kind", flat=True)) == [Kind.EXTRACT]  # the waiting one stays


async def test_a_summary_job_runs_with_the_owners_key(alice, conversation, credential, upstream, settings):
    settings.MEMORY_EXTRACTION = False
    await database_sync_to_async(fill)(conversation, 40)
    await database_sync_to_async(queue.enqueue)(Kind.SUMMARY, conversation.pk)
    upstream.route("POST", PATH, stream("用户名叫林晓，在杭州教书。"))
    assert await run_jobs() == 1
    [request] = upstream.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    await conversation.arefresh_from_db()
    assert conversation.summary == "用户名叫林晓，在杭州教书。"
    job = await BackgroundJob.objects.aget()
    assert job.status == Status.DONE and job.claimed_by == "" and job.finished_at is not None


async def test_without_a_key_the_job_fails_with_a_reason_and_calls_nothing(conversation, upstream):
    await database_sync_to_async(fill)(conversation, 40)
    await database_sync_to_async(queue.enqueue)(Kind.SUMMARY, conversation.pk)
    assert await run_jobs() == 1
    job = await BackgroundJob.objects.aget()
    assert job.status == Status.FAILED and "密钥" in job.error and upstream.requests == []


async def test_extraction_switched_off_after_queueing_sends_nothing(alice, conversation, credential, upstream):
    await database_sync_to_async(fill)(conversation, 4)
    await database_sync_to_async(queue.enqueue)(Kind.EXTRACT, conversation.pk)
    alice.memory_auto = False
    await alice.asave(update_fields=["memory_auto"])
    assert await run_jobs() == 1
    assert upstream.requests == [] and (await BackgroundJob.objects.aget()).status == Status.DONE


async def test_a_job_that_keeps_losing_its_worker_gives_up(conversation, credential, upstream):
    await database_sync_to_async(fill)(conversation, 40)
    await database_sync_to_async(queue.enqueue)(Kind.SUMMARY, conversation.pk)
    await BackgroundJob.objects.aupdate(attempts=3)  # three workers died holding it
    assert await run_jobs() == 1
    job = await BackgroundJob.objects.aget()
    assert job.status == Status.FAILED and job.attempts == 4 and upstream.requests == []


async def test_a_stopping_worker_hands_its_job_back(conversation, credential, upstream, settings):
    settings.MEMORY_EXTRACTION = False
    await database_sync_to_async(fill)(conversation, 40)
    await database_sync_to_async(queue.enqueue)(Kind.SUMMARY, conversation.pk)
    upstream.route("POST", PATH, stream("慢慢写的摘要。", gap=3.0))
    runner = JobRunner(worker_id="w:1:stop", options=RunnerOptions(idle=0.05))
    serving = asyncio.create_task(runner.serve())
    assert await asyncio.to_thread(upstream.wait_for_requests, 1)
    runner.request_stop()
    await asyncio.wait_for(serving, 30)
    job = await BackgroundJob.objects.aget()
    assert job.status == Status.QUEUED and job.claimed_by == "" and job.lease_until is None
    await conversation.arefresh_from_db()
    assert conversation.summary == ""
    upstream.route("POST", PATH, stream("重来一次的摘要。"))
    assert await run_jobs() == 1  # the next worker does it
    await conversation.arefresh_from_db()
    assert conversation.summary == "重来一次的摘要。"


async def test_two_hundred_sockets_closing_while_two_hundred_connect(alice, credential, upstream, settings):
    """Leaving queues one row per conversation; the web process makes no model call, so closing
    sockets never hold up new handshakes (issue: 200 close, 200 connect at once, 0 failures)."""
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from chat.routing import websocket_urlpatterns

    settings.MEMORY_EXTRACTION = settings.MEMORY_EXTRACT_ON_LEAVE = True
    count = 200

    @database_sync_to_async
    def conversations() -> list[int]:
        persona = make_persona("li-bai", "李白")
        made = []
        for _ in range(2 * count):
            conversation = services.conversation_start(owner=alice, persona=persona)
            fill(conversation, 2)  # two new user messages: leaving is due to extract
            made.append(conversation.pk)
        return made

    async def opened(pk: int):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{pk}/")
        communicator.scope["user"] = alice
        connected, _ = await communicator.connect(timeout=60)
        return communicator if connected else None

    pks = await conversations()
    leaving = await asyncio.gather(*(opened(pk) for pk in pks[:count]))
    assert all(leaving)
    results = await asyncio.gather(*(ws.disconnect(timeout=60) for ws in leaving),
                                   *(opened(pk) for pk in pks[count:]), return_exceptions=True)
    arriving = results[count:]
    failures = [r for r in results if isinstance(r, BaseException)] + [r for r in arriving if r is None]
    assert failures == []
    queued = BackgroundJob.objects.filter(kind=Kind.EXTRACT, status=Status.QUEUED)
    assert await queued.acount() == count
    assert set([pk async for pk in queued.values_list("conversation_id", flat=True)]) == set(pks[:count])
    assert upstream.requests == []  # nothing ran in the web process
    await asyncio.gather(*(ws.disconnect(timeout=60) for ws in arriving))


# -- the callback greeting -------------------------------------------------------------------------

@pytest.fixture
def returning(alice, conversation):
    """An earlier conversation with something said, and a fresh one opened by the card's greeting."""
    fill(conversation, 1)
    return services.conversation_start(owner=alice, persona=conversation.persona)


def _post_callback(client, conversation) -> str:
    return client.post(reverse("chat:callback", args=[conversation.pk]), HTTP_HX_REQUEST="true").content.decode()


def _follow(client, conversation) -> str:
    url = reverse("chat:messages", args=[conversation.pk]) + "?callback=1"
    return client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_a_second_click_joins_the_waiting_callback(alice_client, returning, credential, upstream):
    assert "正在回想上回所谈" in _post_callback(alice_client, returning)
    assert "正在回想上回所谈" in _post_callback(alice_client, returning)
    assert BackgroundJob.objects.filter(kind=Kind.CALLBACK).count() == 1 and upstream.requests == []
    # A reload while it is written shows the same waiting line, not the offer again.
    page = alice_client.get(reverse("chat:page", args=[returning.pk])).content.decode()
    assert "正在回想上回所谈" in page and "忆起上回所谈</button>" not in page


def test_an_upstream_failure_reaches_the_page_that_followed_the_job(alice_client, returning, credential, upstream):
    upstream.route("POST", PATH, json_reply(401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}))
    _post_callback(alice_client, returning)
    assert run_jobs_sync() == 1
    listed = _follow(alice_client, returning)
    job = BackgroundJob.objects.get()
    assert job.status == Status.FAILED and job.error and job.error in listed and 'role="alert"' in listed
    assert "正在回想" not in listed
    returning.refresh_from_db()
    assert returning.active_leaf.provider == "greeting"  # the card's greeting still opens it


def test_another_user_cannot_follow_a_callback(bob_client, returning):
    url = reverse("chat:messages", args=[returning.pk]) + "?callback=1"
    assert bob_client.get(url, HTTP_HX_REQUEST="true").status_code == 404


def test_the_worker_command_runs_background_and_media_jobs(alice, conversation, credential, upstream, settings):
    import signal

    from django.core.management import call_command

    settings.MEMORY_EXTRACTION = False
    fill(conversation, 40)
    queue.enqueue(Kind.SUMMARY, conversation.pk)
    upstream.route("POST", PATH, stream("用户名叫林晓。"))
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        call_command("worker", "--once", "--worker-id", "cmd:1:test")
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    conversation.refresh_from_db()
    assert conversation.summary == "用户名叫林晓。"
    assert BackgroundJob.objects.get().status == Status.DONE
