"""Template filters that print shares, alignment rates and p-values exactly as the exports do."""

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


@register.filter
def rate_percent(rate) -> str:
    """An alignment rate (or None) as the exports print it."""
    return winrate_formats.alignment_percent(rate)


@register.filter
def rate_interval(rate) -> str:
    """An alignment rate's 95% interval as the exports print a share's."""
    return "—" if rate is None else winrate_formats.interval(rate)
