"""Run in a subprocess against PostgreSQL (DATABASE_URL): the recall index and memory services,
the same calls as on SQLite. Exits non-zero on any failure."""

import os
import sys

import django

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
django.setup()

from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from chat import services  # noqa: E402
from chat.recall import index  # noqa: E402
from chat.recall.memories import memories_delete, memory_add, memory_update  # noqa: E402
from chat.recall.recall import recall_for, relevant_memories  # noqa: E402
from personas.models import Persona  # noqa: E402

assert connection.vendor == "postgresql", connection.vendor
alice = User.objects.create_user("alice-pg", password="x" * 12)
bob = User.objects.create_user("bob-pg", password="x" * 12)
li_bai = Persona.objects.get(slug="li-bai")
du_fu = Persona.objects.get(slug="du-fu")

wine, _ = memory_add(owner=alice, persona=li_bai, content="用户不喝酒，只喝茶")
city, _ = memory_add(owner=alice, persona=li_bai, content="用户住在杭州西湖边")
profile, _ = memory_add(owner=alice, persona=None, content="请称用户为林老师")
memory_add(owner=bob, persona=li_bai, content="鲍勃住在杭州西湖边")

assert [m.pk for m in relevant_memories(alice, li_bai.pk, "西湖的景致如何")] == [city.pk]
assert [m.pk for m in relevant_memories(alice, li_bai.pk, "酒")] == [wine.pk]  # one character
assert [m.pk for m in relevant_memories(alice, du_fu.pk, "林老师")] == [profile.pk]  # the shared profile
assert relevant_memories(alice, du_fu.pk, "西湖") == []  # 李白's memory stays with 李白
memory_update(memory=city, content="用户住在苏州")
assert relevant_memories(alice, li_bai.pk, "西湖") == []
assert [m.pk for m in relevant_memories(alice, li_bai.pk, "苏州园林")] == [city.pk]

earlier = services.conversation_start(owner=alice, persona=li_bai)
asked = services.message_add_user(conversation=earlier, text="互联网是何物？")
services.reply_save(conversation=earlier, parent=asked, content="此物吾未之闻也。", status="complete")
now = services.conversation_start(owner=alice, persona=li_bai)
recalled = recall_for(alice, now, li_bai.pk, "上回说的互联网")
assert recalled.message_ids == [asked.pk], recalled
assert recall_for(bob, services.conversation_start(owner=bob, persona=li_bai), li_bai.pk, "互联网").exchanges == []

# A scene's message belongs to both figures: 杜甫 recalls what was said to 李白 and him together.
scene = services.conversation_start(owner=alice, persona=li_bai, guests=[du_fu])
said = services.message_add_user(conversation=scene, text="二位可曾同游梁宋？")
later = services.conversation_start(owner=alice, persona=du_fu)
assert recall_for(alice, later, du_fu.pk, "梁宋之游").message_ids == [said.pk]

# The search box: every word must match, Chinese substrings, every figure, only the owner's.
from chat.search import message_hits  # noqa: E402

services.message_add_user(conversation=services.conversation_start(owner=bob, persona=li_bai), text="黄鹤楼在武昌")
crane = services.message_add_user(conversation=later, text="我下个月带学生去黄鹤楼")
assert [h.message.pk for h in message_hits(alice, "鹤楼")] == [crane.pk]
assert [h.message.pk for h in message_hits(alice, "学生 黄鹤楼")] == [crane.pk]
assert message_hits(alice, "黄鹤楼 长城") == [] and message_hits(alice, "楼黄") == []
assert [h.message.pk for h in message_hits(alice, "梁宋")] == [said.pk]
assert [h.message.content for h in message_hits(bob, "黄鹤楼")] == ["黄鹤楼在武昌"]

memories_delete(memories=alice.memories.all())
assert index.search(index.MEMORY, [index.scope(alice.pk, li_bai.pk)], "苏州", 5) == []
print("postgres recall ok")
