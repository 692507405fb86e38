"""``seed_demo`` makes accounts with a public password (a staff one among them), so it
refuses to run outside development unless told the database is not a production one."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from evalhub.demo.management.commands.seed_demo import NOT_FOR_PRODUCTION

REPO_ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3Yq-9vT_xW2mZ8rL5pN1sD7fH4jB6cG0aE-uR9tY2wQ5eI8oP"


def test_it_refuses_to_run_without_debug(tmp_path):
    """`manage.py seed_demo` in a production environment (no DEBUG) stops with the reason."""
    env = {name: value for name, value in os.environ.items() if name not in ("DEBUG", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="evalhub.settings",
        EVALHUB_VAR_DIR=str(tmp_path),
        SECRET_KEY=STRONG_KEY,
        EVALHUB_ENV_FILE="",  # a developer's `.env` would bring DEBUG=1
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CommandError: seed_demo creates accounts with a public password" in result.stderr
    assert "--i-know-this-is-not-production" in result.stderr


def test_it_creates_nothing_when_it_refuses(db, settings):
    """Refused, it leaves the database as it was."""
    settings.DEMO_SEED_ALLOWED = False
    with pytest.raises(CommandError, match="^" + NOT_FOR_PRODUCTION.replace("(", r"\(").replace(")", r"\)")):
        call_command("seed_demo", size=16)
    assert not User.objects.exists()


def test_the_explicit_flag_lets_it_run_without_debug(db, settings):
    """--i-know-this-is-not-production seeds a staging database without DEBUG."""
    settings.DEMO_SEED_ALLOWED = False
    call_command("seed_demo", "--i-know-this-is-not-production", size=16, stdout=io.StringIO())
    assert User.objects.filter(username="researcher").exists()
