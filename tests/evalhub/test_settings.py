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
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL",
    "PROXY_COUNT",
    "CACHE_URL",
    "API_RATE_ANNOTATOR",
    "API_RATE_RESEARCHER",
    "API_RATE_ANONYMOUS",
    "EVALHUB_MAX_JSON_DEPTH",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_LOCKOUT_MINUTES",
    "EVALHUB_ENV_FILE",
)

# A key as `secrets.token_urlsafe(50)` makes one: long and varied enough for Django.
STRONG_KEY = "k3Yq-9vT_xW2mZ8rL5pN1sD7fH4jB6cG0aE-uR9tY2wQ5eI8oP"

# The production environment of README's Configuration section, security lines included.
PRODUCTION_ENV = {
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "evalhub.example.org",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}

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
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": settings.SECURE_HSTS_PRELOAD,
    "CACHE": settings.CACHES["default"],
    "RATES": settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
    "NUM_PROXIES": settings.REST_FRAMEWORK["NUM_PROXIES"],
    "AXES_FAILURE_LIMIT": settings.AXES_FAILURE_LIMIT,
    "AXES_COOLOFF_SECONDS": settings.AXES_COOLOFF_TIME.total_seconds(),
    "EVALHUB_MAX_JSON_DEPTH": settings.EVALHUB_MAX_JSON_DEPTH,
    "DEMO_SEED_ALLOWED": settings.DEMO_SEED_ALLOWED,
}))
"""


def load_settings(var_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a child process whose environment holds only ``env``'s config."""
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    # No dotenv file either, unless the test names one (a developer's `.env` holds DEBUG=1).
    clean.update(DJANGO_SETTINGS_MODULE="evalhub.settings", EVALHUB_VAR_DIR=str(var_dir), EVALHUB_ENV_FILE="")
    clean.update(env)
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
    """Without DEBUG, a strong SECRET_KEY starts it with secure cookies and no host allowed by
    default; HTTPS redirect and HSTS wait for their variables."""
    loaded = settings_with(tmp_path, SECRET_KEY=STRONG_KEY)
    assert (loaded["DEBUG"], loaded["SECRET_KEY"]) == (False, STRONG_KEY)
    assert loaded["SESSION_COOKIE_SECURE"] is True and loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["ALLOWED_HOSTS"] == []
    assert (loaded["SECURE_SSL_REDIRECT"], loaded["SECURE_HSTS_SECONDS"]) == (False, 0)
    assert loaded["DEMO_SEED_ALLOWED"] is False


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("x", "1 characters"),
        (STRONG_KEY[:49], "49 characters"),
        ("ab" * 30, "2 of them different"),
        ("django-insecure-" + STRONG_KEY, "'django-insecure-' prefix"),
    ],
)
def test_it_refuses_to_start_with_a_weak_secret_key(tmp_path, key, why):
    """Without DEBUG, a key under 50 characters, of fewer than 5 different ones, or with
    Django's insecure prefix stops the start with a message saying why and how to make one."""
    result = load_settings(tmp_path, SECRET_KEY=key)
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is too weak" in result.stderr
    assert why in result.stderr and "secrets.token_urlsafe(50)" in result.stderr


def test_a_dotenv_file_sets_what_the_environment_leaves_unset(tmp_path):
    """`make demo`'s `.env` (DEBUG=1) lets a command start with nothing in the environment;
    a variable the environment sets wins over the file's."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local\nDEBUG=1\nALLOWED_HOSTS=demo.test\n")
    loaded = settings_with(tmp_path, EVALHUB_ENV_FILE=str(dotenv))
    assert (loaded["DEBUG"], loaded["ALLOWED_HOSTS"]) == (True, ["demo.test"])
    loaded = settings_with(tmp_path, EVALHUB_ENV_FILE=str(dotenv), DEBUG="0", SECRET_KEY=STRONG_KEY)
    assert (loaded["DEBUG"], loaded["ALLOWED_HOSTS"]) == (False, ["demo.test"])


def test_a_missing_dotenv_file_is_no_error(tmp_path):
    """No `.env` (a deployment, CI): the environment alone decides."""
    result = load_settings(tmp_path, EVALHUB_ENV_FILE=str(tmp_path / "absent.env"))
    assert "SECRET_KEY is not set" in result.stderr


def test_a_short_secret_key_is_fine_for_development(tmp_path):
    """With DEBUG=1 any key will do."""
    assert settings_with(tmp_path, DEBUG="1", SECRET_KEY="dev")["SECRET_KEY"] == "dev"


def test_https_settings_come_from_the_environment(tmp_path):
    """The redirect, HSTS and its two switches are turned on by their variables."""
    loaded = settings_with(tmp_path, **PRODUCTION_ENV)
    assert loaded["SECURE_SSL_REDIRECT"] is True and loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and loaded["SECURE_HSTS_PRELOAD"] is True


def test_cookies_are_not_secure_in_development(tmp_path):
    """DEBUG=1 serves plain HTTP on localhost, so its cookies cannot be secure-only."""
    loaded = settings_with(tmp_path, DEBUG="1")
    assert (loaded["SESSION_COOKIE_SECURE"], loaded["CSRF_COOKIE_SECURE"]) == (False, False)
    assert loaded["DEMO_SEED_ALLOWED"] is True


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    """`manage.py check --deploy` finds nothing to warn about with DEBUG=0, a 50-character key
    and README's production variables."""
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    clean.update(DJANGO_SETTINGS_MODULE="evalhub.settings", EVALHUB_VAR_DIR=str(tmp_path), **PRODUCTION_ENV)
    assert len(PRODUCTION_ENV["SECRET_KEY"]) == 50
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


# ---------------------------------------------------------------- rates, cache, lockout


def test_rates_and_limits_have_defaults(tmp_path):
    """Without variables: 3000/min per annotator, 240/min per researcher, 60/min per anonymous
    address, JSON 32 deep, 10 failed log-ins lock for 15 minutes, a per-process cache."""
    loaded = settings_with(tmp_path, SECRET_KEY=STRONG_KEY)
    assert loaded["RATES"] == {"annotator": "3000/min", "researcher": "240/min", "anon": "60/min"}
    assert (loaded["EVALHUB_MAX_JSON_DEPTH"], loaded["NUM_PROXIES"]) == (32, 0)
    assert (loaded["AXES_FAILURE_LIMIT"], loaded["AXES_COOLOFF_SECONDS"]) == (10, 15 * 60)
    assert loaded["CACHE"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_the_default_annotator_rate_carries_the_load_test(tmp_path):
    """The bench runs 32 bots at about 25 calls a second each (1,500 a minute) without DEBUG;
    the annotator rate leaves them twice that."""
    number, period = settings_with(tmp_path, SECRET_KEY=STRONG_KEY)["RATES"]["annotator"].split("/")
    assert int(number) >= 2 * 25 * 60 and period == "min"


def test_development_runs_without_rates_unless_set(tmp_path):
    """With DEBUG no rate applies by default (the test suite's users share ids within a
    minute); a variable still sets one."""
    assert set(settings_with(tmp_path, DEBUG="1")["RATES"].values()) == {None}
    assert settings_with(tmp_path, DEBUG="1", API_RATE_ANNOTATOR="5/s")["RATES"]["annotator"] == "5/s"


def test_rates_and_limits_come_from_the_environment(tmp_path):
    """Each rate, the lockout and the cache are set by their variables; `off` lifts a rate."""
    loaded = settings_with(
        tmp_path,
        DEBUG="1",
        API_RATE_ANNOTATOR="100/s",
        API_RATE_RESEARCHER="off",
        API_RATE_ANONYMOUS="5/hour",
        LOGIN_FAILURE_LIMIT="5",
        LOGIN_LOCKOUT_MINUTES="60",
        CACHE_URL="redis://cache.internal:6379/1",
        PROXY_COUNT="1",
    )
    assert loaded["RATES"] == {"annotator": "100/s", "researcher": None, "anon": "5/hour"}
    assert (loaded["AXES_FAILURE_LIMIT"], loaded["AXES_COOLOFF_SECONDS"]) == (5, 3600)
    assert loaded["CACHE"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/1",
    }
    assert loaded["NUM_PROXIES"] == 1


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("API_RATE_ANNOTATOR", "lots", "API_RATE_ANNOTATOR must be a rate like 100/min"),
        ("CACHE_URL", "memcached://x", "CACHE_URL must be empty or a redis:// URL"),
    ],
)
def test_a_bad_rate_or_cache_url_fails_naming_the_variable(tmp_path, variable, value, message):
    """A typo stops the start with the variable's name."""
    result = load_settings(tmp_path, DEBUG="1", **{variable: value})
    assert result.returncode != 0 and message in result.stderr


def test_a_debug_value_that_is_not_a_boolean_fails_naming_debug(tmp_path):
    """DEBUG=maybe is a configuration error, not a silent False."""
    result = load_settings(tmp_path, DEBUG="maybe", SECRET_KEY=STRONG_KEY)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be a boolean" in result.stderr
    assert "'maybe'" in result.stderr


def test_allowed_hosts_are_read_from_a_comma_list(tmp_path):
    """ALLOWED_HOSTS takes comma-separated names, spaces and blanks dropped."""
    loaded = settings_with(tmp_path, SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS=" evalhub.example.org, 10.0.0.5 ,,")
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
