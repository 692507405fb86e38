"""Resuming only the training a checkpoint came from (training.checkpoints)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.training.conftest import write_image
from training.checkpoints import DATA_CHANGED, MAY_CHANGE_ON_RESUME, ResumeMismatch, check_resumable
from training.config import TrainConfig
from training.data import data_fingerprint
from training.trainer import train


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_resume_refuses_other_settings_or_data_but_may_run_longer(tiny_models, pairs_folder, tmp_path):
    """A changed β or a changed image is refused with what changed; a longer max_steps continues."""
    data = shutil.copytree(pairs_folder, tmp_path / "data")
    first = TrainConfig(
        model=str(tiny_models["unet"]),
        data=str(data),
        output_dir=str(tmp_path / "run"),
        method="simpo",
        loss_space="latent",
        batch_size=2,
        max_steps=2,
        checkpoint_every=1,
        validation_every=0,
    )
    train(first)  # leaves checkpoints/step-1
    resume = {**first.to_dict(), "resume": "latest"}

    with pytest.raises(
        ResumeMismatch,
        match=r"settings differ from the checkpoint's \(beta 100\.0 then, 50\.0 now; pixel_beta",
    ):
        train(TrainConfig(**{**resume, "beta": 50.0}))

    longer = train(TrainConfig(**{**resume, "max_steps": 3, "checkpoint_every": 0, "tensorboard": True}))
    assert longer.steps == 3
    assert [line["step"] for line in metrics(tmp_path / "run") if "loss" in line] == [1, 2, 3]

    write_image(data / "images/0w.png", seed=999)
    message = DATA_CHANGED.format(
        folder=tmp_path / "run/checkpoints/step-1", saved=longer.data_hash, now=data_fingerprint(data)
    )
    with pytest.raises(ResumeMismatch, match=re.escape(message)):
        train(TrainConfig(**resume))


def test_only_the_listed_settings_may_change():
    """Every field outside MAY_CHANGE_ON_RESUME is compared; the listed ones are not."""
    config = TrainConfig(model="m", data="d", output_dir="o").to_dict()
    state = {"step": 4, "config": config, "data_hash": "h"}
    moved = {**config, "output_dir": "elsewhere", "max_steps": 500, "data": "moved", "resume": "latest"}
    check_resumable(Path("ckpt"), state, moved, "h")
    assert {"seed", "learning_rate", "method", "model", "mixed_precision", "lora_rank"}.isdisjoint(
        MAY_CHANGE_ON_RESUME
    )
    for name, value in [("seed", 1), ("learning_rate", 1e-3), ("mixed_precision", "bf16")]:
        with pytest.raises(ResumeMismatch, match=name):
            check_resumable(Path("ckpt"), state, {**config, name: value}, "h")


def test_a_model_folder_named_by_its_content_hash_may_move():
    """Weights a worker fetched from storage lie in its own cache folder, named by their
    content hash: another worker's copy of the same hash continues the run; another hash,
    or a moved folder of any other name, is another model."""
    digest, other = "ab" * 32, "cd" * 32
    config = TrainConfig(model=f"/worker-1/cache/{digest}", data="d", output_dir="o").to_dict()
    state = {"step": 4, "config": config, "data_hash": "h"}
    check_resumable(Path("ckpt"), state, {**config, "model": f"/elsewhere/cache/{digest}"}, "h")
    for model in (f"/worker-1/cache/{other}", "/worker-1/cache/base", digest[:63]):
        with pytest.raises(ResumeMismatch, match="model"):
            check_resumable(Path("ckpt"), state, {**config, "model": model}, "h")
    named = {**config, "model": "/models/sd15"}
    with pytest.raises(ResumeMismatch, match="model"):
        check_resumable(Path("ckpt"), {**state, "config": named}, {**named, "model": "/moved/sd15"}, "h")
