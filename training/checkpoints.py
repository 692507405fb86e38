"""Finding a run's checkpoints, and deciding whether a run may resume from one.

A checkpoint folder ``output_dir/checkpoints/step-K/`` holds accelerate's saved state and
``training_state.json``: the step, the resolved config and the data's content hash. A run
resumes only from a checkpoint of the same training: same data content, and the same
settings except those in :data:`MAY_CHANGE_ON_RESUME`, which do not change what a step
computes, and the same model (a folder named by its content hash may lie elsewhere).
"""

import json
import re
from pathlib import Path

STATE_FILE = "training_state.json"

# Where the run writes and how long it runs (a longer max_steps or more epochs reshape a
# linear or cosine schedule's remaining steps), how often it saves and renders samples
# (renders and replica checks change no weight), how it loads data and saves
# memory (gradient checkpointing recomputes the same values), what it logs to. The data
# path may change (a moved folder); its content hash may not.
MAY_CHANGE_ON_RESUME = frozenset(
    {
        "resume",
        "max_steps",
        "output_dir",
        "data",
        "checkpoint_every",
        "checkpoints_keep",
        "dataloader_workers",
        "tensorboard",
        "epochs",
        "validation_every",
        "validation_prompts",
        "validation_steps",
        "validation_prompt_file",
        "verify_replicas",
        "gradient_checkpointing",
        "vae_gradient_checkpointing",
    }
)

SETTINGS_CHANGED = (
    "cannot resume from {folder}: settings differ from the checkpoint's ({changes}); "
    "only {allowed} may change on resume"
)
DATA_CHANGED = (
    "cannot resume from {folder}: the training data changed since it was written "
    "(content hash {saved} then, {now} now)"
)


class ResumeMismatch(ValueError):
    pass


# A SHA-256 in hex: the name of a folder of weights stored by content (evalhub.jobs.weights).
CONTENT_HASH_FOLDER = re.compile(r"[0-9a-f]{64}")


def _same_model(then: object, now: object) -> bool:
    """Whether two ``model`` settings name the same weights: equal, or both folders named by
    the same content hash (a worker's cache of weights fetched from storage: each worker
    keeps it in its own cache folder, so the path moves between workers, its content not)."""
    if then == now:
        return True
    if not (isinstance(then, str) and isinstance(now, str)):
        return False
    name = Path(then).name
    return bool(CONTENT_HASH_FOLDER.fullmatch(name)) and name == Path(now).name


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder named ``step-K``; ``None`` for any other name."""
    prefix, _, step = name.partition("-")
    return int(step) if prefix == "step" and step.isdigit() else None


def checkpoints_in(output_dir: Path) -> list[Path]:
    """The complete checkpoints under ``output_dir``, oldest first."""
    found = [
        p
        for p in (output_dir / "checkpoints").glob("step-*")
        if checkpoint_step(p.name) is not None and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: checkpoint_step(p.name))


def find_checkpoint(output_dir: Path, resume: str) -> Path:
    """The folder ``resume`` names: ``latest`` under ``output_dir``, or a checkpoint path."""
    if resume == "latest":
        found = checkpoints_in(output_dir)
        if not found:
            raise FileNotFoundError(f"resume=latest but {output_dir / 'checkpoints'} holds no checkpoint")
        return found[-1]
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint folder (no {STATE_FILE})")
    return path


def read_state(folder: Path) -> dict:
    return json.loads((folder / STATE_FILE).read_text())


def write_state(folder: Path, step: int, config: dict, data_hash: str) -> None:
    state = {"step": step, "config": config, "data_hash": data_hash}
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2))


def check_resumable(folder: Path, state: dict, config: dict, data_hash: str) -> None:
    """Raise :class:`ResumeMismatch` unless ``config`` (resolved, as a dict) and the data's
    ``data_hash`` continue the training ``state`` was saved from."""
    saved = state.get("config", {})
    changes = [
        f"{name} {saved.get(name)!r} then, {config.get(name)!r} now"
        for name in sorted((set(saved) | set(config)) - MAY_CHANGE_ON_RESUME)
        if saved.get(name) != config.get(name)
        and not (name == "model" and _same_model(saved.get(name), config.get(name)))
    ]
    if changes:
        raise ResumeMismatch(
            SETTINGS_CHANGED.format(
                folder=folder, changes="; ".join(changes), allowed=", ".join(sorted(MAY_CHANGE_ON_RESUME))
            )
        )
    if state.get("data_hash") != data_hash:
        raise ResumeMismatch(DATA_CHANGED.format(folder=folder, saved=state.get("data_hash"), now=data_hash))
