from __future__ import annotations

import pytest
from django.urls import reverse

from personas.models import Persona
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db


def test_the_gallery_lists_published_figures(client):
    make_persona("li-bai", "李白", dynasty="tang")
    make_persona("hidden", "隐士", published=False)
    body = client.get(reverse("personas:gallery")).content.decode()
    assert "李白" in body and "隐士" not in body


def test_the_gallery_filters_by_dynasty(client):
    make_persona("li-bai", "李白", dynasty="tang")
    make_persona("su-shi", "苏轼", dynasty="northern_song", birth_year=1037, death_year=1101)
    body = client.get(reverse("personas:gallery"), {"dynasty": "tang"}).content.decode()
    assert "李白" in body and "苏轼" not in body
    # The filter lists only dynasties that have figures, in order, in Chinese.
    assert body.index(">唐<") < body.index(">北宋<")


def test_the_gallery_filter_swaps_only_the_grid_for_htmx(client):
    make_persona("li-bai", "李白", dynasty="tang")
    response = client.get(reverse("personas:gallery"), {"dynasty": "tang"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="figure-browser"')
    assert 'href="?dynasty=tang" hx-get="?dynasty=tang" aria-current="true"' in body
    assert "李白" in body and "<html" not in body


def test_an_unknown_dynasty_shows_everything(client):
    make_persona("li-bai", "李白", dynasty="tang")
    body = client.get(reverse("personas:gallery"), {"dynasty": "<script>"}).content.decode()
    assert "李白" in body and "<script>" not in body


def test_the_gallery_uses_a_constant_number_of_queries(client, django_assert_max_num_queries):
    for i in range(10):
        make_persona(f"p{i}", f"人物{i}")
    with django_assert_max_num_queries(4):
        client.get(reverse("personas:gallery"))


def test_the_profile_shows_the_figure_and_a_start_button(client):
    persona = make_persona("li-bai", "李白", dynasty="tang")
    body = client.get(reverse("personas:profile", args=[persona.slug])).content.decode()
    assert "李白" in body
    assert "开始对话" in body
    assert reverse("chat:start", args=["li-bai"]) in body
    assert "供奉翰林" in body  # a life stage
    stages = body[body.index('<ol class="stages">'):body.index("</ol>", body.index('<ol class="stages">'))]
    for stage in persona.life_stages.all():
        assert stages.count(stage.name) == 1, stage.name  # named once, then its years
        assert f"<strong>{stage.name}</strong>（{stage.years}）" in stages
    assert "《新唐书》" in body  # a knowledge citation


def test_an_unpublished_or_unknown_profile_is_a_404(client):
    make_persona("hidden", "隐士", published=False)
    assert client.get(reverse("personas:profile", args=["hidden"])).status_code == 404
    assert client.get(reverse("personas:profile", args=["nobody"])).status_code == 404


def test_the_profile_shows_key_status_to_a_signed_in_user(alice_client):
    make_persona("li-bai", "李白")
    body = alice_client.get(reverse("personas:profile", args=["li-bai"])).content.decode()
    assert "尚未配置可用的密钥" in body


def test_start_needs_login_and_explains_a_missing_key(client, alice_client):
    make_persona("li-bai", "李白")
    url = reverse("chat:start", args=["li-bai"])
    assert client.get(url).status_code == 302
    body = alice_client.get(url).content.decode()
    assert "尚未配置可用的密钥" in body


def test_figure_text_is_escaped(client):
    make_persona("x", "<img src=x onerror=alert(1)>")
    body = client.get(reverse("personas:gallery")).content.decode()
    assert "<img src=x" not in body


def test_persona_ordering_is_chronological():
    make_persona("late", "晚", birth_year=1472, death_year=1529)
    make_persona("early", "早", birth_year=-551, death_year=-479)
    assert list(Persona.objects.values_list("slug", flat=True)) == ["early", "late"]


def test_the_404_page_is_chinese(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "此页不存" in response.content.decode()
