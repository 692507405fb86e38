"""Settings come from the environment: each configuration is loaded in a fresh process,
so what a deployment sets (or forgets) is exactly what the settings module sees."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from evalhub.env import env_bool, env_int, env_list, env_str

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables that change what the settings module decides; none may leak in from the
# environment the tests run in.
CONFIG_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "ALLOWED_HOSTS",
    "EVALHUB_VAR_DIR",
    "MEDIA_ROOT",
    "DATABASE_PREPARED_STATEMENTS",
)

PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "ENGINE": db["ENGINE"], "NAME": str(db["NAME"]), "HOST": db.get("HOST"), "PORT": db.get("PORT"),
    "USER": db.get("USER"), "OPTIONS": db.get("OPTIONS", {}),
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
    "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
}))
"""


def load_settings(var_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a child process whose environment holds only ``env``'s config."""
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    clean.update(DJANGO_SETTINGS_MODULE="evalhub.settings", EVALHUB_VAR_DIR=str(var_dir), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def settings_with(var_dir: Path, **env: str) -> dict:
    """The settings a process started with ``env`` ends up with."""
    result = load_settings(var_dir, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- security


def test_it_refuses_to_start_without_a_secret_key_outside_debug(tmp_path):
    """With neither DEBUG nor SECRET_KEY, importing the settings fails naming SECRET_KEY."""
    result = load_settings(tmp_path)
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_it_starts_in_debug_without_a_secret_key(tmp_path):
    """DEBUG=1 alone is enough for a developer's machine, with local hosts allowed."""
    loaded = settings_with(tmp_path, DEBUG="1")
    assert loaded["DEBUG"] is True
    assert loaded["SECRET_KEY"]
    assert loaded["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]


def test_it_starts_in_production_with_a_secret_key(tmp_path):
    """Without DEBUG, a SECRET_KEY starts it with secure cookies and no host allowed by default."""
    loaded = settings_with(tmp_path, SECRET_KEY="s3cret")
    assert (loaded["DEBUG"], loaded["SECRET_KEY"]) == (False, "s3cret")
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["ALLOWED_HOSTS"] == []


def test_a_debug_value_that_is_not_a_boolean_fails_naming_debug(tmp_path):
    """DEBUG=maybe is a configuration error, not a silent False."""
    result = load_settings(tmp_path, DEBUG="maybe", SECRET_KEY="s3cret")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be a boolean" in result.stderr
    assert "'maybe'" in result.stderr


def test_allowed_hosts_are_read_from_a_comma_list(tmp_path):
    """ALLOWED_HOSTS takes comma-separated names, spaces and blanks dropped."""
    loaded = settings_with(tmp_path, SECRET_KEY="s3cret", ALLOWED_HOSTS=" evalhub.example.org, 10.0.0.5 ,,")
    assert loaded["ALLOWED_HOSTS"] == ["evalhub.example.org", "10.0.0.5"]


# ---------------------------------------------------------------- database


def test_the_default_database_is_sqlite_under_the_var_dir(tmp_path):
    """With no DATABASE_URL, the database is a SQLite file in EVALHUB_VAR_DIR."""
    loaded = settings_with(tmp_path, DEBUG="1")
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["NAME"] == str(tmp_path.resolve() / "db.sqlite3")
    assert loaded["MEDIA_ROOT"] == str(tmp_path.resolve() / "media")


def test_database_url_switches_to_postgresql(tmp_path):
    """A postgres:// DATABASE_URL selects the PostgreSQL backend and its database."""
    loaded = settings_with(tmp_path, DEBUG="1", DATABASE_URL="postgres://u@h:5432/db")
    assert loaded["ENGINE"] == "django.db.backends.postgresql"
    assert (loaded["NAME"], loaded["HOST"], loaded["PORT"], loaded["USER"]) == ("db", "h", 5432, "u")


def test_postgresql_connections_allow_prepared_statements_unless_turned_off(tmp_path):
    """The hot path's prepared statements need psycopg's threshold; a pooler that cannot keep
    them turns it off with DATABASE_PREPARED_STATEMENTS=0."""
    url = "postgres://u@h:5432/db"
    assert settings_with(tmp_path, DEBUG="1", DATABASE_URL=url)["OPTIONS"] == {"prepare_threshold": 0}
    off = settings_with(tmp_path, DEBUG="1", DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0")
    assert "prepare_threshold" not in off["OPTIONS"]
    assert "prepare_threshold" not in settings_with(tmp_path, DEBUG="1")["OPTIONS"]


# ---------------------------------------------------------------- Celery


def test_the_default_broker_is_the_filesystem_under_the_var_dir(tmp_path):
    """With no CELERY_BROKER_URL, the broker and results live in folders it creates."""
    loaded = settings_with(tmp_path, DEBUG="1")
    celery_dir = tmp_path.resolve() / "celery"
    assert loaded["CELERY_BROKER_URL"].startswith("filesystem://")
    assert loaded["CELERY_RESULT_BACKEND"] == f"file://{celery_dir / 'results'}"
    assert all((celery_dir / folder).is_dir() for folder in ("queue", "processed", "results"))


def test_a_redis_broker_url_switches_broker_and_result_backend(tmp_path):
    """CELERY_BROKER_URL=redis://… is used for both, and no queue folders are made."""
    url = "redis://127.0.0.1:6379/3"
    loaded = settings_with(tmp_path, DEBUG="1", CELERY_BROKER_URL=url)
    assert (loaded["CELERY_BROKER_URL"], loaded["CELERY_RESULT_BACKEND"]) == (url, url)
    assert not (tmp_path / "celery").exists()


# ---------------------------------------------------------------- evalhub.env helpers


@pytest.mark.parametrize("raw", ["1", "true", "Yes", " ON "])
def test_env_bool_reads_true_values(monkeypatch, raw):
    """The usual spellings of true are true."""
    monkeypatch.setenv("EVALHUB_TEST_FLAG", raw)
    assert env_bool("EVALHUB_TEST_FLAG") is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_reads_false_values(monkeypatch, raw):
    """The usual spellings of false, and an empty value, are false."""
    monkeypatch.setenv("EVALHUB_TEST_FLAG", raw)
    assert env_bool("EVALHUB_TEST_FLAG", default=True) is False


def test_env_bool_falls_back_to_its_default_when_unset(monkeypatch):
    """An unset variable gives the default."""
    monkeypatch.delenv("EVALHUB_TEST_FLAG", raising=False)
    assert env_bool("EVALHUB_TEST_FLAG", default=True) is True


def test_env_bool_names_the_variable_on_a_bad_value(monkeypatch):
    """A value that is not a boolean raises ImproperlyConfigured naming the variable and value."""
    monkeypatch.setenv("EVALHUB_TEST_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"^EVALHUB_TEST_FLAG must be a boolean .*'maybe'"):
        env_bool("EVALHUB_TEST_FLAG")


def test_env_int_reads_an_integer_and_defaults_when_blank(monkeypatch):
    """A number is parsed; an empty value gives the default."""
    monkeypatch.setenv("EVALHUB_TEST_NUMBER", "42")
    assert env_int("EVALHUB_TEST_NUMBER", 7) == 42
    monkeypatch.setenv("EVALHUB_TEST_NUMBER", "  ")
    assert env_int("EVALHUB_TEST_NUMBER", 7) == 7


def test_env_int_names_the_variable_on_a_bad_value(monkeypatch):
    """A value that is not an integer raises ImproperlyConfigured naming the variable and value."""
    monkeypatch.setenv("EVALHUB_TEST_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match=r"^EVALHUB_TEST_NUMBER must be an integer, got 'ten'$"):
        env_int("EVALHUB_TEST_NUMBER", 7)


def test_env_list_and_env_str(monkeypatch):
    """Lists split on commas without blanks; strings fall back to their default when unset."""
    monkeypatch.setenv("EVALHUB_TEST_LIST", "a, b,,c ")
    monkeypatch.delenv("EVALHUB_TEST_MISSING", raising=False)
    assert env_list("EVALHUB_TEST_LIST") == ["a", "b", "c"]
    assert env_list("EVALHUB_TEST_MISSING", default=["x"]) == ["x"]
    assert env_str("EVALHUB_TEST_MISSING", "fallback") == "fallback"


# ---------------------------------------------------------------- health


def test_healthz_answers_ok(client, db):
    """/healthz answers 200 with JSON saying the web process and its database are fine."""
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["ok"] is True
