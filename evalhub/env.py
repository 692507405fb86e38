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


# An S3-compatible object store (AWS S3, MinIO, Ceph, R2) is chosen by naming its bucket;
# credentials come the way boto3 finds them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
# profile, an instance role), or EVALHUB_S3_ACCESS_KEY / EVALHUB_S3_SECRET_KEY.
S3_BACKEND = "storages.backends.s3.S3Storage"
IMAGE_S3_BACKEND = "evalhub.image_s3_storage.ImageS3Storage"  # one GET per image read
S3_ADDRESSING_STYLES = ("", "auto", "path", "virtual")


def env_storages() -> dict[str, dict]:
    """Django's ``default`` storage (images and uploads) and EvalHub's ``artifacts`` storage
    (exports, checkpoints, trained weights, job metrics and samples).

    Without ``EVALHUB_S3_BUCKET``, both are folders of this machine: ``MEDIA_ROOT`` and
    ``EVALHUB_JOBS_DIR`` (read when used, so a test's settings move them). With it, both
    are prefixes of that bucket (``EVALHUB_S3_PREFIX``, then ``media/`` and ``jobs/``),
    reached at ``EVALHUB_S3_ENDPOINT_URL`` (empty for AWS) in ``EVALHUB_S3_REGION``.
    Objects are private (no ACL is set) and never linked: the app streams what it serves,
    so no URL names a key.
    """
    bucket = os.environ.get("EVALHUB_S3_BUCKET", "").strip()
    if not bucket:
        return {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "artifacts": {"BACKEND": "evalhub.storage.JobsFolderStorage"},
        }
    style = os.environ.get("EVALHUB_S3_ADDRESSING_STYLE", "").strip().lower()
    if style not in S3_ADDRESSING_STYLES:
        raise ImproperlyConfigured(
            f"EVALHUB_S3_ADDRESSING_STYLE must be one of auto, path, virtual, got {style!r}"
        )
    prefix = os.environ.get("EVALHUB_S3_PREFIX", "").strip().strip("/")
    options = {
        "bucket_name": bucket,
        "endpoint_url": os.environ.get("EVALHUB_S3_ENDPOINT_URL", "").strip() or None,
        "region_name": os.environ.get("EVALHUB_S3_REGION", "").strip() or None,
        "access_key": os.environ.get("EVALHUB_S3_ACCESS_KEY") or None,
        "secret_key": os.environ.get("EVALHUB_S3_SECRET_KEY") or None,
        "addressing_style": style if style and style != "auto" else None,
        "default_acl": None,
        "querystring_auth": True,  # a URL, if anything ever asked for one, would expire
    }
    # Images are small and stored under fresh random names; artifacts are replaced in place
    # (a run's metrics, the newest checkpoint) and can be gigabytes, which a download
    # spools to disk past 16 MiB instead of holding in memory.
    per_alias = {
        "default": {"location": "media", "file_overwrite": False},
        "artifacts": {"location": "jobs", "file_overwrite": True, "max_memory_size": 16 * 1024 * 1024},
    }
    backends = {"default": IMAGE_S3_BACKEND, "artifacts": S3_BACKEND}
    return {
        alias: {
            "BACKEND": backends[alias],
            "OPTIONS": {**options, **extra, "location": "/".join(filter(None, (prefix, extra["location"])))},
        }
        for alias, extra in per_alias.items()
    }


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
