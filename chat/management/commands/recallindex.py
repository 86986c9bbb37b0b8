"""Rebuild the recall search index from the rows (after a change to chat/recall/tokens.py or index.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from chat.models import Memory, Message, SalonSeat
from chat.recall import index

BATCH = 2000


class Command(BaseCommand):
    help = "Rebuild the search index of memories and user messages that recall uses."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            index.clear()
            memories = Memory.objects.values_list("pk", "owner_id", "persona_id", "content").iterator(chunk_size=BATCH)
            count = self._put(index.MEMORY, ((pk, [index.scope(o, p)], text) for pk, o, p, text in memories))
            guests: dict[int, list[int]] = {}
            for conversation_id, persona_id in SalonSeat.objects.values_list("conversation_id", "persona_id"):
                guests.setdefault(conversation_id, []).append(persona_id)
            messages = (
                Message.objects.filter(role=Message.Role.USER)
                .values_list("pk", "conversation__owner_id", "conversation_id", "conversation__persona_id", "content")
                .iterator(chunk_size=BATCH)
            )
            rows = ((pk, [index.scope(o, figure) for figure in [p, *guests.get(c, ())]], text)
                    for pk, o, c, p, text in messages)
            count_messages = self._put(index.MESSAGE, rows)
        self.stdout.write(f"re-indexed {count} memories and {count_messages} user messages")

    def _put(self, table: str, rows) -> int:
        batch, total = [], 0
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                index.put(table, batch, new=True)
                total, batch = total + len(batch), []
        index.put(table, batch, new=True)
        return total + len(batch)
