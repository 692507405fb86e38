"""One frozen configuration for a training run, shared by the CLI and the web app's jobs.

Every option field carries its declaration from :mod:`training.options` (type, bounds,
default, help), so ``python -m training train --help`` lists exactly what this dataclass
accepts and a config is checked by the same rules as a job's form. Only the paths are
declared here, with the check that they are given (whether they exist is the trainer's
business). Fields left at ``None`` are resolved from the model and the method by
:func:`resolved` (paper defaults, §4.2) and the resolved copy is what a run records in its
checkpoints and final folder.
"""

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from training.options import (
    REQUIRED,
    TRAIN_OPTIONS,
    UNKNOWN_OPTIONS,
    Option,
    OptionError,
    option_field,
    train_options_validate,
)


class ConfigError(ValueError):
    pass


def _opt(name: str):
    return option_field(TRAIN_OPTIONS[name])


def _path(name: str, help_text: str, required: bool = True):
    """A path the run reads or writes (declared here: no job form takes one)."""
    return option_field(Option(name, str, "" if required else None, help_text, required=required))


@dataclass(frozen=True)
class TrainConfig:
    model: str = _path("model", "diffusers pipeline folder to start from (U-Net or PixArt-style DiT)")
    data: str = _path(
        "data",
        "training data: a preference export folder (pairs.jsonl + images/), a pairs .jsonl, "
        "a Pick-a-Pic style .parquet, a Hugging Face data set folder (data/<split>-*.parquet, "
        "or as its README card's configs say), Parquet shards as a comma list or a glob "
        "(shards/*.parquet), a datasets save_to_disk folder; for sft also a folder with "
        "metadata.jsonl, a .jsonl of image + caption or a table of image + text",
    )
    data_split: str = option_field(
        Option("data_split", str, "train", "split to read from a Hugging Face data set")
    )
    output_dir: str = _path("output_dir", "where checkpoints, metrics.jsonl and the final model go")
    method: str = _opt("method")
    loss_space: str = _opt("loss_space")
    pixel_weight: float | None = _opt("pixel_weight")
    pixel_target: str = _opt("pixel_target")
    pixel_crop: float = _opt("pixel_crop")
    beta: float | None = _opt("beta")
    pixel_beta: float | None = _opt("pixel_beta")
    gamma: float = _opt("gamma")
    resolution: int | None = _opt("resolution")
    random_flip: bool = _opt("random_flip")
    empty_prompt_prob: float = _opt("empty_prompt_prob")
    share_noise: bool = _opt("share_noise")
    max_steps: int | None = _opt("max_steps")
    epochs: int | None = _opt("epochs")
    batch_size: int = _opt("batch_size")
    gradient_accumulation_steps: int = _opt("gradient_accumulation_steps")
    learning_rate: float = _opt("learning_rate")
    weight_decay: float = _opt("weight_decay")
    max_grad_norm: float = _opt("max_grad_norm")
    lr_schedule: str = _opt("lr_schedule")
    lr_warmup_steps: int = _opt("lr_warmup_steps")
    mixed_precision: str = _opt("mixed_precision")
    vae_dtype: str = _opt("vae_dtype")
    gradient_checkpointing: bool = _opt("gradient_checkpointing")
    vae_gradient_checkpointing: bool = _opt("vae_gradient_checkpointing")
    lora_rank: int = _opt("lora_rank")
    lora_alpha: float | None = _opt("lora_alpha")
    ema_decay: float | None = _opt("ema_decay")
    checkpoint_every: int = _opt("checkpoint_every")
    checkpoints_keep: int = _opt("checkpoints_keep")
    resume: str | None = _path("resume", "'latest' or a checkpoint folder to continue from", required=False)
    seed: int = _opt("seed")
    dataloader_workers: int = _opt("dataloader_workers")
    validation_every: int | None = _opt("validation_every")
    validation_prompts: int = _opt("validation_prompts")
    validation_steps: int = _opt("validation_steps")
    validation_prompt_file: str | None = _path(
        "validation_prompt_file",
        "prompts of the validation renders (.txt, .jsonl or .csv, as generate reads them); "
        "default: the data's first captions",
        required=False,
    )
    verify_replicas: bool = _opt("verify_replicas")
    tensorboard: bool = _opt("tensorboard")

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
            raise ConfigError(UNKNOWN_OPTIONS.format(names=", ".join(unknown)))
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


def _option_values(config: TrainConfig) -> dict:
    return {name: getattr(config, name) for name in TRAIN_OPTIONS}


def _validate(c: TrainConfig) -> None:
    for name in ("model", "data", "output_dir", "data_split"):
        if not getattr(c, name):
            raise ConfigError(REQUIRED.format(name=name))
    try:
        train_options_validate(_option_values(c))
    except OptionError as exc:
        raise ConfigError(str(exc)) from exc


def resolved(config: TrainConfig, family: str) -> TrainConfig:
    """``config`` with every defaulted field filled for a model of ``family``."""
    return replace(config, **train_options_validate(_option_values(config), family))
