"""One step's loss on a tiny U-Net: what it draws and what it decodes (training.objective)."""

import copy

import pytest
import torch

import training.objective
from training.data import PreferencePairs
from training.losses import latent_error
from training.models import denoiser_of, load_pipeline, text_conditioning
from training.objective import StepModels, StepSettings, noise_pred, step_loss
from training.sampling import step_draws


@pytest.fixture(scope="module")
def unet_step(tiny_models, pairs_folder):
    """The tiny U-Net pipeline, two pairs (winners then losers) and their captions' conditioning."""
    pipe = load_pipeline(tiny_models["unet"])
    pipe.vae.requires_grad_(False)
    items = [PreferencePairs(pairs_folder, 64)[i] for i in range(2)]
    pixels = torch.stack([i["winner"] for i in items] + [i["loser"] for i in items])
    text = text_conditioning(pipe, [i["caption"] for i in items], "cpu")
    return pipe, pixels, text


def step_models(pipe, method: str) -> StepModels:
    models = StepModels(
        denoiser=denoiser_of(pipe),
        vae=pipe.vae,
        family="unet",
        alphas_cumprod=pipe.scheduler.alphas_cumprod,
        prediction_type="epsilon",
        image_size=(64, 64),
    )
    if method == "dpo":
        reference = copy.deepcopy(models.denoiser).requires_grad_(False)
        models.reference = lambda z_t, t, text: noise_pred(
            models, reference, z_t, t, text, models.alphas_cumprod[t].float()
        )
    return models


def settings(method: str, **options) -> StepSettings:
    options.setdefault("loss_space", "latent+pixel")
    return StepSettings(method=method, pixel_weight=2.0, beta=50.0, pixel_beta=50.0, **options)


@pytest.mark.parametrize(
    "method, expected",
    [
        # the target without gradient, the model's prediction with it, the reference's without
        ("dpo", [False, True, False]),
        ("simpo", [False, True]),
    ],
)
def test_the_target_images_are_decoded_once_per_step(unet_step, method, expected):
    """A latent+pixel step runs the decoder once per side: one target decode, shared by the reference."""
    pipe, pixels, text = unet_step
    calls = []
    hook = pipe.vae.decoder.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    try:
        loss = step_loss(
            step_models(pipe, method),
            settings(method),
            pixels,
            text,
            step_draws(0, 0, 0, 0, len(text.embeds)),
            True,
        )
    finally:
        hook.remove()
    assert calls == expected
    assert torch.isfinite(loss.total)


def drawn(pipe, pixels, text, monkeypatch, **options):
    """The noise ε and timesteps a SimPO step feeds the denoiser, winners then losers."""
    seen = {}

    def record_noise(noise_pred, noise):
        seen["noise"] = noise
        return latent_error(noise_pred, noise)

    monkeypatch.setattr(training.objective, "latent_error", record_noise)
    models = step_models(pipe, "simpo")

    def record_timesteps(module, args):
        seen["timesteps"] = args[1]  # UNet2DConditionModel(sample, timestep, ...)

    hook = models.denoiser.register_forward_pre_hook(record_timesteps)
    try:
        step_loss(
            models,
            settings("simpo", loss_space="latent", **options),
            pixels,
            text,
            step_draws(0, 0, 0, 0, len(text.embeds)),
            True,
        )
    finally:
        hook.remove()
    return seen["noise"].chunk(2), seen["timesteps"].chunk(2)


def test_winner_and_loser_share_timestep_and_noise(unet_step, monkeypatch):
    """By default the loser of each pair gets its winner's timestep and noise."""
    (noise_w, noise_l), (t_w, t_l) = drawn(*unet_step, monkeypatch)
    assert torch.equal(t_w, t_l)
    assert torch.equal(noise_w, noise_l)
    assert not torch.equal(noise_w[0], noise_w[1])  # pairs differ from one another


def test_share_noise_off_draws_the_losers_own_noise(unet_step, monkeypatch):
    """``share_noise=False`` keeps the shared timestep but draws fresh noise for the losers."""
    (noise_w, noise_l), (t_w, t_l) = drawn(*unet_step, monkeypatch, share_noise=False)
    assert torch.equal(t_w, t_l)
    assert not torch.equal(noise_w, noise_l)


@pytest.mark.parametrize("crop", [1.0, 0.5])
def test_a_batch_split_in_two_draws_and_loses_what_the_whole_batch_does(unet_step, crop):
    """Two processes of one pair each draw what one process of two pairs draws (each pair
    from its place in the global batch, the crop window from the shared generator), so
    their mean loss and their errors per pair are the whole batch's."""
    pipe, pixels, text = unet_step
    models, chosen = step_models(pipe, "dpo"), settings("dpo", pixel_crop=crop, share_noise=False)
    whole = step_loss(models, chosen, pixels, text, step_draws(3, 5, 0, 0, 2), True)
    halves = []
    for place in (0, 1):
        part = torch.stack([pixels[place], pixels[2 + place]])
        text_part = type(text)(
            text.embeds[place : place + 1], None if text.mask is None else text.mask[place : place + 1]
        )
        halves.append(step_loss(models, chosen, part, text_part, step_draws(3, 5, 0, place, 1), True))
    for term in ("latent", "pixel"):
        for name in ("model_w", "model_l", "ref_w", "ref_l"):
            split = torch.cat([h.errors[term][name] for h in halves])
            torch.testing.assert_close(split, whole.errors[term][name], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        torch.stack([h.total for h in halves]).mean(), whole.total, rtol=1e-5, atol=1e-7
    )
