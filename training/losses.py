"""The paper's objectives (§3, eqs. 1–8) as pure functions.

Conventions, relied on by the trainer, the tests and anyone importing these:

- tensors are batch-first;
- a *per-sample error* is the mean over every non-batch dimension of a squared
  difference, so it returns shape ``[B]``;
- preference losses return the per-pair loss, shape ``[B]``; the caller takes the mean;
- there is no 0.5 factor and no scaling beyond what each docstring writes.

β conventions of public DPO scripts differ. The original Diffusion-DPO code and diffusers'
SDXL script compute −log σ(−0.5·β·Δ) with β = 5000; diffusers' SD 1.5 script drops the 0.5
and uses β = 2500 for the same loss. :func:`dpo_loss` follows the paper's eq. 4 (no 0.5),
so their β = 5000 is β = 2500 here: ``beta_here = 0.5 * beta_with_half``.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from training.options import PIXEL_TARGETS


def per_sample_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over every non-batch dimension: ``[B, ...] -> [B]``."""
    return values.reshape(values.shape[0], -1).mean(dim=1)


def latent_error(noise_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖ε − ε_θ(z_t, t)‖² per sample: the inner term of eq. 1 and eq. 5. Shape ``[B]``."""
    return per_sample_mean((noise.float() - noise_pred.float()) ** 2)


def _broadcast(alpha_bar: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return alpha_bar.float().reshape(-1, *([1] * (like.dim() - 1)))


def _check_target(target: str) -> None:
    if target not in PIXEL_TARGETS:
        raise ValueError(f"pixel target must be one of {PIXEL_TARGETS}, got {target!r}")


def _noised(latents: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor):
    """(z, z_t, √ᾱ, √(1−ᾱ)) in fp32, broadcast like ``latents``.

    z and ε are detached: they are data, so no gradient may reach whoever produced them
    (the VAE encoder, a noise sampler); only the prediction is trained.
    """
    a = _broadcast(alpha_bar, latents)
    z, eps = latents.detach().float(), noise.detach().float()
    return z, a.sqrt() * z + (1 - a).sqrt() * eps, a.sqrt(), (1 - a).sqrt()


def pixel_target(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    noise: torch.Tensor,
    alpha_bar: torch.Tensor,
    target: str = "x_t",
) -> torch.Tensor:
    """The target side of :func:`pixel_error`, decoded without gradient: ``[B, 3, H, W]``.

    D(√ᾱ·z + √(1−ᾱ)·ε) for ``target="x_t"`` (eq. 2), D(z) for ``target="x_0"`` (eq. 8). A
    caller comparing several predictions with one target (DPO's model and reference)
    decodes it once here and passes it to :func:`pixel_error` as ``target_pixels``.
    """
    _check_target(target)
    z, z_t, _, _ = _noised(latents, noise, alpha_bar)
    with torch.no_grad():
        return decode(z_t if target == "x_t" else z)


def pixel_error(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    noise: torch.Tensor,
    noise_pred: torch.Tensor,
    alpha_bar: torch.Tensor,
    target: str = "x_t",
    target_pixels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared pixel-space error per sample, shape ``[B]``.

    ``latents`` are the clean scaled latents z, ``alpha_bar`` the ``[B]`` values of ᾱ_t, and
    ``decode`` maps scaled latents to pixels (it divides by the VAE scaling factor itself).

    - ``target="x_t"`` (eq. 2, the paper's choice, §4.4): both sides are decoded at the
      current timestep, D(√ᾱ·z + √(1−ᾱ)·ε) against D(√ᾱ·z + √(1−ᾱ)·ε_θ).
    - ``target="x_0"`` (eq. 8, the ablation): the prediction is carried back to t = 0,
      D((z_t − √(1−ᾱ)·ε_θ)/√ᾱ), and compared with D(z).

    The target is decoded without gradient (or taken from ``target_pixels``, the output
    of :func:`pixel_target` for the same arguments, so it is decoded once for several
    predictions), and the prediction side is decoded in one call so a batched decoder
    runs once. Gradients reach ``noise_pred`` only: ``latents`` and ``noise`` are
    detached; freeze the VAE's weights with ``requires_grad_(False)`` so none are computed
    for it.
    """
    _check_target(target)
    z, z_t, sqrt_a, sqrt_1ma = _noised(latents, noise, alpha_bar)
    eps_pred = noise_pred.float()
    if target == "x_t":
        pred_latents = sqrt_a * z + sqrt_1ma * eps_pred
    else:
        pred_latents = (z_t - sqrt_1ma * eps_pred) / sqrt_a
    if target_pixels is None:
        target_pixels = pixel_target(decode, latents, noise, alpha_bar, target)
    pred_pixels = decode(pred_latents)
    return per_sample_mean((target_pixels.detach().float() - pred_pixels.float()) ** 2)


def dpo_loss(
    err_w: torch.Tensor,
    err_l: torch.Tensor,
    ref_err_w: torch.Tensor,
    ref_err_l: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Diffusion-DPO, eq. 4: −log σ(−β·((e_w − e_w^ref) − (e_l − e_l^ref))). Shape ``[B]``."""
    return -F.logsigmoid(-beta * ((err_w - ref_err_w) - (err_l - ref_err_l)))


def simpo_loss(err_w: torch.Tensor, err_l: torch.Tensor, beta: float, gamma: float = 0.0) -> torch.Tensor:
    """SimPO without a reference model, eq. 5 (eq. 6 with pixel errors): −log σ(−β·(e_w − e_l) − γ).

    Shape ``[B]``. γ is SimPO's target margin (Meng et al., 2024); the paper uses none.
    """
    return -F.logsigmoid(-beta * (err_w - err_l) - gamma)


def implicit_accuracy(margin: torch.Tensor) -> torch.Tensor:
    """Share of pairs the model already ranks right, ties counted as half.

    ``margin`` is the quantity inside σ(−β·…) before β: the winner's error minus the
    loser's (minus the reference's, for DPO). A negative margin ranks the winner first.
    """
    return ((margin < 0).float() + 0.5 * (margin == 0).float()).mean()
