from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Django stores permission names in English ("Can add 历史人物"); curators read them in the admin.
_VERBS = {"add": "添加", "change": "修改", "delete": "删除", "view": "查看"}


def name_permissions_in_chinese(sender=None, using="default", **kwargs) -> None:
    from django.contrib.auth.models import Permission
    from django.utils import translation

    with translation.override("zh-hans"):
        for permission in Permission.objects.using(using).select_related("content_type").filter(name__startswith="Can "):
            verb = permission.codename.split("_", 1)[0]
            model = permission.content_type.model_class()
            if verb not in _VERBS or model is None:
                continue
            name = f"可{_VERBS[verb]}{model._meta.verbose_name}"[:255]
            if permission.name != name:
                Permission.objects.using(using).filter(pk=permission.pk).update(name=name)


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "账户与密钥"

    def ready(self) -> None:
        post_migrate.connect(name_permissions_in_chinese, dispatch_uid="accounts.permission_names")
