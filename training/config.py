"""One frozen configuration for a training run, shared by the CLI and the web app's jobs.

Every field carries its help text, so ``python -m training train --help`` lists exactly
what this dataclass accepts. Fields left at ``None`` are resolved from the model and the
method by :func:`resolved` (paper defaults, §4.2) and the resolved copy is what a run
records in its checkpoints and final folder.
"""

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

METHODS = ("sft", "dpo", "simpo")
LOSS_SPACES = ("latent", "pixel", "latent+pixel")
PIXEL_TARGETS = ("x_t", "x_0")
MIXED_PRECISION = ("no", "fp16", "bf16")
VAE_DTYPES = ("auto", "fp32", "bf16")
LR_SCHEDULES = ("constant", "linear", "cosine")

# eq. 4 without the 0.5 factor: diffusers' SD 1.5 script value, the original Diffusion-DPO
# code's β = 5000 with its 0.5 (see training.losses).
DEFAULT_DPO_BETA = 2500.0
# SimPO has no reference, so the error gap is not zero at step 0 and DPO-sized β saturates
# the sigmoid (zero gradient). docs/training.md explains how to sweep it.
DEFAULT_SIMPO_BETA = 100.0


class ConfigError(ValueError):
    pass


def _opt(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass(frozen=True)
class TrainConfig:
    model: str = _opt("", "diffusers pipeline folder to start from (U-Net or PixArt-style DiT)")
    data: str = _opt(
        "",
        "training data: a preference export folder (pairs.jsonl + images/), a pairs .jsonl, "
        "a Pick-a-Pic style .parquet, or for sft a folder with metadata.jsonl / a .jsonl of "
        "image + caption",
    )
    output_dir: str = _opt("", "where checkpoints, metrics.jsonl and the final model go")
    method: str = _opt("simpo", "sft, dpo or simpo", choices=METHODS)
    loss_space: str = _opt("latent+pixel", "latent, pixel or latent+pixel", choices=LOSS_SPACES)
    pixel_weight: float | None = _opt(
        None, "λ (sft) or μ (dpo/simpo) on the pixel term; default 8 for a DiT, 2 for a U-Net"
    )
    pixel_target: str = _opt(
        "x_t", "x_t decodes at the current step (eq. 2); x_0 is eq. 8", choices=PIXEL_TARGETS
    )
    pixel_crop: float = _opt(
        1.0,
        "decode only a random latent crop of this side fraction for the pixel term "
        "(an approximation; 1 = exact)",
    )
    beta: float | None = _opt(
        None, f"β of dpo/simpo; default {DEFAULT_DPO_BETA:g} (dpo), {DEFAULT_SIMPO_BETA:g} (simpo)"
    )
    pixel_beta: float | None = _opt(None, "β of the pixel term; default: the same as --beta")
    gamma: float = _opt(0.0, "SimPO target margin γ (eq. 5 has none)")
    resolution: int | None = _opt(
        None,
        "training resolution in pixels, a multiple of the VAE's downscaling times the DiT's "
        "patch size or the U-Net's downsampling (checked once the model is loaded); "
        "default: the model's native size",
    )
    random_flip: bool = _opt(False, "flip images horizontally at random (winner and loser together)")
    empty_prompt_prob: float = _opt(0.1, "share of captions replaced by the empty prompt (keeps CFG working)")
    share_noise: bool = _opt(True, "winner and loser get the same noise (they always share the timestep)")
    max_steps: int = _opt(100, "optimizer steps to run")
    batch_size: int = _opt(1, "pairs (or images, for sft) per device per micro-step")
    gradient_accumulation_steps: int = _opt(1, "micro-steps per optimizer step")
    learning_rate: float = _opt(1e-5, "peak learning rate of AdamW")
    weight_decay: float = _opt(5e-6, "AdamW weight decay (paper: 5e-6)")
    max_grad_norm: float = _opt(1.0, "gradient clipping norm (0 turns clipping off)")
    lr_schedule: str = _opt("constant", "learning-rate schedule after warm-up", choices=LR_SCHEDULES)
    lr_warmup_steps: int = _opt(0, "linear warm-up steps")
    mixed_precision: str = _opt("no", "no, fp16 or bf16 (through accelerate)", choices=MIXED_PRECISION)
    vae_dtype: str = _opt(
        "auto",
        "VAE precision: fp32, bf16, or auto (bf16 under bf16, else fp32; never fp16)",
        choices=VAE_DTYPES,
    )
    gradient_checkpointing: bool = _opt(False, "checkpoint the denoiser's activations")
    vae_gradient_checkpointing: bool = _opt(
        False, "checkpoint the VAE decoder (the pixel loss backpropagates through it)"
    )
    lora_rank: int = _opt(0, "train LoRA adapters of this rank instead of all weights (0 = full fine-tuning)")
    lora_alpha: float | None = _opt(None, "LoRA alpha; default: the rank")
    ema_decay: float | None = _opt(
        None, "keep an EMA of the weights with this decay and save it as the final model"
    )
    checkpoint_every: int = _opt(0, "save a resumable checkpoint every K steps (0 = none)")
    checkpoints_keep: int = _opt(2, "how many recent checkpoints to keep")
    resume: str | None = _opt(None, "'latest' or a checkpoint folder to continue from")
    seed: int = _opt(0, "seed of the data order, noise, timesteps and augmentations")
    dataloader_workers: int = _opt(0, "data-loading worker processes")
    tensorboard: bool = _opt(False, "also log metrics to TensorBoard under output_dir/logs")

    def __post_init__(self):
        _validate(self)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"config {path} must hold a JSON object")
        return cls.from_dict(values)


def _validate(c: TrainConfig) -> None:
    for name in ("model", "data", "output_dir"):
        if not getattr(c, name):
            raise ConfigError(f"{name} is required")
    for f in fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, got {getattr(c, f.name)!r}")
    positive = ["max_steps", "batch_size", "gradient_accumulation_steps", "learning_rate", "checkpoints_keep"]
    positive += [n for n in ("beta", "pixel_beta", "resolution", "lora_alpha") if getattr(c, n) is not None]
    for name in positive:
        if not getattr(c, name) > 0:
            raise ConfigError(f"{name} must be positive, got {getattr(c, name)!r}")
    for name in (
        "weight_decay",
        "max_grad_norm",
        "lr_warmup_steps",
        "checkpoint_every",
        "lora_rank",
        "dataloader_workers",
    ):
        if getattr(c, name) < 0:
            raise ConfigError(f"{name} must not be negative, got {getattr(c, name)!r}")
    if c.pixel_weight is not None and c.pixel_weight < 0:
        raise ConfigError(f"pixel_weight must not be negative, got {c.pixel_weight!r}")
    if not 0 <= c.empty_prompt_prob < 1:
        raise ConfigError(f"empty_prompt_prob must be in [0, 1), got {c.empty_prompt_prob!r}")
    if not 0 < c.pixel_crop <= 1:
        raise ConfigError(f"pixel_crop must be in (0, 1], got {c.pixel_crop!r}")
    if c.ema_decay is not None and not 0 < c.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in (0, 1), got {c.ema_decay!r}")
    if c.method == "sft" and (c.beta is not None or c.pixel_beta is not None or c.gamma):
        raise ConfigError("beta, pixel_beta and gamma apply to dpo/simpo, not sft")
    if c.method != "simpo" and c.gamma:
        raise ConfigError("gamma is SimPO's margin; dpo does not take one")


def resolved(config: TrainConfig, family: str) -> TrainConfig:
    """``config`` with every defaulted field filled for a model of ``family``."""
    from training.models import PAPER_PIXEL_WEIGHT

    updates = {}
    if config.pixel_weight is None:
        updates["pixel_weight"] = PAPER_PIXEL_WEIGHT[family]
    if config.method != "sft":
        beta = (
            config.beta
            if config.beta is not None
            else (DEFAULT_DPO_BETA if config.method == "dpo" else DEFAULT_SIMPO_BETA)
        )
        updates["beta"] = beta
        updates["pixel_beta"] = config.pixel_beta if config.pixel_beta is not None else beta
    if config.lora_rank and config.lora_alpha is None:
        updates["lora_alpha"] = float(config.lora_rank)
    return replace(config, **updates)
