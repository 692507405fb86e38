"""The web process never imports torch: the training stack is for the workers only."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter (this test process has long loaded torch). argv[1]: a
# pipeline folder for the launch path's weights check.
WEB_PROCESS = """
import importlib, importlib.util, json, sys
import django

django.setup()
from django.apps import apps
from django.urls import get_resolver, resolve, reverse

import evalhub.urls


def views(patterns):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from views(pattern.url_patterns)
        else:
            yield pattern.callback


for module in sorted({view.__module__ for view in views(get_resolver().url_patterns)}):
    importlib.import_module(module)
for app in apps.get_app_configs():
    for part in ("views", "api", "forms", "services", "selectors"):
        if importlib.util.find_spec(f"{app.name}.{part}"):
            importlib.import_module(f"{app.name}.{part}")
for url in ("/jobs/new/training/", "/api/jobs/training/", "/api/model-versions/1/compare/"):
    resolve(url)
resolve(reverse("jobs:job_list"))

# What a launch does before it queues anything: the option checks and the weights folder.
from evalhub.catalog.models import ModelVersion
from evalhub.jobs import services
from evalhub.jobs.api import TrainingOptionFields
from evalhub.jobs.forms import GenerationOptionsForm, TrainingOptionsForm

options = {"method": "dpo", "loss_space": "latent", "mixed_precision": "no", "beta": "5"}
assert TrainingOptionsForm(data=options).is_valid()
assert TrainingOptionFields(data=options).is_valid()
assert GenerationOptionsForm(data={"steps": "20"}).is_valid()
services._weights_folder(ModelVersion(name="v", weights_uri=sys.argv[1]))

heavy = ("torch", "diffusers", "transformers", "accelerate")
print(json.dumps(sorted({n.split(".")[0] for n in sys.modules if n.split(".")[0] in heavy})))
"""


def test_the_web_process_loads_no_torch(tmp_path):
    """The URL conf, every view, form, API and service module, a few resolved URLs, the
    launch forms' checks and the weights-folder check leave torch, diffusers,
    transformers and accelerate unloaded."""
    (tmp_path / "model_index.json").write_text(json.dumps({"unet": ["diffusers", "UNet2DConditionModel"]}))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evalhub.settings", "DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
