"""Weights for the demo's model versions, so ``make demo`` can run the whole loop
(preferences → training → new version → generation → study) on a CPU in about a minute.

They are a tiny Stable-Diffusion-style pipeline with random weights (``training.tiny``);
the demo's images were drawn procedurally, not by this network, which exists only so the
training and generation jobs have a real diffusers folder to start from.
"""

from pathlib import Path

from django.conf import settings

from evalhub.catalog.models import ModelVersion

DEMO_WEIGHTS = "demo-tiny-unet"
DEMO_VERSIONS = ("demo-base", "demo-sft")


def demo_weights_seed() -> Path:
    """Build the tiny pipeline once and point the demo versions without weights at it."""
    from training.tiny import build_tiny_pipeline

    folder = Path(settings.VAR_DIR) / "models" / DEMO_WEIGHTS
    if not (folder / "model_index.json").is_file():
        build_tiny_pipeline("unet", folder, seed=0)
    ModelVersion.objects.filter(name__in=DEMO_VERSIONS, weights_uri="").update(weights_uri=str(folder))
    return folder
