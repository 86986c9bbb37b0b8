"""`{{ n|grouped }}`: 12345 → 12,345. The zh-hans locale groups by nothing, which is hard to read for tokens."""

from django import template

register = template.Library()


@register.filter
def grouped(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""
