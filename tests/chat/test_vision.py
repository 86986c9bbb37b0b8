"""Pictures shown to the figure (docs/vision.md): the checks, the owner-only upload and file views,
and what the prompt builder makes of them."""

from __future__ import annotations

import io
import json

import pytest
from django.urls import reverse
from PIL import Image

from accounts.models import ApiCredential, CredentialStatus
from chat import services
from chat.models import MessageImage
from chat.prompting import EARLIER_IMAGE_NOTE, IMAGE_TOKENS, VISION_NOTE, PromptInputs, Turn, build_prompt
from chat.quoting import MESSAGE, quote_user_data
from chat.vision import checks
from chat.vision.checks import ImageRejected, checked_image
from tests.personas.factories import make_persona

DATA_URL = "data:image/jpeg;base64,/9j/AAAA"


def picture(fmt: str = "PNG", size=(640, 480), mode="RGB", color=(30, 90, 60), **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


def decoded(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


# -- the checks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_it_keeps_a_valid_picture_as_a_fresh_jpeg(fmt):
    checked = checked_image(picture(fmt))
    image = decoded(checked.jpeg)
    assert image.format == "JPEG" and image.mode == "RGB"
    assert (checked.width, checked.height) == image.size == (640, 480)


def test_it_shrinks_a_large_picture_to_the_longest_side_kept():
    checked = checked_image(picture("JPEG", size=(4000, 3000)))
    assert (checked.width, checked.height) == (checks.MAX_SIDE, checks.MAX_SIDE * 3 // 4)


def test_it_drops_the_metadata_of_a_photo():
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    checked = checked_image(picture("JPEG", exif=exif.tobytes()))
    assert b"PhoneMaker" not in checked.jpeg and not decoded(checked.jpeg).getexif()


def test_a_transparent_png_is_laid_on_paper_not_black():
    checked = checked_image(picture("PNG", mode="RGBA", color=(0, 0, 0, 0)))
    assert decoded(checked.jpeg).getpixel((10, 10)) > (240, 240, 230)


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,  # a PNG signature, then nothing of a PNG
    b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    b"GIF89a-not-really",
    b"%PDF-1.7 a document",
])
def test_it_refuses_bytes_that_are_no_picture(data):
    with pytest.raises(ImageRejected, match="不是可以识别的图片"):
        checked_image(data)


def test_it_refuses_a_truncated_picture():
    with pytest.raises(ImageRejected, match="不是可以识别的图片"):
        checked_image(picture("PNG")[:300])


def test_it_refuses_a_format_outside_the_list():
    with pytest.raises(ImageRejected, match="不是可以识别的图片"):
        checked_image(picture("BMP"))


def test_it_refuses_too_many_pixels_before_decoding_them(monkeypatch):
    data = picture("PNG", size=(9000, 5000), mode="1", color=0)  # 45 megapixels in a few kB
    assert len(data) < 50_000
    decoded_any = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded_any.append(self))
    with pytest.raises(ImageRejected, match=r"图片尺寸太大了（9000×5000 像素）"):
        checked_image(data)
    assert decoded_any == []


def test_a_decompression_bomb_past_pillows_own_limit_is_refused():
    data = picture("PNG", size=(20000, 10000), mode="1", color=0)  # 200 megapixels
    with pytest.raises(ImageRejected, match="图片尺寸太大了"):
        checked_image(data)


def test_it_refuses_an_oversize_file(monkeypatch):
    monkeypatch.setattr(checks, "MAX_BYTES", 1000)
    with pytest.raises(ImageRejected, match="图片太大了"):
        checked_image(picture("PNG", size=(300, 300)) + b"\x00" * 1000)


def test_it_refuses_nothing_at_all():
    with pytest.raises(ImageRejected, match="没有收到图片"):
        checked_image(b"")


# -- the views -------------------------------------------------------------------------------------

@pytest.fixture
def conversation(alice):
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


@pytest.fixture
def vision_key(db):
    credential = ApiCredential(owner=None, kind="openai_compatible", label="站点", base_url="https://relay.example/v1",
                               status=CredentialStatus.VALID, is_default=True, vision_model="qwen-vl-max")
    credential.set_key("sk-site0123456789abcd")
    credential.save()
    return credential


def upload(client, conversation, data: bytes, name="shan-shui.png"):
    file = io.BytesIO(data)
    file.name = name
    return client.post(reverse("chat:attachment_create", args=[conversation.pk]), {"image": file})


@pytest.mark.django_db
def test_it_stores_an_upload_for_its_owner_and_serves_it_to_them(alice_client, alice, conversation, vision_key):
    response = upload(alice_client, conversation, picture("PNG"))
    assert response.status_code == 201
    body = response.json()
    image = MessageImage.objects.get(pk=body["id"])
    assert image.owner == alice and image.conversation == conversation and image.message is None
    assert image.image.name.startswith(f"attachments/{alice.pk}/") and image.image.name.endswith(".jpg")
    served = alice_client.get(body["url"])
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff" and served["Cache-Control"].startswith("private")
    assert decoded(b"".join(served.streaming_content)).format == "JPEG"


@pytest.mark.django_db
def test_bob_can_neither_fetch_nor_attach_to_alices_conversation(alice_client, bob_client, conversation, vision_key):
    url = upload(alice_client, conversation, picture("PNG")).json()["url"]
    assert bob_client.get(url).status_code == 404
    assert upload(bob_client, conversation, picture("PNG")).status_code == 404
    assert MessageImage.objects.count() == 1


@pytest.mark.django_db
def test_bobs_own_conversation_does_not_reach_alices_picture(alice_client, bob_client, bob, conversation, vision_key):
    image_id = upload(alice_client, conversation, picture("PNG")).json()["id"]
    bobs = services.conversation_start(owner=bob, persona=conversation.persona)
    assert bob_client.get(reverse("chat:attachment_file", args=[bobs.pk, image_id])).status_code == 404


@pytest.mark.django_db
def test_a_stranger_is_sent_to_log_in(client, conversation, vision_key):
    response = upload(client, conversation, picture("PNG"))
    assert response.status_code == 302 and MessageImage.objects.count() == 0


@pytest.mark.django_db
def test_the_upload_is_csrf_protected(alice, conversation, vision_key):
    from tests.conftest import client_for

    strict = client_for(alice)
    strict.handler.enforce_csrf_checks = True
    assert upload(strict, conversation, picture("PNG")).status_code == 403
    assert MessageImage.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "message"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "不是可以识别的图片"),
    (picture("PNG", size=(9000, 5000), mode="1", color=0), "图片尺寸太大了"),
])
def test_bad_input_gets_a_chinese_message_and_nothing_is_stored(alice_client, conversation, vision_key, data, message,
                                                                 settings):
    response = upload(alice_client, conversation, data)
    assert response.status_code == 400 and message in response.json()["error"]
    assert MessageImage.objects.count() == 0
    assert not list(settings.MEDIA_ROOT.rglob("*.jpg"))


@pytest.mark.django_db
def test_an_oversize_upload_is_refused_before_it_is_read(alice_client, conversation, vision_key, monkeypatch):
    monkeypatch.setattr("chat.vision.views.MAX_BYTES", 1000)
    response = upload(alice_client, conversation, picture("PNG") + b"\x00" * 70_000)
    assert response.status_code == 400 and "图片太大了" in response.json()["error"]
    assert MessageImage.objects.count() == 0


@pytest.mark.django_db
def test_without_a_vision_model_the_endpoint_refuses(alice_client, conversation, vision_key):
    vision_key.vision_model = ""
    vision_key.save()
    response = upload(alice_client, conversation, picture("PNG"))
    assert response.status_code == 400 and "当前密钥不支持识图" in response.json()["error"]
    assert MessageImage.objects.count() == 0


@pytest.mark.django_db
def test_the_page_disables_the_attach_button_without_a_vision_model(alice_client, conversation, vision_key):
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'id="chat-attach-button"' in page and "当前密钥不支持识图" not in page
    vision_key.vision_model = ""
    vision_key.save()
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert 'id="chat-attach-button"' not in page and 'id="chat-image"' not in page
    assert "当前密钥不支持识图" in page and "disabled aria-describedby=\"chat-attach-note\"" in page


@pytest.mark.django_db
def test_a_sent_picture_shows_in_its_bubble_on_reload(alice_client, alice, conversation, vision_key):
    image = MessageImage.objects.get(pk=upload(alice_client, conversation, picture("PNG")).json()["id"])
    message = services.message_add_user(conversation=conversation, text="<b>请看</b>这幅山水")
    MessageImage.objects.filter(pk=image.pk).update(message=message)
    page = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    url = reverse("chat:attachment_file", args=[conversation.pk, image.pk])
    assert f'<img src="{url}"' in page and "&lt;b&gt;请看&lt;/b&gt;" in page


@pytest.mark.django_db(transaction=True)
def test_deleting_the_conversation_deletes_the_picture_and_its_file(alice_client, conversation, vision_key):
    image = MessageImage.objects.get(pk=upload(alice_client, conversation, picture("PNG")).json()["id"])
    message = services.message_add_user(conversation=conversation, text="请看")
    MessageImage.objects.filter(pk=image.pk).update(message=message)
    storage, name = image.image.storage, image.image.name
    assert storage.exists(name)
    conversation.delete()
    assert MessageImage.objects.count() == 0 and not storage.exists(name)


# -- the prompt ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_new_message_carries_its_picture_as_an_image_part():
    persona = make_persona("li-bai", "李白")
    result = build_prompt(PromptInputs(persona=persona, new_message="此画如何？", image_url=DATA_URL, budget_tokens=8000))
    *_, note, last = result.messages
    assert note == {"role": "system", "content": VISION_NOTE}
    assert last == {"role": "user", "content": [
        {"type": "text", "text": quote_user_data("此画如何？", MESSAGE)},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
    ]}
    plain = build_prompt(PromptInputs(persona=persona, new_message="此画如何？", budget_tokens=8000))
    assert result.prompt_tokens >= plain.prompt_tokens + IMAGE_TOKENS
    assert VISION_NOTE not in json.dumps(plain.messages, ensure_ascii=False)


@pytest.mark.django_db
def test_an_earlier_picture_is_only_a_note():
    persona = make_persona("li-bai", "李白")
    turns = [Turn("user", "看这幅字", shown_image=True), Turn("assistant", "笔力遒劲。"), Turn("user", "再说说")]
    result = build_prompt(PromptInputs(persona=persona, turns=turns[:2], new_message="再说说", budget_tokens=8000))
    earlier = [m for m in result.messages if m["role"] == "user"][0]
    assert earlier["content"] == f"{EARLIER_IMAGE_NOTE}\n" + quote_user_data("看这幅字", MESSAGE)
    assert "image_url" not in json.dumps(result.messages)
