from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _signup(client, username="dufu", password="Spring-view-757", password2=None, **extra):
    return client.post(
        reverse("accounts:signup"),
        {"username": username, "password1": password, "password2": password2 or password},
        **extra,
    )


def test_it_signs_up_and_logs_in(client):
    response = _signup(client)
    assert response.status_code == 302
    assert User.objects.filter(username="dufu").exists()
    assert client.get(reverse("accounts:settings")).status_code == 200


def test_it_rejects_a_duplicate_username_in_chinese(client, alice):
    response = _signup(client, username="alice")
    assert response.status_code == 200
    assert "该用户名已被使用" in response.content.decode()
    assert User.objects.filter(username="alice").count() == 1


@pytest.mark.parametrize("password", ["12345678", "password", "abc"])
def test_it_rejects_weak_passwords_in_chinese(client, password):
    response = _signup(client, password=password)
    body = response.content.decode()
    assert response.status_code == 200
    assert not User.objects.filter(username="dufu").exists()
    assert any(word in body for word in ("密码", "太短", "太常见", "全都是数字"))
    assert "This password" not in body


def test_it_rejects_mismatched_passwords(client):
    response = _signup(client, password2="Different-pass-1")
    assert response.status_code == 200
    assert not User.objects.filter(username="dufu").exists()


def test_it_throttles_signups_per_ip(client, settings):
    settings.SIGNUP_LIMIT_PER_HOUR = 3
    for i in range(3):
        _signup(client, username=f"bad{i}", password="x")  # invalid, but still counted
    response = _signup(client, username="late")
    assert response.status_code == 429
    assert "注册过于频繁" in response.content.decode()
    assert not User.objects.filter(username="late").exists()


def test_it_logs_in_and_out(client, alice):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:settings")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("accounts:settings")).status_code == 302


def test_it_shows_a_chinese_message_for_a_wrong_password(client, alice):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.content.decode()


def test_it_locks_username_and_ip_after_five_failures(client, alice):
    for _ in range(5):
        client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    # The right password no longer helps while the lock holds.
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()
    assert "15 分钟" in response.content.decode()


def test_it_does_not_lock_after_four_failures(client, alice):
    for _ in range(4):
        client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_the_lock_is_per_ip(client, alice):
    for _ in range(5):
        client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    response = client.post(
        reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302


def test_the_lock_expires_after_fifteen_minutes(client, alice):
    import time_machine

    with time_machine.travel("2026-01-01 08:00 +0000", tick=False) as traveller:
        for _ in range(5):
            client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
        traveller.shift(14 * 60)
        assert client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}).status_code == 429
        traveller.shift(2 * 60)
        assert client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}).status_code == 302


def _fail_with_names(client, count, **extra):
    for i in range(count):
        client.post(reverse("accounts:login"), {"username": f"guess{i}", "password": "wrong"}, **extra)


def test_one_ip_trying_thirty_names_is_locked_out(client, alice):
    _fail_with_names(client, 30, REMOTE_ADDR="10.9.9.9")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 429
    assert "登录尝试过多" in response.content.decode()
    assert "15 分钟" in response.content.decode()
    other = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.10")
    assert other.status_code == 302


def test_twenty_nine_failed_names_do_not_lock_the_ip(client, alice):
    _fail_with_names(client, 29, REMOTE_ADDR="10.9.9.9")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 302


def test_a_success_does_not_clear_the_ip_count(client, alice):
    _fail_with_names(client, 29, REMOTE_ADDR="10.9.9.9")
    client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    client.post(reverse("accounts:logout"))
    _fail_with_names(client, 1, REMOTE_ADDR="10.9.9.9")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 429


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, alice):
    for i in range(30):
        client.post(reverse("accounts:login"), {"username": f"guess{i}", "password": "wrong"},
                    REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD},
                           REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_behind_a_proxy_the_client_cannot_pick_its_address(client, alice, settings):
    settings.TRUST_X_FORWARDED_FOR = True
    # The proxy appends the address it saw; whatever the client sent comes before it.
    for i in range(30):
        client.post(reverse("accounts:login"), {"username": f"guess{i}", "password": "wrong"},
                    REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.7")
    locked = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD},
                         REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")
    assert locked.status_code == 429
    other = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD},
                        REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert other.status_code == 302


def test_it_changes_the_password(alice_client, alice):
    response = alice_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "Moon-over-hill-9", "new_password2": "Moon-over-hill-9"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("Moon-over-hill-9")


def test_password_change_needs_login(client):
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_the_login_page_is_chinese(client):
    body = client.get(reverse("accounts:login")).content.decode()
    assert 'lang="zh-Hans"' in body
    assert "用户名" in body and "密码" in body
