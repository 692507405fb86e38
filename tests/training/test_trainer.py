"""The trainer end to end on tiny U-Net and DiT pipelines (training.trainer)."""

import json
import math
import re
import shutil

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_post_hook

import training.objective
import training.trainer
from training.config import ConfigError, TrainConfig
from training.losses import latent_error
from training.models import TextConditioning, load_pipeline, text_conditioning
from training.objective import StepModels, StepSettings, noise_pred, step_loss
from training.sampling import step_draws
from training.trainer import RESOLUTION_MISFIT, TrainingCancelled, TrainingDiverged, train


def run(tiny_models, data, out, family="unet", **options):
    options.setdefault("max_steps", 2)
    options.setdefault("batch_size", 2)
    options.setdefault("validation_every", 0)  # the renders have tests of their own
    config = TrainConfig(model=str(tiny_models[family]), data=str(data), output_dir=str(out), **options)
    return train(config)


def metrics(out) -> list[dict]:
    """The step records of ``metrics.jsonl`` (and a divergence), without the run's opening line."""
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("event") != "start"]


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
    return step_loss(models, settings, pixels, text, step_draws(0, 0, 0, 0, len(text.embeds)), paired)


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
        loss = step_loss(
            models, settings, pixels, text, step_draws(0, 0, 0, 0, len(text.embeds)), paired=True
        )
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(loss.total.item())
    assert losses[-1] < 0.1 * losses[0]
    assert loss.margins["latent"].item() < 0  # the winner now has the lower error


RESUMED_RUNS = {
    "unet-simpo": (
        "unet",
        dict(method="simpo", loss_space="latent+pixel", random_flip=True, learning_rate=1e-3),
    ),
    "unet-dpo-lora-ema": (
        "unet",
        dict(method="dpo", loss_space="latent+pixel", lora_rank=4, ema_decay=0.9, learning_rate=1e-2),
    ),
    "dit-simpo": (
        "dit",
        dict(method="simpo", loss_space="latent+pixel", random_flip=True, learning_rate=1e-3),
    ),
}


@pytest.mark.parametrize("name", list(RESUMED_RUNS))
def test_resume_continues_exactly(tiny_models, pairs_folder, tmp_path, name):
    """A run cancelled after step 3 and resumed logs and saves what an uninterrupted run does."""
    family, options = RESUMED_RUNS[name]
    options = dict(
        options,
        batch_size=1,
        gradient_accumulation_steps=2,
        max_steps=5,
        checkpoint_every=1,
        validation_every=0,
    )
    whole = run(tiny_models, pairs_folder, tmp_path / "whole", family, **options)

    stops = iter([False, False, True])
    config = TrainConfig(
        model=str(tiny_models[family]), data=str(pairs_folder), output_dir=str(tmp_path / "cut"), **options
    )
    with pytest.raises(TrainingCancelled, match="after step 3"):
        train(config, should_stop=lambda: next(stops))
    assert not (tmp_path / "cut/final").exists()
    resumed = train(TrainConfig(**{**config.to_dict(), "resume": "latest"}))

    def without_speed(out):
        return [{k: v for k, v in line.items() if k != "samples_per_s"} for line in metrics(out)]

    assert without_speed(tmp_path / "cut") == without_speed(tmp_path / "whole")
    weights = f"{'unet' if family == 'unet' else 'transformer'}/diffusion_pytorch_model.safetensors"
    a = load_file(whole.final_model / weights)
    b = load_file(resumed.final_model / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "cut/checkpoints").iterdir())) == 2  # checkpoints_keep


def hooked(monkeypatch, install):
    """Have the trainer pass the pipeline it loads through ``install`` (a test's hooks) first."""
    real = training.trainer.load_for_training

    def load(*args):
        pipeline = real(*args)
        install(pipeline)
        return pipeline

    monkeypatch.setattr(training.trainer, "load_for_training", load)


def finite_checkpoint(folder) -> bool:
    weights = load_file(folder / "model.safetensors")
    return all(torch.isfinite(w).all() for w in weights.values())


def test_a_non_finite_gradient_stops_before_the_update_keeping_a_good_checkpoint(
    tiny_models, pairs_folder, tmp_path, monkeypatch
):
    """A finite loss whose gradient turns NaN at step 2 (clipping off) stops the run at step 2."""
    forwards = []

    def poison_second_backward(module, args, output):
        if torch.is_grad_enabled():
            forwards.append(1)
            if len(forwards) == 2:
                output.sample.register_hook(lambda grad: torch.full_like(grad, float("nan")))

    hooked(monkeypatch, lambda pipeline: pipeline.unet.register_forward_hook(poison_second_backward))
    with pytest.raises(
        TrainingDiverged,
        match=r"gradient norm became nan at step 2; stopped, the last good checkpoint is .*step-1",
    ):
        run(
            tiny_models,
            pairs_folder,
            tmp_path,
            method="sft",
            loss_space="latent",
            max_steps=3,
            checkpoint_every=1,
            max_grad_norm=0,
        )
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-1"]
    assert finite_checkpoint(tmp_path / "checkpoints/step-1")
    assert not (tmp_path / "final").exists()
    assert metrics(tmp_path)[-1]["event"] == "diverged"
    assert math.isfinite(metrics(tmp_path)[0]["grad_norm"])  # measured with clipping off too


def test_a_non_finite_loss_stops_at_its_step(tiny_models, pairs_folder, tmp_path, monkeypatch):
    """An infinite denoiser output at step 2 stops the run there, naming the finite step-1 checkpoint."""
    forwards = []

    def blow_up_second_forward(module, args, output):
        forwards.append(1)
        if len(forwards) == 2:
            output.sample[0, 0, 0, 0] = float("inf")

    hooked(monkeypatch, lambda pipeline: pipeline.unet.register_forward_hook(blow_up_second_forward))
    with pytest.raises(
        TrainingDiverged,
        match=r"loss became (inf|nan) at step 2; stopped, the last good checkpoint is .*step-1",
    ):
        run(tiny_models, pairs_folder, tmp_path, method="sft", max_steps=3, checkpoint_every=1)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-1"]
    assert finite_checkpoint(tmp_path / "checkpoints/step-1")
    assert metrics(tmp_path)[-1]["event"] == "diverged"


def test_non_finite_weights_are_never_checkpointed(tiny_models, pairs_folder, tmp_path):
    """An update that leaves an infinite weight (loss and gradient finite) is refused at its checkpoint."""
    updates = []

    def corrupt_second_update(optimizer, args, kwargs):
        updates.append(1)
        if len(updates) == 2:
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].fill_(float("inf"))

    handle = register_optimizer_step_post_hook(corrupt_second_update)
    try:
        with pytest.raises(
            TrainingDiverged,
            match=r"the weights became non-finite at step 2; stopped, the last good checkpoint is .*step-1",
        ):
            run(
                tiny_models,
                pairs_folder,
                tmp_path,
                method="sft",
                loss_space="latent",
                max_steps=3,
                checkpoint_every=1,
            )
    finally:
        handle.remove()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-1"]
    assert finite_checkpoint(tmp_path / "checkpoints/step-1")


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


def test_one_process_runs_jobs_of_different_precision_one_after_another(
    tiny_models, pairs_folder, tmp_path, monkeypatch
):
    """A worker runs job after job in one process: a bf16 run after an fp32 one runs,
    because each run clears accelerate's per-process state; without that accelerate
    refuses the second run."""
    run(tiny_models, pairs_folder, tmp_path / "fp32", max_steps=1)
    bf16 = run(tiny_models, pairs_folder, tmp_path / "bf16", max_steps=1, mixed_precision="bf16")
    assert bf16.steps == 1 and math.isfinite(metrics(tmp_path / "bf16")[0]["loss"])

    forget = training.trainer._forget_accelerator_settings
    monkeypatch.setattr(training.trainer, "_forget_accelerator_settings", lambda: None)
    try:
        run(tiny_models, pairs_folder, tmp_path / "fp32-again", max_steps=1)
        with pytest.raises(ValueError, match="AcceleratorState has already been initialized"):
            run(tiny_models, pairs_folder, tmp_path / "bf16-again", max_steps=1, mixed_precision="bf16")
    finally:
        forget()  # the next test starts clean


def test_pixel_crop_approximation_runs(tiny_models, pairs_folder, tmp_path):
    run(tiny_models, pairs_folder, tmp_path, method="simpo", pixel_crop=0.5, pixel_target="x_0", max_steps=1)
    assert "pixel_loss" in metrics(tmp_path)[0]


@pytest.mark.parametrize("family, part", [("unet", "U-Net's downsampling"), ("dit", "DiT's patch size")])
def test_a_resolution_the_model_cannot_take_is_refused(tiny_models, pairs_folder, tmp_path, family, part):
    """34 px is a 17×17 latent: the tiny U-Net cannot halve it, the DiT cannot cut it into 2×2 patches."""
    message = RESOLUTION_MISFIT.format(resolution=34, family=family, multiple=4, part=part)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(tiny_models, pairs_folder, tmp_path, family, resolution=34)


def test_a_resolution_the_model_takes_trains_though_not_a_multiple_of_8(tiny_models, pairs_folder, tmp_path):
    """36 px fits the tiny U-Net (VAE ×2, one U-Net halving): the model's rule decides, not a fixed 8."""
    run(tiny_models, pairs_folder, tmp_path, resolution=36, max_steps=1, loss_space="latent")
    assert math.isfinite(metrics(tmp_path)[0]["loss"])


def spy_on(monkeypatch, module, name: str) -> list:
    """Record the positional arguments of every call to ``module.name``, which still runs."""
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_an_empty_prompt_replaces_the_caption_of_a_winner_and_its_loser_together(
    tiny_models, pairs_folder, tmp_path, monkeypatch
):
    """Each dropped caption conditions both images of its pair on the empty prompt, and no other."""
    states = []
    hooked(
        monkeypatch,
        lambda pipeline: pipeline.unet.register_forward_pre_hook(
            lambda module, args, kwargs: states.append(kwargs["encoder_hidden_states"]), with_kwargs=True
        ),
    )
    conditioned = spy_on(monkeypatch, training.trainer, "text_conditioning")
    run(
        tiny_models,
        pairs_folder,
        tmp_path,
        method="simpo",
        loss_space="latent",
        batch_size=4,
        empty_prompt_prob=0.5,
    )
    captions = [args[1] for args in conditioned]
    dropped = [caption == "" for step in captions for caption in step]
    assert any(dropped) and not all(dropped)
    empty = text_conditioning(load_pipeline(tiny_models["unet"]), [""], "cpu").embeds[0]
    for texts, state in zip(captions, states, strict=True):
        winners, losers = state.chunk(2)
        assert torch.equal(winners, losers)
        assert [torch.equal(s, empty) for s in winners] == [text == "" for text in texts]


def test_lora_dpo_reference_stays_the_base_model_after_updates(
    tiny_models, pairs_folder, tmp_path, monkeypatch
):
    """After 3 updates the reference (adapters off) equals a freshly loaded base; the model has moved."""
    calls = spy_on(monkeypatch, training.trainer, "step_loss")
    run(
        tiny_models,
        pairs_folder,
        tmp_path,
        method="dpo",
        loss_space="latent",
        lora_rank=4,
        learning_rate=1e-2,
        max_steps=3,
    )
    models = calls[-1][0]
    base = UNet2DConditionModel.from_pretrained(tiny_models["unet"] / "unet").eval()
    generator = torch.Generator().manual_seed(0)
    z_t = torch.randn(2, 4, 32, 32, generator=generator)
    t = torch.tensor([10, 500])
    text = TextConditioning(torch.randn(2, 77, 32, generator=generator), None)
    with torch.no_grad():
        expected = base(z_t, t, encoder_hidden_states=text.embeds).sample
        reference = models.reference(z_t, t, text)
        trained = noise_pred(models, models.denoiser, z_t, t, text, models.alphas_cumprod[t])
    assert torch.allclose(reference, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(trained, expected, rtol=0, atol=1e-4)


def test_v_prediction_trains_on_the_noise_it_implies(tiny_models, pairs_folder, tmp_path, monkeypatch):
    """With a v_prediction scheduler the losses compare ε = √ᾱ·v + √(1−ᾱ)·z_t, not the raw output."""
    model = shutil.copytree(tiny_models["unet"], tmp_path / "v-model")
    scheduler_file = model / "scheduler/scheduler_config.json"
    scheduler_file.write_text(
        json.dumps({**json.loads(scheduler_file.read_text()), "prediction_type": "v_prediction"})
    )
    forwards = []
    hooked(
        monkeypatch,
        lambda pipeline: pipeline.unet.register_forward_hook(
            lambda module, args, output: forwards.append((args[0], args[1], output.sample.detach()))
        ),
    )
    errors = spy_on(monkeypatch, training.objective, "latent_error")
    run({"unet": model}, pairs_folder, tmp_path / "run", method="sft", loss_space="latent", max_steps=1)
    (z_t, t, v), (eps, noise) = forwards[0], errors[0]
    a = DDPMScheduler.from_pretrained(model / "scheduler").alphas_cumprod[t].reshape(-1, 1, 1, 1)
    expected = a.sqrt() * v + (1 - a).sqrt() * z_t
    assert torch.allclose(eps.detach(), expected, atol=1e-6)
    assert not torch.allclose(v, expected, atol=1e-2)
    logged = metrics(tmp_path / "run")[0]["latent_loss"]
    assert logged == pytest.approx(latent_error(expected, noise).mean().item(), rel=1e-5)


def test_vae_decoder_checkpointing_takes_effect_and_changes_no_loss(
    tiny_models, pairs_folder, tmp_path, monkeypatch
):
    """With it the decoder runs under torch's checkpoint (without it, not); the losses are equal."""
    checkpointed = spy_on(monkeypatch, torch.utils.checkpoint, "checkpoint")
    steps = spy_on(monkeypatch, training.trainer, "step_loss")
    losses = {}
    for on in (True, False):
        checkpointed.clear()
        out = tmp_path / str(on)
        run(
            tiny_models,
            pairs_folder,
            out,
            method="sft",
            loss_space="latent+pixel",
            vae_gradient_checkpointing=on,
        )
        decoder = steps[-1][0].vae.decoder
        decoder_modules = set(decoder.modules())
        assert decoder.gradient_checkpointing == on
        assert any(args[0].__self__ in decoder_modules for args in checkpointed) == on
        losses[on] = [line[key] for line in metrics(out) for key in ("loss", "pixel_loss")]
    assert losses[True] == pytest.approx(losses[False], rel=1e-6)
