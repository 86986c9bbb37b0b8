"""Websocket routes (the chat consumer arrives with the streaming-conversation work)."""

websocket_urlpatterns: list = []
