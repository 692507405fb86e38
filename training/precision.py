"""The dtype each part of a pipeline is held in during training, and loading it that way.

- The trained denoiser: fp32. accelerate's autocast computes in the mixed-precision dtype,
  while AdamW and the fp16 gradient scaler need fp32 parameters. With LoRA the frozen base
  sits in the mixed-precision dtype and only the adapters are fp32.
- The frozen parts (text encoder, DPO reference copy): the mixed-precision dtype.
- The VAE: fp32, or bf16 (``vae_dtype``, the default under bf16); never fp16, where its
  activations overflow.

Parts are loaded in their dtype by ``from_pretrained(dtype=...)`` rather than cast with
``.to()`` afterwards, whatever dtype the folder was saved in: that is how transformers
keeps a model's ``_keep_in_fp32_modules`` (T5's ``wo`` projections) in fp32 under fp16.
:func:`place` casts a part only where its dtype differs, and spares those modules too.
"""

from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline

from training.models import load_pipeline
from training.pipelines import DENOISER_PART

MIXED_PRECISION_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class PartDtypes:
    frozen: torch.dtype  # text encoder, DPO reference, LoRA base
    vae: torch.dtype
    denoiser: torch.dtype  # as loaded: fp32, or ``frozen`` for a LoRA base


def part_dtypes(mixed_precision: str, vae_dtype: str, lora: bool) -> PartDtypes:
    """The dtypes of a run with these ``TrainConfig`` options."""
    frozen = MIXED_PRECISION_DTYPES.get(mixed_precision, torch.float32)
    bf16_vae = vae_dtype == "bf16" or (vae_dtype == "auto" and mixed_precision == "bf16")
    vae = torch.bfloat16 if bf16_vae else torch.float32
    return PartDtypes(frozen=frozen, vae=vae, denoiser=frozen if lora else torch.float32)


def load_for_training(model: str, family: str, dtypes: PartDtypes) -> DiffusionPipeline:
    """The pipeline at ``model`` with each part loaded in its training dtype."""
    per_part = {"vae": dtypes.vae, "text_encoder": dtypes.frozen, DENOISER_PART[family]: dtypes.denoiser}
    return load_pipeline(model, {**per_part, "default": torch.float32})


def _kept_in_fp32(module: torch.nn.Module, dtype: torch.dtype) -> set[str]:
    """Names of submodules the model's class keeps in fp32 at ``dtype`` (transformers' rule)."""
    keep = set()
    if dtype == torch.float16:
        keep |= set(getattr(module, "_keep_in_fp32_modules", None) or ())
    if dtype in (torch.float16, torch.bfloat16):
        keep |= set(getattr(module, "_keep_in_fp32_modules_strict", None) or ())
    return keep


def place(module: torch.nn.Module, device, dtype: torch.dtype) -> torch.nn.Module:
    """Move ``module`` to ``device`` and cast it to ``dtype`` if any part differs, leaving the
    submodules it keeps in fp32 there."""
    keep = _kept_in_fp32(module, dtype)

    def wanted(name: str) -> torch.dtype:
        return torch.float32 if keep & set(name.split(".")) else dtype

    module.to(device)
    tensors = [*module.named_parameters(), *module.named_buffers()]
    # Casting only when something differs keeps diffusers from warning on no-op casts.
    if any(t.is_floating_point() and t.dtype != wanted(name) for name, t in tensors):
        module.to(dtype=dtype)
        for name, sub in module.named_modules():
            if keep & set(name.split(".")):
                sub.to(dtype=torch.float32)
    return module
