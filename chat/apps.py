from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = "对话"

    def ready(self) -> None:
        from chat.media import signals  # noqa: F401  (connects the receivers)
        from chat.speech import signals as speech_signals  # noqa: F401
        from chat.vision import signals as vision_signals  # noqa: F401
