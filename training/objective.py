"""One training step's loss: SFT (eq. 3) or a preference objective (eq. 4 / eq. 7).

The trainer and ``bench/train_step.py`` both call :func:`step_loss`, so the benchmark
times the code a run executes. All randomness of a step comes from the
:class:`~training.sampling.StepDraws` passed in: the VAE posterior sample, noise and
timestep of each example from its own generator, the pixel crop from the shared one. So a
resumed run draws exactly what an uninterrupted one would, and a run split over several
processes what a run on one would.

Costs, by design (see ``bench/train_step.py``): the target images are decoded once per
step, without gradient, and shared by the model's and (DPO) the reference's pixel errors;
each decode is one batched call over winners and losers together; and the VAE's weights
are frozen so no weight gradient is computed.
"""

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from training.losses import dpo_loss, latent_error, pixel_error, pixel_target, simpo_loss
from training.models import TextConditioning, denoiser_output, vae_decode, vae_encode
from training.prediction import noise_prediction
from training.sampling import StepDraws

# |logit| of σ above which a pair's gradient is < 3.4e-4 of its maximum: "saturated".
SATURATION_LOGIT = 8.0


@dataclass
class StepModels:
    """What a step needs besides the batch. ``reference`` returns ε_ref (DPO only)."""

    denoiser: torch.nn.Module
    vae: torch.nn.Module
    family: str
    alphas_cumprod: torch.Tensor
    prediction_type: str
    image_size: tuple[int, int]
    additional_conditions: bool = False
    reference: Callable[[torch.Tensor, torch.Tensor, TextConditioning], torch.Tensor] | None = None


@dataclass(frozen=True)
class StepSettings:
    method: str
    loss_space: str
    pixel_weight: float
    pixel_target: str = "x_t"
    pixel_crop: float = 1.0
    beta: float | None = None
    pixel_beta: float | None = None
    gamma: float = 0.0
    share_noise: bool = True

    @classmethod
    def from_config(cls, config) -> "StepSettings":
        return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__})


@dataclass
class StepLoss:
    total: torch.Tensor
    latent: torch.Tensor | None = None
    pixel: torch.Tensor | None = None
    # Preference methods: per-pair margins (winner's error minus loser's, minus the
    # reference's for DPO) and the σ logits, per term, for accuracy and saturation;
    # the implicit reward margins (−β·margin: the winner's reward minus the loser's); and
    # the per-pair errors behind them (``model_w``, ``model_l``, DPO's ``ref_w``, ``ref_l``).
    margins: dict | None = None
    logits: dict | None = None
    reward_margins: dict | None = None
    errors: dict | None = None


def _repeat_text(text: TextConditioning, times: int) -> TextConditioning:
    if times == 1:
        return text
    mask = None if text.mask is None else text.mask.repeat(times, 1)
    return TextConditioning(text.embeds.repeat(times, 1, 1), mask)


def _crop_window(latents: torch.Tensor, side_fraction: float, generator: torch.Generator):
    """A random (y, x, height, width) latent window, or None for the exact (uncropped) term
    (one for the whole global batch: ``generator`` is the shared one, alike on every process)."""
    if side_fraction >= 1:
        return None
    height, width = latents.shape[-2:]
    ch, cw = max(1, round(height * side_fraction)), max(1, round(width * side_fraction))
    y = int(torch.randint(0, height - ch + 1, (1,), generator=generator))
    x = int(torch.randint(0, width - cw + 1, (1,), generator=generator))
    return y, x, ch, cw


def _cropped(tensor: torch.Tensor, window) -> torch.Tensor:
    if window is None:
        return tensor
    y, x, ch, cw = window
    return tensor[..., y : y + ch, x : x + cw]


def noise_pred(models: StepModels, denoiser, z_t, timesteps, text, alpha_bar) -> torch.Tensor:
    raw = denoiser_output(
        denoiser, models.family, z_t, timesteps, text, models.image_size, models.additional_conditions
    )
    return noise_prediction(raw, z_t, alpha_bar.to(raw.device), models.prediction_type)


@dataclass
class _Noised:
    """A micro-batch's clean latents, its noise and timesteps, and the noisy latents."""

    latents: torch.Tensor  # z, [N, C, h, w]
    noise: torch.Tensor  # ε, [N, C, h, w]
    timesteps: torch.Tensor  # [N]
    alpha_bar: torch.Tensor  # ᾱ_t, [N]
    z_t: torch.Tensor  # √ᾱ·z + √(1−ᾱ)·ε, [N, C, h, w]


def _noise(models: StepModels, settings: StepSettings, pixels, draws: StepDraws, paired: bool) -> _Noised:
    """Encode the images and noise them; a pair's loser shares its winner's timestep, and
    its noise unless ``share_noise`` is off, so the pair differs only in the image. Each
    pair's (or image's) draws come from its own generator: winner's posterior sample, then
    the loser's, the noise (the loser's own next, when not shared), the timestep."""
    device = pixels.device
    per_image = draws.examples * (2 if paired else 1)
    with torch.no_grad(), _full_precision(device):
        latents = vae_encode(models.vae, pixels, generator=per_image).float()
    shape = tuple(latents.shape[1:])
    noise = draws.normal(shape).to(device)
    other = noise if settings.share_noise or not paired else draws.normal(shape).to(device)
    timesteps = draws.integers(len(models.alphas_cumprod)).to(device)
    if paired:
        noise, timesteps = torch.cat([noise, other]), timesteps.repeat(2)
    alpha_bar = models.alphas_cumprod.to(device)[timesteps].float()
    a = alpha_bar.reshape(-1, 1, 1, 1)
    z_t = a.sqrt() * latents + (1 - a).sqrt() * noise
    return _Noised(latents, noise, timesteps, alpha_bar, z_t)


def _pixel_term(models: StepModels, settings: StepSettings, noised: _Noised, generator: torch.Generator):
    """The pixel error (eq. 2, or eq. 8) of a noise prediction, as a function; None when the
    loss space has no pixel term.

    The crop window is drawn and the target decoded here, once per step: the model's and
    the reference's predictions are compared with the same target pixels.
    """
    if settings.loss_space not in ("pixel", "latent+pixel"):
        return None
    device = noised.latents.device
    window = _crop_window(noised.latents, settings.pixel_crop, generator)
    latents, noise = _cropped(noised.latents, window), _cropped(noised.noise, window)

    def decode(z):
        # The VAE runs in its own dtype (fp32 or bf16), outside fp16 autocast, where it overflows.
        with _full_precision(device):
            return vae_decode(models.vae, z)

    target = pixel_target(decode, latents, noise, noised.alpha_bar, settings.pixel_target)

    def pixel(eps_hat):
        return pixel_error(
            decode,
            latents,
            noise,
            _cropped(eps_hat, window),
            noised.alpha_bar,
            settings.pixel_target,
            target_pixels=target,
        )

    return pixel


def _errors(settings: StepSettings, eps: torch.Tensor, noise: torch.Tensor, pixel) -> dict:
    """Per-sample errors ``[N]`` of the noise prediction ``eps``, one per term of the loss."""
    errors = {}
    if settings.loss_space in ("latent", "latent+pixel"):
        errors["latent"] = latent_error(eps, noise)
    if pixel is not None:
        errors["pixel"] = pixel(eps)
    return errors


def _preference(settings: StepSettings, errors: dict, ref_errors: dict | None) -> StepLoss:
    """DPO (eq. 4, against ``ref_errors``) or SimPO (eq. 5, eq. 6) per term, combined by eq. 7.

    ``errors`` hold winners then losers, ``[2B]`` each.
    """
    parts, margins, logits, rewards, seen = {}, {}, {}, {}, {}
    for key, err in errors.items():
        beta = settings.beta if key == "latent" else settings.pixel_beta
        err_w, err_l = err.chunk(2)
        seen[key] = {"model_w": err_w.detach(), "model_l": err_l.detach()}
        if settings.method == "dpo":
            ref_w, ref_l = ref_errors[key].chunk(2)
            per_pair = dpo_loss(err_w, err_l, ref_w, ref_l, beta)
            margins[key] = ((err_w - ref_w) - (err_l - ref_l)).detach()
            seen[key].update(ref_w=ref_w.detach(), ref_l=ref_l.detach())
        else:
            per_pair = simpo_loss(err_w, err_l, beta, settings.gamma)
            margins[key] = (err_w - err_l).detach()
        rewards[key] = -beta * margins[key]
        logits[key] = rewards[key] - (settings.gamma if settings.method == "simpo" else 0.0)
        parts[key] = per_pair.mean()
    return StepLoss(
        _combine(parts, settings.pixel_weight),
        parts.get("latent"),
        parts.get("pixel"),
        margins,
        logits,
        rewards,
        seen,
    )


def step_loss(
    models: StepModels,
    settings: StepSettings,
    pixels: torch.Tensor,
    text: TextConditioning,
    draws: StepDraws,
    paired: bool,
) -> StepLoss:
    """The loss of one micro-batch: eq. 3 (SFT), or eq. 4 / eq. 7 (DPO / SimPO).

    ``pixels`` is ``[B, 3, H, W]`` for SFT, or winners then losers, ``[2B, 3, H, W]``, for a
    preference method; ``text`` holds the B captions' conditioning. With a pixel term the
    decoder runs once without gradient on the target, once with gradient on the model's
    prediction and, for DPO, once without gradient on the reference's.
    """
    noised = _noise(models, settings, pixels, draws, paired)
    text_all = _repeat_text(text, 2 if paired else 1)
    z_t = noised.z_t.to(_dtype(models.denoiser))
    eps = noise_pred(models, models.denoiser, z_t, noised.timesteps, text_all, noised.alpha_bar)
    pixel = _pixel_term(models, settings, noised, draws.shared)
    errors = _errors(settings, eps, noised.noise, pixel)
    if settings.method == "sft":
        parts = {k: e.mean() for k, e in errors.items()}
        return StepLoss(_combine(parts, settings.pixel_weight), parts.get("latent"), parts.get("pixel"))
    ref_errors = None
    if settings.method == "dpo":
        with torch.no_grad():
            eps_ref = models.reference(z_t, noised.timesteps, text_all).float()
            ref_errors = _errors(settings, eps_ref, noised.noise, pixel)
    return _preference(settings, errors, ref_errors)


def _combine(parts: dict, pixel_weight: float) -> torch.Tensor:
    """eq. 3 / eq. 7: latent + weight·pixel; a single-space loss is that term alone."""
    if "latent" in parts and "pixel" in parts:
        return parts["latent"] + pixel_weight * parts["pixel"]
    return parts.get("latent", parts.get("pixel"))


def _full_precision(device: torch.device):
    """Autocast off (the meta device, used to count FLOPs, has no autocast to turn off)."""
    return nullcontext() if device.type == "meta" else torch.autocast(device.type, enabled=False)


def _dtype(module: torch.nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def saturated_share(logits: torch.Tensor) -> torch.Tensor:
    return (logits.abs() > SATURATION_LOGIT).float().mean()
