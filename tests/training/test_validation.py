"""Validation samples while training, epochs as a run length, and what a run announces
(training.validation, training.trainer)."""

import json

import numpy as np
import pytest
from PIL import Image

from training.config import ConfigError, TrainConfig
from training.generate import render_images
from training.models import load_pipeline
from training.options import STEPS_OR_EPOCHS
from training.trainer import train

FAST = {
    "batch_size": 2,
    "validation_steps": 2,
    "validation_prompts": 2,
    "lora_rank": 4,
    "learning_rate": 1e-2,
}


def _lines(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def rendered(tiny_models, pairs_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("validated")
    config = TrainConfig(
        model=str(tiny_models["unet"]),
        data=str(pairs_folder),
        output_dir=str(out),
        method="dpo",
        loss_space="latent",
        max_steps=3,
        validation_every=2,
        tensorboard=True,
        **FAST,
    )
    return train(config), out


def test_renders_at_the_start_every_k_steps_and_at_the_end(rendered):
    _, out = rendered
    steps = sorted(p.name for p in (out / "samples").glob("step-*"))
    assert steps == ["step-000000", "step-000002", "step-000003"]
    for step in steps:
        assert sorted(p.name for p in (out / "samples" / step).iterdir()) == ["00.png", "01.png"]
    events = [line for line in _lines(out) if line.get("event") == "samples"]
    assert [(e["step"], e["folder"], e["images"]) for e in events] == [
        (0, "samples/step-000000", 2),
        (2, "samples/step-000002", 2),
        (3, "samples/step-000003", 2),
    ]
    prompts = json.loads((out / "samples/prompts.json").read_text())
    # The data's first two distinct captions, seeds from the run's seed.
    assert prompts == {"prompts": ["a shape 0", "a shape 1"], "seeds": [0, 1], "steps": 2, "guidance": 7.5}


def test_step_zero_is_the_start_model_with_fixed_seeds_and_training_changes_the_renders(
    rendered, tiny_models
):
    """Step 0 renders exactly what the start model draws for those prompts and seeds (DDIM,
    the family's guidance); the last step's renders differ: the model changed."""
    _, out = rendered
    pipe = load_pipeline(tiny_models["unet"])
    from diffusers import DDIMScheduler

    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    expected = render_images(pipe, "unet", ["a shape 0", "a shape 1"], [0, 1], 2, 7.5, 64)
    for index, image in enumerate(expected):
        start = _pixels(out / f"samples/step-000000/{index:02d}.png")
        assert np.abs(start - np.asarray(image, dtype=np.int16)).max() <= 1
        assert np.abs(start - _pixels(out / f"samples/step-000003/{index:02d}.png")).max() > 0


def test_renders_go_to_tensorboard(rendered):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = rendered
    events = EventAccumulator(str(out / "logs/evalhub"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Images("validation")] == [0, 2, 3]


def test_prompts_come_from_a_file_and_zero_turns_renders_off(tiny_models, pairs_folder, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cube\na blue ball\na green cone\n")
    options = dict(
        model=str(tiny_models["unet"]), data=str(pairs_folder), max_steps=1, method="sft", loss_space="latent"
    )
    train(TrainConfig(output_dir=str(tmp_path / "a"), validation_prompt_file=str(prompts), **options, **FAST))
    recorded = json.loads((tmp_path / "a/samples/prompts.json").read_text())
    assert recorded["prompts"] == ["a red cube", "a blue ball"]
    train(TrainConfig(output_dir=str(tmp_path / "b"), **options, **{**FAST, "validation_every": 0}))
    assert not (tmp_path / "b/samples").exists()
    assert not [line for line in _lines(tmp_path / "b") if line.get("event") == "samples"]


def test_epochs_set_the_run_length_and_the_run_says_so(tiny_models, pairs_folder, tmp_path, capsys):
    """4 pairs at 2 a step: an epoch is 2 steps, 3 epochs are 6; with accumulation 2, 3."""
    options = dict(
        model=str(tiny_models["unet"]), data=str(pairs_folder), method="simpo", loss_space="latent", epochs=3
    )
    result = train(TrainConfig(output_dir=str(tmp_path / "e"), batch_size=2, validation_every=0, **options))
    assert result.steps == 6
    lines = _lines(tmp_path / "e")
    start = lines[0]
    assert start["event"] == "start"
    assert (start["max_steps"], start["epochs"], start["steps_per_epoch"], start["examples"]) == (6, 3, 2, 4)
    assert start["message"] == (
        "kept 4 of 4 pairs; 2 pairs a step (batch 2 × accumulation 1 × 1 process); 6 steps = 3 epochs"
    )
    assert "kept 4 of 4 pairs" in capsys.readouterr().err
    assert [line["epoch"] for line in lines if "loss" in line] == [0, 0, 1, 1, 2, 2]
    record = json.loads((tmp_path / "e/final/evalhub_training.json").read_text())
    assert record["data"]["kept"] == 4 and record["steps"] == 6
    accumulated = train(
        TrainConfig(
            output_dir=str(tmp_path / "a"),
            batch_size=1,
            gradient_accumulation_steps=2,
            validation_every=0,
            **{**options, "epochs": 1},
        )
    )
    assert accumulated.steps == 2


def test_max_steps_and_epochs_are_one_or_the_other():
    with pytest.raises(ConfigError, match=STEPS_OR_EPOCHS):
        TrainConfig(model="m", data="d", output_dir="o", max_steps=5, epochs=2)
    assert TrainConfig(model="m", data="d", output_dir="o").max_steps is None  # resolved to 100 …
    from training.config import resolved

    assert resolved(TrainConfig(model="m", data="d", output_dir="o"), "unet").max_steps == 100
    assert resolved(TrainConfig(model="m", data="d", output_dir="o", epochs=2), "unet").max_steps is None
