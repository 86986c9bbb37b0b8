"""chat 0017: image jobs become media jobs in place, file, status and task id kept; and back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.chat.test_salon_migration import _migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("chat", "0016_salon_seats")], [("chat", "0017_media_jobs")]


def test_existing_image_jobs_become_media_jobs_without_loss():
    apps = _migrate(BEFORE)
    User, Persona = apps.get_model("accounts", "User"), apps.get_model("personas", "Persona")
    Conversation, ImageJob = apps.get_model("chat", "Conversation"), apps.get_model("chat", "ImageJob")
    owner = User.objects.create(username="painter")
    li = Persona.objects.create(slug="li", name="李白", dynasty="tang", birth_year=701, death_year=762,
                                description="", first_mes="幸会。")
    conversation = Conversation.objects.create(owner=owner, persona=li)
    done = ImageJob.objects.create(owner=owner, conversation=conversation, prompt="月下独酌", status="done",
                                   image=f"images/{owner.pk}/1-abc.jpg", task_id="t-1", submissions=1)
    waiting = ImageJob.objects.create(owner=owner, conversation=conversation, prompt="登黄鹤楼", status="generating",
                                      task_id="t-2", claimed_by="w")
    try:
        apps = _migrate(AFTER)
        MediaJob = apps.get_model("chat", "MediaJob")
        moved = MediaJob.objects.get(pk=done.pk)
        assert (moved.kind, moved.file.name, moved.mime, moved.status, moved.task_id, moved.submissions) == (
            "image", f"images/{owner.pk}/1-abc.jpg", "image/jpeg", "done", "t-1", 1)
        resumed = MediaJob.objects.get(pk=waiting.pk)
        assert (resumed.status, resumed.task_id, resumed.claimed_by, resumed.mime, resumed.params) == (
            "generating", "t-2", "w", "", {})
        apps = _migrate(BEFORE)
        assert apps.get_model("chat", "ImageJob").objects.get(pk=done.pk).image.name == f"images/{owner.pk}/1-abc.jpg"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
