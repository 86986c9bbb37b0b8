"""chat 0016: a two-figure scene's partner becomes the salon's first seat, and back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("chat", "0015_speech")], [("chat", "0016_salon_seats")]


def _migrate(targets):
    """Chat to `targets`; the models as they are then, the other apps as they are now."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "chat"]
    return executor.loader.project_state([*targets, *others]).apps


def test_a_scene_keeps_its_second_figure():
    apps = _migrate(BEFORE)
    User = apps.get_model("accounts", "User")
    Persona = apps.get_model("personas", "Persona")
    Conversation = apps.get_model("chat", "Conversation")
    owner = User.objects.create(username="scener")
    li, du = (Persona.objects.create(slug=slug, name=name, dynasty="tang", birth_year=701, death_year=770,
                                     description="", first_mes="幸会。") for slug, name in (("li", "李白"), ("du", "杜甫")))
    scene = Conversation.objects.create(owner=owner, persona=li, partner=du)
    alone = Conversation.objects.create(owner=owner, persona=li)
    try:
        apps = _migrate(AFTER)
        SalonSeat = apps.get_model("chat", "SalonSeat")
        assert list(SalonSeat.objects.values_list("conversation_id", "persona_id", "position")) == [(scene.pk, du.pk, 1)]
        apps = _migrate(BEFORE)
        Conversation = apps.get_model("chat", "Conversation")
        assert Conversation.objects.get(pk=scene.pk).partner_id == du.pk
        assert Conversation.objects.get(pk=alone.pk).partner_id is None
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
