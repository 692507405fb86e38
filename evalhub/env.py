"""Typed readers for the environment: the one place EvalHub reads ``os.environ``.

Each helper raises ``ImproperlyConfigured`` on a value it cannot parse, so a typo in a
deployment fails at start-up with the variable's name instead of misbehaving later.
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """The variable as a string, ``default`` when unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    """The variable as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}")


def env_int(name: str, default: int) -> int:
    """The variable as an integer."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """The variable as a comma-separated list, blanks dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


_RATE = re.compile(r"^\s*\d+\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")


def env_rate(name: str, default: str | None) -> str | None:
    """The variable as a request rate for DRF's throttles, ``N/s``, ``N/min``, ``N/hour``
    or ``N/day``; ``off`` (or an empty value) for no limit."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in {"", "off", "none"}:
        return None
    if not _RATE.match(raw):
        raise ImproperlyConfigured(
            f"{name} must be a rate like 100/min (per s, min, hour or day) or off, got {raw!r}"
        )
    return raw.replace(" ", "")


def env_cache(name: str) -> dict:
    """The default cache from a URL: unset or empty for the local-memory cache (one per
    process), ``redis://host:port/db`` (or ``rediss://``) for Django's Redis cache,
    shared by every process that names it."""
    url = os.environ.get(name, "").strip()
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(f"{name} must be empty or a redis:// URL, got {url!r}")


def subprocess_env(**overrides: str) -> dict[str, str]:
    """A copy of this process's environment with ``overrides``, for child processes."""
    return {**os.environ, **overrides}


def load_env_file(path: str) -> bool:
    """Fill the variables the environment leaves unset from a dotenv file, if there is one
    (python-dotenv); the environment always wins. ``make demo`` writes ``.env`` with
    ``DEBUG=1`` so that ``manage.py`` commands run on a developer's machine as the README
    shows them; a deployment sets its variables in the environment and has no such file."""
    from dotenv import load_dotenv

    return bool(path) and load_dotenv(path, override=False)
