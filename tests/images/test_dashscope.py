"""docs/provider-reference.md §7 fixtures 25-32: DashScope wan2.2-t2i-flash tasks against the scripted upstream."""

from __future__ import annotations

import httpx
import pytest

from chat.images.backends import BackendConfig, ImageError, ImageRequest, wait_for_task
from chat.images.dashscope import DashScopeBackend, native_base
from chat.media.services import media_job_retry, request_image
from chat.models import MediaJob
from tests.fakes.dns import fake_dns  # noqa: F401  (fixture)
from tests.fakes.imagetasks import CREATE_PATH, PNG, DashScopeTasks
from tests.fakes.upstream import Reply, json_reply
from tests.images.conftest import SITE_KEY

pytestmark = pytest.mark.django_db

CREATE = "/bj/api/v1" + CREATE_PATH


def task(status: str, task_id: str = "t-1", **output) -> Reply:
    return json_reply(200, {"request_id": "r-poll", "output": {"task_id": task_id, "task_status": status, **output}})


def created(task_id: str = "t-1") -> Reply:
    return json_reply(200, {"output": {"task_status": "PENDING", "task_id": task_id}, "request_id": "r-create"})


def succeeded(upstream, task_id: str = "t-1", **extra) -> Reply:
    url = f"{upstream.url}/oss/{task_id}.png?Expires=1700000000&OSSAccessKeyId=x&Signature=y"
    results = [{"orig_prompt": "p", "actual_prompt": "改写后的提示词", "url": url}, *extra.pop("more", [])]
    return task("SUCCEEDED", task_id, results=results, **extra)


def png_at(upstream, task_id: str = "t-1") -> None:
    upstream.route("GET", f"/oss/{task_id}.png", Reply(200, [("Content-Type", "image/png")], body=PNG))


def requests_to(upstream, path: str) -> list:
    return [r for r in upstream.requests if r.path.startswith(path)]


# --- 25 ---------------------------------------------------------------------------------------------


def test_it_runs_pending_running_succeeded_and_stores_the_png(upstream, dashscope, alice, conversation, run_worker):
    upstream.route("POST", CREATE, created())
    polls = (task("PENDING"), task("RUNNING"), task("RUNNING"), succeeded(upstream))
    upstream.route("GET", "/bj/api/v1/tasks/t-1", *polls)
    png_at(upstream)
    job = request_image(alice, conversation, "李白月下独酌")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE and job.task_id == "t-1" and job.submissions == 1
    with job.file.open("rb") as f:
        assert f.read() == PNG
    assert job.actual_prompt.startswith("李白月下独酌") and "圆领袍衫" in job.actual_prompt
    assert job.revised_prompt == "改写后的提示词"
    [create] = requests_to(upstream, CREATE)
    assert create.headers["x-dashscope-async"] == "enable"
    assert create.headers["authorization"] == f"Bearer {SITE_KEY}"
    body = create.json()
    assert body["model"] == "wan2.2-t2i-flash"
    assert body["parameters"]["n"] == 1 and body["parameters"]["size"] == "1024*1024"
    assert body["input"]["prompt"] == job.actual_prompt and "西装" in body["input"]["negative_prompt"]
    assert len(requests_to(upstream, "/bj/api/v1/tasks/")) == 4
    [download] = requests_to(upstream, "/oss/")
    assert "authorization" not in download.headers and "Signature=y" in download.query
    assert not upstream.unscripted


def test_it_polls_on_a_growing_schedule_with_an_injected_sleep(upstream):
    upstream.route("GET", "/api/v1/tasks/t-1", task("PENDING"), task("RUNNING"), task("RUNNING"), succeeded(upstream))
    sleeps: list[float] = []
    with httpx.Client() as http:
        backend = DashScopeBackend(_config(upstream), http)
        state = wait_for_task(backend, "t-1", interval=2.0, max_interval=4.0, deadline=1e12, first_wait=2.0,
                              sleep=sleeps.append)
    assert state.done and state.urls[0].startswith(upstream.url + "/oss/t-1.png")
    assert sleeps == [2.0, 2.0, 3.0, 4.0]


def test_the_native_base_keeps_the_region_host():
    intl = "https://dashscope-intl.aliyuncs.com"
    assert native_base(intl + "/compatible-mode/v1") == intl + "/api/v1"
    assert native_base("https://dashscope.aliyuncs.com/compatible-mode/v1/") == "https://dashscope.aliyuncs.com/api/v1"


# --- 26 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "message", "kind"), [
    ("DataInspectionFailed", "Input data may contain inappropriate content.", "moderation"),
    ("InvalidParameter", "Input data size is invalid.", "bad_request"),
])
def test_a_failed_task_fails_the_job_without_a_new_submission(upstream, dashscope, alice, conversation, run_worker,
                                                               code, message, kind):
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", task("RUNNING"), task("FAILED", code=code, message=message))
    job = request_image(alice, conversation, "长安城的街景")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == kind
    assert job.error_message and "Input data" not in job.error_message  # the user sees our words
    assert len(requests_to(upstream, CREATE)) == 1 and job.submissions == 1


# --- 27 ---------------------------------------------------------------------------------------------


def test_a_partial_failure_stores_the_image_and_records_a_warning(upstream, dashscope, alice, conversation, run_worker):
    more = [{"code": "InternalError.Timeout", "message": "An internal timeout error has occured during execution"}]
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream, more=more, task_metrics={"TOTAL": 2}))
    png_at(upstream)
    job = request_image(alice, conversation, "李白泛舟")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE and job.file
    assert "InternalError.Timeout" in job.warning


# --- 28 ---------------------------------------------------------------------------------------------


def test_an_unknown_task_is_expired(upstream, dashscope, alice, conversation, run_worker):
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", task("UNKNOWN"))
    job = request_image(alice, conversation, "黄鹤楼")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "expired" and "24 小时" in job.error_message
    assert len(requests_to(upstream, CREATE)) == 1


# --- 29 ---------------------------------------------------------------------------------------------


def test_the_poll_deadline_keeps_the_task_and_a_retry_resumes_it(upstream, dashscope, alice, conversation, run_worker):
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", task("RUNNING"), path_prefix=False, repeat=True)
    job = request_image(alice, conversation, "赤壁夜战")

    run_worker(poll_deadline=0.3, poll_interval=0.05, poll_max_interval=0.05)

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "poll_timeout" and job.task_id == "t-1"
    polls = len(requests_to(upstream, "/bj/api/v1/tasks/"))
    assert 2 <= polls <= 8

    upstream._routes.clear()
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream))
    png_at(upstream)
    resumed = media_job_retry(alice, job)
    assert resumed.pk == job.pk and resumed.status == MediaJob.Status.GENERATING
    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE and job.submissions == 1
    assert len(requests_to(upstream, CREATE)) == 1  # the same task, never a new one


def test_the_backend_deadline_error_carries_the_task_id(upstream):
    upstream.route("GET", "/api/v1/tasks/t-9", task("RUNNING", "t-9"), repeat=True)
    clock = iter(range(100)).__next__
    with httpx.Client() as http, pytest.raises(ImageError) as caught:
        wait_for_task(DashScopeBackend(_config(upstream), http), "t-9", interval=2.0, max_interval=2.0, deadline=6.0,
                      sleep=lambda s: None, clock=clock)
    assert caught.value.kind == "poll_timeout" and caught.value.task_id == "t-9"
    assert not requests_to(upstream, "/api/v1/services/")


# --- 30 ---------------------------------------------------------------------------------------------


def test_an_invalid_key_at_create_is_not_retried(upstream, dashscope, alice, conversation, run_worker):
    upstream.route("POST", CREATE, json_reply(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided.",
                                                    "request_id": "r-401"}))
    job = request_image(alice, conversation, "庐山瀑布")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "auth"
    assert len(requests_to(upstream, CREATE)) == 1 and not requests_to(upstream, "/bj/api/v1/tasks/")


def test_a_rate_limited_create_is_retried_and_then_polled(upstream, dashscope, alice, conversation, run_worker,
                                                          monkeypatch):
    monkeypatch.setattr("chat.images.backends.backoff_delay", lambda retries, hint: 0.01)
    throttled = {"code": "Throttling.RateQuota", "request_id": "r-429",
                 "message": "Requests rate limit exceeded, please try again later."}
    upstream.route("POST", CREATE, json_reply(429, throttled), created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream))
    png_at(upstream)
    job = request_image(alice, conversation, "敬亭山")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE
    assert len(requests_to(upstream, CREATE)) == 2 and len(requests_to(upstream, "/bj/api/v1/tasks/")) == 1


def test_the_async_header_is_always_sent_and_its_absence_is_refused(upstream):
    tasks = DashScopeTasks(upstream, prefix="/api/v1")
    refused = httpx.post(upstream.url + "/api/v1" + CREATE_PATH, json={"parameters": {"n": 1, "size": "1024*1024"}})
    assert refused.status_code == 403 and "synchronous" in refused.json()["message"]
    with httpx.Client() as http:
        task_id = DashScopeBackend(_config(upstream), http).submit(ImageRequest("李白", size="768*1344"))
    assert task_id in tasks.tasks and tasks.rejected == ["no async header"]


# --- 31 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404])
def test_an_expired_result_link_is_not_regenerated(upstream, dashscope, alice, conversation, run_worker, status):
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream))
    upstream.route("GET", "/oss/t-1.png", Reply(status, [("Content-Type", "application/xml")], body=b"<Error/>"))
    job = request_image(alice, conversation, "峨眉山月")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "result_expired"
    assert len(requests_to(upstream, CREATE)) == 1 and len(requests_to(upstream, "/oss/")) == 1


def test_a_result_host_outside_the_allowlist_is_refused(upstream, dashscope, alice, conversation, run_worker, settings):
    settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS = [".aliyuncs.com"]  # the default: OSS only
    url = f"http://localhost:{upstream.port}/oss/t-1.png"  # the same server under another name: not the key's host
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", task("SUCCEEDED", results=[{"url": url}]))
    job = request_image(alice, conversation, "蜀道")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "refused_url"
    # The message says which setting would allow it.
    assert "localhost" in job.error_message and "IMAGE_DOWNLOAD_ALLOWED_HOSTS" in job.error_message
    assert not requests_to(upstream, "/oss/")


def test_a_site_keys_own_host_serves_its_pictures_without_extra_settings(upstream, dashscope, alice, conversation,
                                                                         run_worker, settings):  # fmt: skip
    # A site-wide key at a local server (the operator's choice): its result links on that host download.
    settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS = [".aliyuncs.com"]
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream))
    png_at(upstream)
    job = request_image(alice, conversation, "蜀道")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE and len(requests_to(upstream, "/oss/")) == 1


def test_a_users_own_key_gets_no_such_allowance(upstream, alice, conversation, run_worker, settings):
    from accounts.models import ApiCredential, CredentialKind, CredentialStatus

    settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS = [".aliyuncs.com"]
    settings.USER_BASE_URL_ALLOWED_HOSTS = [f"127.0.0.1:{upstream.port}"]
    own = ApiCredential(owner=alice, kind=CredentialKind.DASHSCOPE, label="mine", status=CredentialStatus.VALID,
                        base_url=f"{upstream.url}/bj/compatible-mode/v1")
    own.set_key("sk-own0123456789abcdef")
    own.save()
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", succeeded(upstream))
    png_at(upstream)
    job = request_image(alice, conversation, "蜀道")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "refused_url"
    assert not requests_to(upstream, "/oss/")


def test_an_allowlisted_result_domain_must_still_resolve_publicly(upstream, dashscope, alice, conversation,
                                                                 run_worker, settings, fake_dns):  # fmt: skip
    # The name is OSS's, the address is loopback: a listed domain does not vouch for where it points.
    settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS = [".aliyuncs.com"]
    fake_dns.script("result.oss-cn-beijing.aliyuncs.com", ["127.0.0.1"])
    url = f"http://result.oss-cn-beijing.aliyuncs.com:{upstream.port}/oss/t-1.png?Signature=y"
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1", task("SUCCEEDED", results=[{"url": url}]))
    png_at(upstream)
    job = request_image(alice, conversation, "蜀道")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "refused_url"
    assert not requests_to(upstream, "/oss/")


# --- 32 ---------------------------------------------------------------------------------------------


def test_transient_poll_errors_are_retried_on_the_same_task(upstream, dashscope, alice, conversation, run_worker,
                                                            monkeypatch):
    monkeypatch.setattr("chat.images.backends.backoff_delay", lambda retries, hint: 0.01)
    upstream.route("POST", CREATE, created())
    upstream.route("GET", "/bj/api/v1/tasks/t-1",
                   json_reply(500, {"code": "InternalError", "message": "An internal error has occured"}),
                   Reply(status=None, end="reset"),
                   Reply(502, [("Content-Type", "text/html")], body="<html>502 Bad Gateway</html>"),
                   Reply(status=None, end="reset"),
                   succeeded(upstream))
    png_at(upstream)
    job = request_image(alice, conversation, "将进酒")

    run_worker()

    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE
    assert len(requests_to(upstream, CREATE)) == 1 and len(requests_to(upstream, "/bj/api/v1/tasks/")) == 5


def _config(upstream) -> BackendConfig:
    return BackendConfig(kind="dashscope", base_url=upstream.url + "/api/v1", api_key=SITE_KEY,
                         model="wan2.2-t2i-flash", allowed_hosts=("127.0.0.1",))
