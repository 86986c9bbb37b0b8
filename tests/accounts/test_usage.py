"""Usage on 设置 (the user's own only) and the curators' usage report and quotas in the admin."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiCredential, CredentialStatus, QuotaSettings, User, UserQuota
from chat import services
from chat.usage import site_usage, user_usage
from tests.chat.spending import spend
from tests.conftest import client_for
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

REPORT = reverse("admin:accounts_quotasettings_changelist")


@pytest.fixture
def libai(db):
    return make_persona("li-bai", "李白")


@pytest.fixture
def dufu(db):
    return make_persona("du-fu", "杜甫", birth_year=712, death_year=770)


def _key(owner=None, label="站点百炼") -> ApiCredential:
    credential = ApiCredential(owner=owner, kind="dashscope", label=label, status=CredentialStatus.VALID)
    credential.set_key("sk-usage0123456789abcd")
    credential.save()
    return credential


@pytest.fixture
def history(alice, bob, libai, dufu):
    """Alice: 1,200 tokens with 李白 today, 800 with 杜甫 today, 5,000 forty days ago; bob: 3,000 today."""
    site, own = _key(), _key(owner=alice, label="爱丽丝自己的钥匙")
    with_libai = services.conversation_start(owner=alice, persona=libai)
    with_dufu = services.conversation_start(owner=alice, persona=dufu)
    spend(with_libai, 1200, credential=site)
    spend(with_dufu, 800, credential=own)
    spend(with_libai, 5000, at=timezone.now() - dt.timedelta(days=40), credential=site)
    spend(services.conversation_start(owner=bob, persona=libai), 3000, credential=site)
    return {"site": site, "own": own}


@pytest.fixture
def curator_client(db) -> Client:
    call_command("makecurator", "curator", "--password", "Curate-the-past-1", stdout=io.StringIO())
    client = Client()
    assert client.login(username="curator", password="Curate-the-past-1")
    return client


# --- the user's own, on 设置 ---------------------------------------------------------------------------

def test_user_usage_counts_today_the_month_and_each_figure(alice, history):
    usage = user_usage(alice)
    assert usage.today == 2000
    assert {f["name"]: (f["tokens"], f["replies"]) for f in usage.figures} == {"李白": (1200, 1), "杜甫": (800, 1)}
    assert usage.month == 2000 and usage.month_replies == 2  # forty days ago is another month
    assert len(usage.days) == 30 and usage.days[-1].tokens == 2000 and usage.days[-1].date == timezone.localdate()


def test_a_scene_reply_counts_for_the_figure_who_spoke(alice, libai, dufu):
    scene = services.conversation_start(owner=alice, persona=libai, guests=[dufu])
    spend(scene, 300, speaker=dufu)
    assert [(f["name"], f["tokens"]) for f in user_usage(alice).figures] == [("杜甫", 300)]


def test_the_settings_page_shows_the_users_own_usage(alice_client, history):
    QuotaSettings.objects.create(pk=1, daily_token_quota=10_000)
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert 'id="usage"' in page and "<svg" in page
    assert "<strong>2,000</strong> token" in page  # today, and this month
    assert "<th scope=\"row\">李白</th><td>1</td><td>1,200</td>" in page
    assert "<strong>10,000</strong> token · 今日还剩 8,000" in page
    assert "3,000" not in page  # bob's tokens are his


def test_the_settings_page_says_when_the_quota_is_spent(alice, alice_client, history):
    UserQuota.objects.create(user=alice, daily_token_quota=1500)
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert "今日额度已用完" in page and "今日还剩 0" in page


def test_without_a_quota_the_page_says_no_limit(alice_client, history):
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert "<dt>每日额度</dt><dd>" in page and "<strong>不限</strong>" in page


def test_the_htmx_keys_partial_does_not_compute_usage(alice_client, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        response = alice_client.get(reverse("accounts:settings"), HTTP_HX_REQUEST="true")
    assert 'id="usage"' not in response.content.decode()


# --- the curators' report, in the admin ---------------------------------------------------------------

def test_site_usage_per_user_and_per_key(alice, bob, history):
    report = site_usage()
    assert report.total == 5000 and sum(d.tokens for d in report.days) == 5000
    assert [(u["username"], u["tokens"], u["today"]) for u in report.users] == [("bob", 3000, 3000),
                                                                                ("alice", 2000, 2000)]
    keys = {k["label"]: k["tokens"] for k in report.keys}
    assert keys == {"站点百炼（sk-…abcd）": 4200, "用户自带的密钥（合计）": 800}
    assert site_usage(days=90).total == 10_000
    assert site_usage(user_id=alice.pk).total == 2000
    assert site_usage(credential_id=history["own"].pk).total == 0  # a user's own key is never picked out


def test_a_curator_sees_the_report_with_its_chart(curator_client, history):
    response = curator_client.get(REPORT)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in page and 'class="chart-bar"' in page and "每日用量" in page
    assert ">bob</a>" in page and ">alice</a>" in page and "站点百炼（sk-…abcd）" in page
    assert "用户自带的密钥（合计）" in page and "爱丽丝自己的钥匙" not in page  # a user's key stays theirs
    assert "<script" not in page.split('id="content-main"')[1]


def test_the_report_narrows_to_one_user(curator_client, history):
    page = curator_client.get(REPORT, {"user": "alice", "days": 90}).content.decode()
    assert "共 7,000 token" in page and ">bob</a>" not in page
    page = curator_client.get(REPORT, {"user": "nobody"}).content.decode()
    assert "没有这个用户。" in page


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_a_user_or_a_staff_member_without_the_permission_cannot_see_it(alice, who, history):
    user = alice if who == "alice" else User.objects.create_user("staff", password="x", is_staff=True)
    response = client_for(user).get(REPORT)
    if who == "alice":
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    else:
        assert response.status_code == 403
    assert "bob" not in response.content.decode()


def test_a_curator_sets_the_site_default(curator_client):
    url = reverse("admin:accounts_quotasettings_change", args=[QuotaSettings.load().pk])
    response = curator_client.post(url, {"daily_token_quota": "20000"})
    assert response.status_code == 302 and QuotaSettings.load().daily_token_quota == 20000
    assert curator_client.get(reverse("admin:accounts_quotasettings_add")).status_code == 403


def test_a_curator_sets_a_users_quota_by_name(curator_client, alice):
    add = reverse("admin:accounts_userquota_add")
    assert 'value="alice"' in curator_client.get(add, {"user": "alice"}).content.decode()  # the report's link
    response = curator_client.post(add, {"user": "alice", "daily_token_quota": "500", "note": "试用"})
    assert response.status_code == 302 and UserQuota.objects.get(user=alice).daily_token_quota == 500
    refused = curator_client.post(add, {"user": "nobody", "daily_token_quota": "5"})
    assert "没有这个用户。" in refused.content.decode() and UserQuota.objects.count() == 1


def test_the_report_links_each_user_to_their_quota(curator_client, alice, history):
    page = curator_client.get(REPORT).content.decode()
    assert f'{reverse("admin:accounts_userquota_add")}?user=alice' in page
    quota = UserQuota.objects.create(user=alice, daily_token_quota=0)
    page = curator_client.get(REPORT).content.decode()
    assert reverse("admin:accounts_userquota_change", args=[quota.pk]) in page and "不限" in page
