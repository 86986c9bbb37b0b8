from django.apps import AppConfig


class PersonasConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "personas"
    verbose_name = "历史人物"
