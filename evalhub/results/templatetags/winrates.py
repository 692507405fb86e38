"""Template filters that print shares and p-values exactly as the exports do."""

from django import template

from evalhub.results import winrate_formats

register = template.Library()


@register.filter
def share_percent(share) -> str:
    return winrate_formats.percent(share)


@register.filter
def share_interval(share) -> str:
    return winrate_formats.interval(share)


@register.filter
def sign_test_p(result) -> str:
    return winrate_formats.p_value(result)
