"""The training package stays independent of the web app."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def loaded_after(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` in ``sys.modules`` after running ``imports`` in a fresh
    interpreter."""
    code = (
        "import json, sys\n"
        f"{imports}\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in {packages!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_importing_training_loads_no_django_or_celery():
    """`import training` (and its submodules) leaves django and celery out of sys.modules."""
    every_module = (
        "import pkgutil, importlib, training\n"
        "for m in pkgutil.walk_packages(training.__path__, 'training.'):\n"
        "    if m.name != 'training.__main__':\n"
        "        importlib.import_module(m.name)"
    )
    assert loaded_after(every_module, ("django", "celery", "evalhub", "annotate")) == []


def test_what_the_web_app_imports_from_training_loads_no_torch():
    """The option declarations and the pipeline-folder reader (and the config built on
    them) are plain Python: a web process that imports them never loads torch."""
    imports = (
        "import training, training.options, training.pipelines, training.config, "
        "training.run_files, training.stopping, training.checkpoints"
    )
    assert loaded_after(imports, ("torch", "diffusers", "transformers", "accelerate")) == []


def test_the_command_lines_help_loads_no_torch():
    """``python -m training --help`` (and each command's) is built from the declarations
    alone; torch loads only for a run."""
    for argv in (["--help"], ["train", "--help"], ["generate", "--help"]):
        imports = (
            "import contextlib, io\n"
            "from training.cli import build_parser\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    build_parser().parse_args({argv!r})"
        )
        assert loaded_after(imports, ("torch", "diffusers")) == [], argv
