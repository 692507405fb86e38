"""Every option a training or generation run takes, declared once.

Each :class:`Option` holds a value's type, bounds, choices, default and help. Everything
else is derived from these declarations: :class:`~training.config.TrainConfig` and
:class:`~training.generate_config.GenerateConfig` take their defaults and checks from them,
``python -m training`` builds its options from them, and the web app builds its job
forms and API serializers from them (``evalhub.jobs``). So a value that one of them
refuses, all of them refuse; where a bound or a rule across options refuses it, with the
same message.

:func:`train_options_validate` and :func:`generate_options_validate` check a dict of
option values, one by one and across options (β only for DPO and SimPO), and return the
resolved values. They need no paths and no model: where a default depends on the model
(λ/μ is 8 for a DiT, 2 for a U-Net), it is filled only when the model's family is given.
No torch here, and no Django.
"""

import math
from dataclasses import dataclass, field

from training.pipelines import FAMILY_NAMES

METHODS = ("sft", "dpo", "simpo")
METHOD_NAMES = {"sft": "SFT", "dpo": "DPO", "simpo": "SimPO"}  # as help texts and forms write them
LOSS_SPACES = ("latent", "pixel", "latent+pixel")
PIXEL_TARGETS = ("x_t", "x_0")
MIXED_PRECISION = ("no", "fp16", "bf16")
VAE_DTYPES = ("auto", "fp32", "bf16")
LR_SCHEDULES = ("constant", "linear", "cosine")

# Messages users see (CLI, forms, API, job errors); tests reuse them.
UNKNOWN_OPTIONS = "unknown option(s): {names}"
REQUIRED = "{name} is required"
WRONG_TYPE = "{name} must be {kind}, got {value!r}"
NOT_A_CHOICE = "{name} must be one of {choices}, got {value!r}"
NOT_POSITIVE = "{name} must be positive, got {value!r}"
NEGATIVE = "{name} must not be negative, got {value!r}"
BELOW_MINIMUM = "{name} must be at least {minimum:g}, got {value!r}"
OUT_OF_RANGE = "{name} must be in {interval}, got {value!r}"
TOO_LARGE = "{name} must be at most {cap}, got {value!r}"
STEPS_OR_EPOCHS = "give max_steps or epochs, not both"
SFT_TAKES_NO_BETA = "beta, pixel_beta and gamma apply to dpo/simpo, not sft"
GAMMA_IS_SIMPOS = "gamma is SimPO's margin; dpo does not take one"

_KIND_NAMES = {int: "a whole number", float: "a finite number", bool: "true or false", str: "text"}

# Caps of the whole-number options (``Option.cap``). Every int a run takes has one, far
# above any sensible run and well inside what stores and uses it: a job's progress is a
# 32-bit column, and a seed feeds numpy's and torch's generators and, plus an image's
# place, the catalog's 64-bit seed column (training.generate).
MAX_SEED = 2**32 - 1
MAX_STEPS = 1_000_000
MAX_BATCH = 1024
MAX_SIDE = 4096  # pixels
MAX_RANK = 1024
MAX_WORKERS = 256
MAX_VALIDATION_PROMPTS = 16
DEFAULT_MAX_STEPS = 100  # when neither max_steps nor epochs is given
VALIDATION_RENDERS = 10  # a run's validation renders when validation_every is not given


class OptionError(ValueError):
    """A value (or a combination of values) a run refuses; ``option`` names the option to
    blame, where there is one."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Option:
    """One option: its type, default, help and the values it takes.

    Bounds are inclusive (``minimum``, ``maximum``) or exclusive (``above``, ``below``).
    ``cap`` is the largest whole number taken at all where no bound says: not a rule of the
    method, a guard that keeps a value storable and a run finite (refused as "at most").
    A ``None`` default means "not set": ``per_family`` or ``per_method`` give the value it
    then takes, or ``derived_default`` says in words what it follows. ``label`` and
    ``choice_labels`` are what a form shows (default: the name, the value); ``required``
    marks the paths a config cannot do without.
    """

    name: str
    kind: type
    default: object
    help: str
    label: str = ""
    choices: tuple[str, ...] = ()
    choice_labels: dict = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    per_family: dict = field(default_factory=dict)
    per_method: dict = field(default_factory=dict)
    derived_default: str = ""
    required: bool = False
    cap: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_text(self) -> str:
        """The default in words, for help texts: ``8 for a DiT, 2 for a U-Net``."""
        if self.per_family:
            return ", ".join(f"{v:g} for a {FAMILY_NAMES[f]}" for f, v in self.per_family.items())
        if self.per_method:
            return ", ".join(f"{v:g} for {METHOD_NAMES[m]}" for m, v in self.per_method.items())
        if self.derived_default:
            return self.derived_default
        return "none" if self.default is None else f"{self.default}"

    def check(self, value):
        """``value`` if this option takes it (an int where a float is wanted, as a float).

        Raises:
            OptionError: with the message users see, naming this option.
        """
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise OptionError(self._type_message(value), self.name)
        if self.kind is float and not math.isfinite(value):
            raise OptionError(self._type_message(value), self.name)
        if self.choices and value not in self.choices:
            message = NOT_A_CHOICE.format(name=self.name, choices=", ".join(self.choices), value=value)
            raise OptionError(message, self.name)
        if not self._within_bounds(value):
            raise OptionError(self._bounds_message(value), self.name)
        if self.cap is not None and value > self.cap:
            raise OptionError(TOO_LARGE.format(name=self.name, cap=self.cap, value=value), self.name)
        return value

    def _type_message(self, value) -> str:
        return WRONG_TYPE.format(name=self.name, kind=_KIND_NAMES[self.kind], value=value)

    def _within_bounds(self, value) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )

    def _bounds_message(self, value) -> str:
        low = self.minimum if self.above is None else self.above
        high = self.maximum if self.below is None else self.below
        if low == 0 and high is None:
            return (NEGATIVE if self.above is None else NOT_POSITIVE).format(name=self.name, value=value)
        if self.minimum is not None and high is None:
            return BELOW_MINIMUM.format(name=self.name, minimum=low, value=value)
        interval = "{}{}, {}{}".format(
            "[" if self.minimum is not None else "(",
            "-inf" if low is None else f"{low:g}",
            "inf" if high is None else f"{high:g}",
            "]" if self.maximum is not None else ")",
        )
        return OUT_OF_RANGE.format(name=self.name, interval=interval, value=value)


def option_field(option: Option):
    """A config dataclass field for ``option``: its default, and the declaration itself in
    the field's metadata, where the CLI reads it."""
    return field(default=option.default, metadata={"option": option})


def _by_name(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


# -- training -----------------------------------------------------------------------------

# β of eq. 4 without the 0.5 factor: diffusers' SD 1.5 script value, the original
# Diffusion-DPO code's β = 5000 with its 0.5 (see training.losses). SimPO has no
# reference, so the error gap is not zero at step 0 and DPO-sized β saturates the sigmoid
# (zero gradient); docs/training.md explains how to sweep it.
DEFAULT_BETA = {"dpo": 2500.0, "simpo": 100.0}

TRAIN_OPTIONS = _by_name(
    Option(
        "method",
        str,
        "simpo",
        "SFT, DPO or SimPO",
        choices=METHODS,
        choice_labels=METHOD_NAMES,
    ),
    Option(
        "loss_space",
        str,
        "latent+pixel",
        "latent, pixel or latent+pixel",
        choices=LOSS_SPACES,
        choice_labels={"latent+pixel": "latent + pixel"},
    ),
    Option(
        "pixel_weight",
        float,
        None,
        "λ (SFT) or μ (DPO and SimPO) on the pixel term",
        label="Pixel weight (λ / μ)",
        minimum=0,
        per_family={"dit": 8.0, "unet": 2.0},  # paper §4.2
    ),
    Option(
        "pixel_target",
        str,
        "x_t",
        "x_t decodes at the current step (eq. 2); x_0 is eq. 8",
        choices=PIXEL_TARGETS,
    ),
    Option(
        "pixel_crop",
        float,
        1.0,
        "decode only a random latent crop of this side fraction for the pixel term "
        "(an approximation; 1 = exact)",
        above=0,
        maximum=1,
    ),
    Option("beta", float, None, "β of DPO and SimPO", label="β", above=0, per_method=DEFAULT_BETA),
    Option(
        "pixel_beta",
        float,
        None,
        "β of the pixel term",
        label="Pixel β",
        above=0,
        derived_default="the same as β",
    ),
    Option("gamma", float, 0.0, "SimPO target margin γ (eq. 5 has none)", label="γ"),
    Option(
        "resolution",
        int,
        None,
        "training resolution in pixels, a multiple of the VAE's downscaling times the DiT's "
        "patch size or the U-Net's downsampling (checked once the model is loaded)",
        above=0,
        cap=MAX_SIDE,
        derived_default="the model's native size",
    ),
    Option("random_flip", bool, False, "flip images horizontally at random (winner and loser together)"),
    Option(
        "empty_prompt_prob",
        float,
        0.1,
        "share of captions replaced by the empty prompt (keeps CFG working)",
        label="Empty-prompt probability",
        minimum=0,
        below=1,
    ),
    Option("share_noise", bool, True, "winner and loser get the same noise (they always share the timestep)"),
    Option(
        "max_steps",
        int,
        None,
        "optimizer steps to run (or give epochs)",
        above=0,
        cap=MAX_STEPS,
        derived_default=f"{DEFAULT_MAX_STEPS}, or what epochs implies",
    ),
    Option(
        "epochs",
        int,
        None,
        "passes over the training data instead of max_steps: the steps follow from the data's "
        "size, the batch and the processes (paper: 100 for preference tuning, 140 for SFT)",
        above=0,
        cap=MAX_STEPS,
        derived_default="none (max_steps decides)",
    ),
    Option(
        "batch_size",
        int,
        1,
        "pairs (or images, for SFT) per device per micro-step",
        above=0,
        cap=MAX_BATCH,
    ),
    Option("gradient_accumulation_steps", int, 1, "micro-steps per optimizer step", above=0, cap=MAX_BATCH),
    Option("learning_rate", float, 1e-5, "peak learning rate of AdamW", above=0),
    Option("weight_decay", float, 5e-6, "AdamW weight decay (paper: 5e-6)", minimum=0),
    Option(
        "max_grad_norm",
        float,
        1.0,
        "gradient clipping norm (0 turns clipping off)",
        label="Max gradient norm",
        minimum=0,
    ),
    Option(
        "lr_schedule",
        str,
        "constant",
        "learning-rate schedule after warm-up",
        label="LR schedule",
        choices=LR_SCHEDULES,
    ),
    Option(
        "lr_warmup_steps",
        int,
        0,
        "linear warm-up steps",
        label="LR warm-up steps",
        minimum=0,
        cap=MAX_STEPS,
    ),
    Option(
        "mixed_precision",
        str,
        "no",
        "no, fp16 or bf16 (through accelerate)",
        choices=MIXED_PRECISION,
        choice_labels={"no": "fp32"},
    ),
    Option(
        "vae_dtype",
        str,
        "auto",
        "VAE precision: fp32, bf16, or auto (bf16 under bf16, else fp32; never fp16)",
        label="VAE dtype",
        choices=VAE_DTYPES,
    ),
    Option("gradient_checkpointing", bool, False, "checkpoint the denoiser's activations"),
    Option(
        "vae_gradient_checkpointing",
        bool,
        False,
        "checkpoint the VAE decoder (the pixel loss backpropagates through it)",
        label="VAE gradient checkpointing",
    ),
    Option(
        "lora_rank",
        int,
        0,
        "train LoRA adapters of this rank instead of all weights (0 = full fine-tuning)",
        label="LoRA rank",
        minimum=0,
        cap=MAX_RANK,
    ),
    Option("lora_alpha", float, None, "LoRA alpha", label="LoRA alpha", above=0, derived_default="the rank"),
    Option(
        "ema_decay",
        float,
        None,
        "keep an EMA of the weights with this decay and save it as the final model",
        label="EMA decay",
        above=0,
        below=1,
    ),
    Option(
        "checkpoint_every",
        int,
        0,
        "save a resumable checkpoint every K steps (0 = none)",
        minimum=0,
        cap=MAX_STEPS,
    ),
    Option("checkpoints_keep", int, 2, "how many recent checkpoints to keep", above=0, cap=MAX_STEPS),
    Option(
        "seed",
        int,
        0,
        "seed of the data order, noise, timesteps and augmentations",
        minimum=0,
        cap=MAX_SEED,
    ),
    Option(
        "dataloader_workers",
        int,
        0,
        "data-loading worker processes",
        label="Data-loader workers",
        minimum=0,
        cap=MAX_WORKERS,
    ),
    Option(
        "validation_every",
        int,
        None,
        "render the validation prompts with fixed seeds every K steps, and at the start and "
        "the end (0 = never)",
        label="Validation samples every",
        minimum=0,
        cap=MAX_STEPS,
        derived_default="about ten times a run",
    ),
    Option(
        "validation_prompts",
        int,
        4,
        f"how many prompts a validation render shows (at most {MAX_VALIDATION_PROMPTS})",
        minimum=1,
        maximum=MAX_VALIDATION_PROMPTS,
    ),
    Option(
        "validation_steps",
        int,
        20,
        "DDIM steps of a validation render (at most 1000)",
        label="Validation DDIM steps",
        minimum=1,
        maximum=1000,
    ),
    Option(
        "verify_replicas",
        bool,
        False,
        "under several processes, compare every process's trained weights after each step "
        "(their digests go to metrics.jsonl) and stop if they differ",
    ),
    Option(
        "tensorboard",
        bool,
        False,
        "also log metrics to TensorBoard under output_dir/logs",
        label="TensorBoard",
    ),
)


def _checked(options: dict[str, Option], values: dict) -> dict:
    """Every option's value: the given ones checked, the others at their declared default."""
    unknown = sorted(set(values) - set(options))
    if unknown:
        raise OptionError(UNKNOWN_OPTIONS.format(names=", ".join(unknown)))
    checked = {}
    for name, option in options.items():
        if name not in values or values[name] is None and option.default is None:
            checked[name] = option.default
        else:
            checked[name] = option.check(values[name])
    return checked


def _fill_per_family(options: dict[str, Option], resolved: dict, family: str | None) -> None:
    for name, option in options.items():
        if resolved[name] is None and option.per_family and family is not None:
            resolved[name] = option.per_family[family]


def train_options_validate(values: dict, family: str | None = None) -> dict:
    """Check one training run's options and resolve their defaults.

    Args:
        values: option name → value, for any subset of :data:`TRAIN_OPTIONS`. ``None``
            leaves an option without a fixed default unset (as if not given).
        family: ``unet`` or ``dit`` to resolve the defaults that depend on the model
            (``pixel_weight``); ``None`` leaves them ``None``.

    Returns:
        Every training option's value: the given ones, the declared defaults, β and the
        pixel term's β by method, LoRA alpha from the rank, ``max_steps`` at its default
        when neither it nor ``epochs`` is given. With ``epochs``, ``max_steps`` (and an
        unset ``validation_every``) stay ``None``: the trainer fills them once it knows
        the data's size (:func:`steps_for_epochs`).

    Raises:
        OptionError: an unknown option, a value out of its type, choices or bounds, or a
            combination the methods do not take (the message users see).
    """
    resolved = _checked(TRAIN_OPTIONS, values)
    method = resolved["method"]
    given = [name for name in ("beta", "pixel_beta", "gamma") if resolved[name]]
    if method == "sft" and given:
        raise OptionError(SFT_TAKES_NO_BETA, given[0])
    if method != "simpo" and resolved["gamma"]:
        raise OptionError(GAMMA_IS_SIMPOS, "gamma")
    if method != "sft":
        if resolved["beta"] is None:
            resolved["beta"] = TRAIN_OPTIONS["beta"].per_method[method]
        if resolved["pixel_beta"] is None:
            resolved["pixel_beta"] = resolved["beta"]
    if resolved["max_steps"] is not None and resolved["epochs"] is not None:
        raise OptionError(STEPS_OR_EPOCHS, "epochs")
    if resolved["max_steps"] is None and resolved["epochs"] is None:
        resolved["max_steps"] = DEFAULT_MAX_STEPS
    if resolved["lora_rank"] and resolved["lora_alpha"] is None:
        resolved["lora_alpha"] = float(resolved["lora_rank"])
    _fill_per_family(TRAIN_OPTIONS, resolved, family)
    return resolved


# -- generation ---------------------------------------------------------------------------

GENERATE_OPTIONS = _by_name(
    Option("images_per_prompt", int, 5, "images per prompt (at most 64)", minimum=1, maximum=64),
    Option("steps", int, 50, "DDIM steps (at most 1000)", label="DDIM steps", minimum=1, maximum=1000),
    Option(
        "guidance",
        float,
        None,
        "classifier-free guidance scale",
        label="Guidance scale",
        minimum=0,
        per_family={"unet": 7.5, "dit": 4.5},  # the reference pipelines: SD 1.5, PixArt-α
    ),
    Option("seed", int, 0, "seed of the first image", minimum=0, cap=MAX_SEED),
    Option(
        "resolution",
        int,
        None,
        "image side in pixels",
        above=0,
        cap=MAX_SIDE,
        derived_default="the model's",
    ),
    Option("batch_size", int, 5, "images per pipeline call", minimum=1, cap=MAX_BATCH),
)


def steps_for_epochs(epochs: int, examples: int, global_batch: int) -> int:
    """The optimizer steps ``epochs`` passes over ``examples`` take at ``global_batch``
    examples a step (per-process batch × accumulation × processes; a last partial batch
    counts as a step, as the data loader yields it)."""
    return epochs * max(1, math.ceil(examples / global_batch))


def validation_interval(every: int | None, max_steps: int) -> int:
    """Steps between validation renders: ``every`` where given (0 = never), else about
    :data:`VALIDATION_RENDERS` renders a run."""
    return every if every is not None else max(1, max_steps // VALIDATION_RENDERS)


def generate_options_validate(values: dict, family: str | None = None) -> dict:
    """Check one generation run's options and resolve their defaults.

    Args:
        values: option name → value, for any subset of :data:`GENERATE_OPTIONS`; ``None``
            leaves an option without a fixed default unset.
        family: ``unet`` or ``dit`` to resolve ``guidance``; ``None`` leaves it ``None``.

    Returns:
        Every generation option's value.

    Raises:
        OptionError: an unknown option or a value out of its type or bounds.
    """
    resolved = _checked(GENERATE_OPTIONS, values)
    _fill_per_family(GENERATE_OPTIONS, resolved, family)
    return resolved
