"""What a diffusers pipeline folder is, read from its ``model_index.json`` as plain JSON.

No torch here: the web app asks a model version's family (to check its weights folder
before it queues a job) without loading any model. The two families:

- ``unet``: Stable Diffusion 1.5 style, its denoiser in the ``unet`` subfolder;
- ``dit``: PixArt-α style, its denoiser in the ``transformer`` subfolder.
"""

import json
from pathlib import Path

# Family → the pipeline part (and subfolder) that holds its denoiser.
DENOISER_PART = {"unet": "unet", "dit": "transformer"}
FAMILIES = tuple(DENOISER_PART)
FAMILY_NAMES = {"unet": "U-Net", "dit": "DiT"}

NOT_A_PIPELINE = "{path} is not a diffusers pipeline folder (no model_index.json)"
NO_DENOISER = "{path}: model_index.json names neither a 'unet' nor a 'transformer'"
UNREADABLE_INDEX = "{path}: model_index.json is not a JSON object ({error})"


class ModelLoadError(ValueError):
    pass


def pipeline_family(path: str | Path) -> str:
    """The family of the pipeline saved at ``path``.

    Args:
        path: a diffusers pipeline folder.

    Returns:
        ``unet`` or ``dit``, by the denoiser part its ``model_index.json`` names.

    Raises:
        ModelLoadError: the folder has no readable ``model_index.json``, or it names no
            denoiser.
    """
    index_file = Path(path) / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(NOT_A_PIPELINE.format(path=path))
    try:
        text = index_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(UNREADABLE_INDEX.format(path=path, error=exc)) from exc
    return index_family(text, path)


def index_family(text: str, path: str | Path) -> str:
    """The family a ``model_index.json``'s text names (``path``: where it was read, for the
    errors); :func:`pipeline_family` for an index read from elsewhere than a folder."""
    try:
        index = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(UNREADABLE_INDEX.format(path=path, error=exc)) from exc
    if not isinstance(index, dict):
        raise ModelLoadError(UNREADABLE_INDEX.format(path=path, error=type(index).__name__))
    for family, part in DENOISER_PART.items():
        if part in index:
            return family
    raise ModelLoadError(NO_DENOISER.format(path=path))
