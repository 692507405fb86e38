"""Load a diffusers pipeline folder and drive its parts the way the losses need.

Two families are supported, told apart by the pipeline's ``model_index.json``
(:mod:`training.pipelines`, which reads it without torch):

- ``unet``: Stable Diffusion 1.5 style (``UNet2DConditionModel``, CLIP text encoder);
- ``dit``: PixArt-α style (``PixArtTransformer2DModel``, T5 text encoder with an attention
  mask, learned-sigma output split off in :mod:`training.prediction`, and the resolution /
  aspect-ratio conditions of the 1024² checkpoints).

Loading goes through ``DiffusionPipeline.from_pretrained`` on a local path, the same code
for a real checkpoint and for the tiny random ones of :mod:`training.tiny`.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from training.pipelines import DENOISER_PART, pipeline_family


@dataclass(frozen=True)
class TextConditioning:
    embeds: torch.Tensor
    mask: torch.Tensor | None


def load_pipeline(path: str | Path, dtype: torch.dtype | dict | None = None) -> DiffusionPipeline:
    """The pipeline at ``path`` (a local folder; no hub access is attempted).

    ``dtype`` is one dtype for every part, or a dict by part name with a ``"default"``, as
    ``DiffusionPipeline.from_pretrained`` takes it.
    """
    pipeline_family(path)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return DiffusionPipeline.from_pretrained(str(path), local_files_only=True, **kwargs)


def family_of(pipeline: DiffusionPipeline) -> str:
    """``unet`` or ``dit``, by the denoiser part a loaded pipeline has."""
    return next(family for family, part in DENOISER_PART.items() if hasattr(pipeline, part))


def denoiser_of(pipeline: DiffusionPipeline) -> torch.nn.Module:
    return getattr(pipeline, DENOISER_PART[family_of(pipeline)])


def vae_scale_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def resolution_multiple(denoiser: torch.nn.Module, vae, family: str) -> int:
    """What an image side must be a multiple of for ``denoiser`` behind ``vae``.

    The VAE's downscaling times the DiT's patch size, or times the U-Net's downsampling
    (every down block of a ``UNet2DConditionModel`` but the last halves the latent).
    """
    if family == "dit":
        return vae_scale_factor(vae) * denoiser.config.patch_size
    return vae_scale_factor(vae) * 2 ** (len(denoiser.config.down_block_types) - 1)


def vae_encode(vae, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pixels in [−1, 1] to scaled latents z = E(x)·s, sampled from the posterior."""
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    latents = dist.sample(generator=generator)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (latents - shift) * vae.config.scaling_factor


def vae_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents to pixels: D(z/s). Differentiable in ``latents``."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return vae.decode((latents / vae.config.scaling_factor + shift).to(vae.dtype)).sample


def text_conditioning(pipeline: DiffusionPipeline, prompts: list[str], device) -> TextConditioning:
    """Frozen text-encoder states for ``prompts`` (the denoiser's cross-attention input)."""
    tokenizer, encoder = pipeline.tokenizer, pipeline.text_encoder
    family = family_of(pipeline)
    max_length = tokenizer.model_max_length if family == "unet" else min(tokenizer.model_max_length, 120)
    tokens = tokenizer(
        prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
    )
    ids = tokens.input_ids.to(device)
    with torch.no_grad():
        if family == "unet":
            return TextConditioning(encoder(ids)[0], None)
        mask = tokens.attention_mask.to(device)
        return TextConditioning(encoder(ids, attention_mask=mask)[0], mask)


def denoiser_output(
    denoiser: torch.nn.Module,
    family: str,
    noisy_latents: torch.Tensor,
    timesteps: torch.Tensor,
    text: TextConditioning,
    image_size: tuple[int, int],
    additional_conditions: bool = False,
) -> torch.Tensor:
    """The raw output of a U-Net or DiT for a batch (before any ε conversion)."""
    embeds = text.embeds.to(noisy_latents.dtype)
    if family == "unet":
        return denoiser(noisy_latents, timesteps, encoder_hidden_states=embeds).sample
    batch = noisy_latents.shape[0]
    added = {"resolution": None, "aspect_ratio": None}
    if additional_conditions:
        height, width = image_size
        added = {
            "resolution": torch.tensor([height, width], device=noisy_latents.device)
            .repeat(batch, 1)
            .to(noisy_latents.dtype),
            "aspect_ratio": torch.tensor([height / width], device=noisy_latents.device)
            .repeat(batch, 1)
            .to(noisy_latents.dtype),
        }
    return denoiser(
        noisy_latents,
        encoder_hidden_states=embeds,
        encoder_attention_mask=text.mask,
        timestep=timesteps,
        added_cond_kwargs=added,
    ).sample
