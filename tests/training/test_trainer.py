"""The trainer end to end on tiny U-Net and DiT pipelines (training.trainer)."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from training.config import TrainConfig
from training.models import load_pipeline
from training.objective import StepModels, StepSettings, step_loss
from training.trainer import TrainingCancelled, TrainingDiverged, flip_together, step_generator, train


def run(tiny_models, data, out, family="unet", **options):
    options.setdefault("max_steps", 2)
    options.setdefault("batch_size", 2)
    config = TrainConfig(model=str(tiny_models[family]), data=str(data), output_dir=str(out), **options)
    return train(config)


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", ["unet", "dit"])
@pytest.mark.parametrize("method", ["sft", "dpo", "simpo"])
@pytest.mark.parametrize("space", ["latent", "pixel", "latent+pixel"])
def test_every_method_and_loss_space_trains_with_finite_loss(
    tiny_models, pairs_folder, tmp_path, family, method, space
):
    result = run(tiny_models, pairs_folder, tmp_path, family, method=method, loss_space=space)
    lines = metrics(tmp_path)
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        assert math.isfinite(line["loss"])
        assert ("latent_loss" in line) == (space != "pixel")
        assert ("pixel_loss" in line) == (space != "latent")
        assert ("implicit_acc" in line) == (method != "sft")
    assert result.steps == 2
    assert (result.final_model / "model_index.json").is_file()


def step_parts(tiny_models, pairs_folder, method, family="unet"):
    from training.data import PreferencePairs
    from training.models import denoiser_of, text_conditioning

    pipe = load_pipeline(tiny_models[family])
    data = PreferencePairs(pairs_folder, 64)
    items = [data[0], data[1]]
    pixels = torch.stack([i["winner"] for i in items] + [i["loser"] for i in items])
    models = StepModels(
        denoiser=denoiser_of(pipe),
        vae=pipe.vae,
        family=family,
        alphas_cumprod=pipe.scheduler.alphas_cumprod,
        prediction_type="epsilon",
        image_size=(64, 64),
    )
    settings = StepSettings(
        method=method, loss_space="latent+pixel", pixel_weight=3.0, beta=50.0, pixel_beta=20.0
    )
    text = text_conditioning(pipe, [i["caption"] for i in items], "cpu")
    paired = method != "sft"
    if not paired:
        pixels = pixels[:2]
    return step_loss(models, settings, pixels, text, step_generator(0, 0, 0, 0), paired)


@pytest.mark.parametrize("method", ["sft", "simpo"])
def test_total_is_latent_plus_weighted_pixel(tiny_models, pairs_folder, method):
    """eq. 3 (SFT) and eq. 7 (preference): total = latent + λ·pixel."""
    loss = step_parts(tiny_models, pairs_folder, method)
    assert loss.total.item() == pytest.approx(loss.latent.item() + 3.0 * loss.pixel.item(), rel=1e-6)


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_dpo_starts_at_log2_because_the_reference_is_the_model(
    tiny_models, pairs_folder, tmp_path, lora_rank
):
    run(
        tiny_models,
        pairs_folder,
        tmp_path,
        method="dpo",
        loss_space="latent+pixel",
        max_steps=1,
        lora_rank=lora_rank,
    )
    first = metrics(tmp_path)[0]
    # β = 2500 turns float rounding between the grad and no-grad forward (~1e-8) into ~1e-5.
    assert first["latent_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert first["pixel_loss"] == pytest.approx(math.log(2), abs=1e-4)


def test_lora_final_model_is_merged_and_loadable(tiny_models, pairs_folder, tmp_path):
    result = run(tiny_models, pairs_folder, tmp_path, method="simpo", lora_rank=4, learning_rate=1e-2)
    trained = load_file(result.final_model / "unet/diffusion_pytorch_model.safetensors")
    base = load_file(tiny_models["unet"] / "unet/diffusion_pytorch_model.safetensors")
    assert trained.keys() == base.keys()  # adapters fused away
    changed = [k for k in base if not torch.equal(base[k], trained[k])]
    assert changed and all("attn" in k for k in changed)  # only the attention projections moved


def test_simpo_overfits_a_fixed_pair(tiny_models, pairs_folder):
    """One pair, one noise draw and timestep (the step's generator reseeded each time): the
    SimPO loss the trainer computes must fall as AdamW updates the U-Net."""
    from training.data import PreferencePairs
    from training.models import denoiser_of, text_conditioning

    pipe = load_pipeline(tiny_models["unet"])
    item = PreferencePairs(pairs_folder, 64)[0]
    pixels = torch.stack([item["winner"], item["loser"]])
    denoiser = denoiser_of(pipe).train()
    pipe.vae.requires_grad_(False)
    models = StepModels(denoiser, pipe.vae, "unet", pipe.scheduler.alphas_cumprod, "epsilon", (64, 64))
    settings = StepSettings(
        method="simpo", loss_space="latent+pixel", pixel_weight=2.0, beta=200.0, pixel_beta=200.0
    )
    text = text_conditioning(pipe, [item["caption"]], "cpu")
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = step_loss(models, settings, pixels, text, step_generator(0, 0, 0, 0), paired=True)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(loss.total.item())
    assert losses[-1] < 0.1 * losses[0]
    assert loss.margins["latent"].item() < 0  # the winner now has the lower error


def test_resume_continues_exactly(tiny_models, pairs_folder, tmp_path):
    options = dict(
        method="simpo",
        loss_space="latent+pixel",
        batch_size=1,
        gradient_accumulation_steps=2,
        max_steps=5,
        checkpoint_every=1,
        random_flip=True,
        learning_rate=1e-3,
    )
    whole = run(tiny_models, pairs_folder, tmp_path / "whole", **options)

    stops = iter([False, False, True])
    config = TrainConfig(
        model=str(tiny_models["unet"]), data=str(pairs_folder), output_dir=str(tmp_path / "cut"), **options
    )
    with pytest.raises(TrainingCancelled, match="after step 3"):
        train(config, should_stop=lambda: next(stops))
    assert not (tmp_path / "cut/final").exists()
    resumed = train(TrainConfig(**{**config.to_dict(), "resume": "latest"}))

    def without_speed(out):
        return [{k: v for k, v in line.items() if k != "samples_per_s"} for line in metrics(out)]

    assert without_speed(tmp_path / "cut") == without_speed(tmp_path / "whole")
    a = load_file(whole.final_model / "unet/diffusion_pytorch_model.safetensors")
    b = load_file(resumed.final_model / "unet/diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "cut/checkpoints").iterdir())) == 2  # checkpoints_keep


def test_a_non_finite_loss_stops_at_its_step_keeping_the_last_checkpoint(tiny_models, pairs_folder, tmp_path):
    # A learning rate this large blows the weights up after the first update.
    with pytest.raises(TrainingDiverged, match=r"at step 2; stopped, the last good checkpoint is .*step-1"):
        run(
            tiny_models,
            pairs_folder,
            tmp_path,
            method="sft",
            max_steps=3,
            checkpoint_every=1,
            learning_rate=1e30,
            max_grad_norm=0,
        )
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-1"]
    assert not (tmp_path / "final").exists()
    assert metrics(tmp_path)[-1]["event"] == "diverged"


def test_sft_on_captioned_images_with_ema_warmup_and_accumulation(tiny_models, sft_folder, tmp_path):
    run(
        tiny_models,
        sft_folder,
        tmp_path,
        "dit",
        method="sft",
        max_steps=3,
        batch_size=1,
        gradient_accumulation_steps=2,
        ema_decay=0.9,
        lr_warmup_steps=2,
        learning_rate=1e-3,
        gradient_checkpointing=True,
        vae_gradient_checkpointing=True,
        tensorboard=True,
    )
    lines = metrics(tmp_path)
    assert [line["lr"] for line in lines] == pytest.approx([5e-4, 1e-3, 1e-3])
    record = json.loads((tmp_path / "final/evalhub_training.json").read_text())
    assert record["config"]["pixel_weight"] == 8.0  # the paper's λ for a DiT
    assert record["steps"] == 3 and len(record["data_hash"]) == 64
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_bf16_mixed_precision_runs_on_cpu(tiny_models, pairs_folder, tmp_path, lora_rank):
    result = run(
        tiny_models,
        pairs_folder,
        tmp_path,
        method="dpo",
        mixed_precision="bf16",
        max_steps=1,
        lora_rank=lora_rank,
    )
    assert math.isfinite(metrics(tmp_path)[0]["loss"])
    trained = load_file(result.final_model / "unet/diffusion_pytorch_model.safetensors")
    base = load_file(tiny_models["unet"] / "unet/diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in trained.values()} == {torch.float32}
    if lora_rank:  # the frozen base ran in bf16, but the saved weights outside the adapters are the originals
        assert all(torch.equal(base[k], trained[k]) for k in base if "attn" not in k)


def test_pixel_crop_approximation_runs(tiny_models, pairs_folder, tmp_path):
    run(tiny_models, pairs_folder, tmp_path, method="simpo", pixel_crop=0.5, pixel_target="x_0", max_steps=1)
    assert "pixel_loss" in metrics(tmp_path)[0]


def test_two_processes_share_the_batches(tiny_models, pairs_folder, tmp_path):
    """torchrun with 2 CPU processes (gloo): the multi-GPU code path, sharding and gathering included."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "training",
        "train",
        "--model",
        str(tiny_models["unet"]),
        "--data",
        str(pairs_folder),
        "--output-dir",
        str(tmp_path),
        "--method",
        "dpo",
        "--batch-size",
        "1",
        "--max-steps",
        "3",
        "--checkpoint-every",
        "2",
    ]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("final_model") == 1
    # 4 pairs, 2 processes × 1 pair per step: an epoch is 2 steps.
    assert [(line["step"], line["epoch"]) for line in metrics(tmp_path)] == [(1, 0), (2, 0), (3, 1)]
    assert metrics(tmp_path)[0]["latent_loss"] == pytest.approx(math.log(2), abs=1e-4)
    checkpoint = tmp_path / "checkpoints/step-2"
    assert {p.name for p in checkpoint.glob("random_states_*")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    assert (tmp_path / "final/unet").is_dir()


def test_a_pair_is_flipped_as_one():
    winners = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(3, 1, 2, 2)
    pixels = torch.cat([winners, winners + 100]).expand(-1, 3, -1, -1)
    flipped = flip_together(pixels, torch.tensor([True, False, True]))
    for i, should in enumerate([True, False, True]):
        for item in (i, i + 3):  # the winner and its loser
            expected = pixels[item].flip(-1) if should else pixels[item]
            assert torch.equal(flipped[item], expected)
