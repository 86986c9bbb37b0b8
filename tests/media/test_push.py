"""The page's socket turns a job push into a frame the card follows (static/js/chat.js media_job)."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from chat.notify import conversation_group
from tests.chat.test_consumer import connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_job_push_reaches_the_owners_open_page_as_ids_only(alice, conversation):
    communicator = await connect(alice, conversation.pk)
    await get_channel_layer().group_send(conversation_group(conversation.pk),
                                         {"type": "media.job", "job": 7, "status": "generating", "progress": 40})
    frame = await communicator.receive_json_from(timeout=10)
    assert frame == {"type": "media_job", "job": 7, "status": "generating"}
    await communicator.disconnect()
