"""Production's static files (``collectstatic`` with DEBUG=0): the labeling page's modules
import each other by their hashed names, so a release never pairs new and old code."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

from evalhub.env import subprocess_env

REPO = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"""\bfrom\s+["'](\./[^"']+)["']|\bimport\s+["'](\./[^"']+)["']""")


def test_the_labeling_modules_import_their_hashed_names(tmp_path):
    env = subprocess_env(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        EVALHUB_VAR_DIR=str(tmp_path),
        EVALHUB_ENV_FILE="",
        DJANGO_SETTINGS_MODULE="evalhub.settings",
    )
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    root = tmp_path / "static"
    paths = json.loads((root / "staticfiles.json").read_text())["paths"]
    modules = sorted(name for name in paths if name.startswith("annotate/") and name.endswith(".js"))
    assert "annotate/labeling.js" in modules and "annotate/loupe.js" in modules
    seen = 0
    for name in modules:
        hashed = root / paths[name]
        for match in IMPORT.finditer(hashed.read_text()):
            target = (hashed.parent / (match.group(1) or match.group(2))).resolve()
            relative = target.relative_to(root.resolve()).as_posix()
            assert relative in paths.values(), f"{paths[name]} imports {relative}, not a hashed name"
            assert target.is_file()
            seen += 1
    assert seen >= 5
