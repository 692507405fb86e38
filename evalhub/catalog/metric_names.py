"""Readable names of the trainer's metrics: the keys of its ``metrics.jsonl`` records, which
are also a trained version's ``final_metrics``.

One mapping, read by the version page (its final metrics) and by the job page (the legend
of its loss chart). A key the mapping does not know is humanized (``ema_loss`` → "EMA
loss"), never shown raw.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """How one metric reads: its name, its unit, and whether it is a share in [0, 1]
    (shown as a percentage)."""

    name: str
    unit: str = ""
    share: bool = False


# The keys of training.trainer's records (Trainer._log), in the order they are written.
METRICS = {
    "step": Metric("Step"),
    "epoch": Metric("Epoch"),
    "loss": Metric("Loss"),
    "latent_loss": Metric("Latent loss"),
    "pixel_loss": Metric("Pixel loss"),
    "implicit_acc": Metric("Implicit accuracy", share=True),
    "implicit_acc_latent": Metric("Implicit accuracy (latent)", share=True),
    "implicit_acc_pixel": Metric("Implicit accuracy (pixel)", share=True),
    "saturated_latent": Metric("Saturated logits (latent)", share=True),
    "saturated_pixel": Metric("Saturated logits (pixel)", share=True),
    # Preference methods, per loss term: mean denoising errors of the model (and, for DPO,
    # the frozen reference) on winners and losers, and the implicit reward margin −β·margin.
    "model_err_w_latent": Metric("Model error (winner, latent)"),
    "model_err_l_latent": Metric("Model error (loser, latent)"),
    "ref_err_w_latent": Metric("Reference error (winner, latent)"),
    "ref_err_l_latent": Metric("Reference error (loser, latent)"),
    "reward_margin_latent": Metric("Reward margin (latent)"),
    "model_err_w_pixel": Metric("Model error (winner, pixel)"),
    "model_err_l_pixel": Metric("Model error (loser, pixel)"),
    "ref_err_w_pixel": Metric("Reference error (winner, pixel)"),
    "ref_err_l_pixel": Metric("Reference error (loser, pixel)"),
    "reward_margin_pixel": Metric("Reward margin (pixel)"),
    # The first term's, under the names of diffusers' DPO script.
    "raw_model_loss": Metric("Raw model loss"),
    "raw_ref_loss": Metric("Raw reference loss"),
    "reward_margin": Metric("Reward margin"),
    "lr": Metric("Learning rate"),
    "grad_norm": Metric("Gradient norm"),
    "samples_per_s": Metric("Throughput", unit="samples/s"),
}

# Words a humanized key spells differently from its lower-case form.
WORDS = {
    "acc": "accuracy",
    "clip": "CLIP",
    "dit": "DiT",
    "dpo": "DPO",
    "ema": "EMA",
    "fid": "FID",
    "grad": "gradient",
    "kl": "KL",
    "lora": "LoRA",
    "lr": "LR",
    "mse": "MSE",
    "sft": "SFT",
    "simpo": "SimPO",
    "unet": "U-Net",
    "uri": "URI",
    "vae": "VAE",
}


def humanize(key: str) -> str:
    """``key`` as words: underscores as spaces, known acronyms spelled right, the first
    letter capital (``ema_grad_norm`` → "EMA gradient norm")."""
    words = [WORDS.get(word.lower(), word) for word in key.replace("-", "_").split("_") if word]
    if not words:
        return key
    first = words[0]
    words[0] = first[0].upper() + first[1:] if first.islower() else first
    return " ".join(words)


def metric_name(key: str) -> str:
    """The readable name of the metric ``key``."""
    metric = METRICS.get(key)
    return metric.name if metric else humanize(key)


def metric_value(key: str, value) -> str:
    """``value`` of the metric ``key`` as text: four significant digits, a share as a
    percentage, with the metric's unit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    metric = METRICS.get(key, Metric(""))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if metric.share:
        return f"{100 * value:.1f} %"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {metric.unit}" if metric.unit else text


def metrics_readable(metrics: dict) -> list[tuple[str, str]]:
    """``metrics`` (key → value) as (name, value text) pairs: the known metrics in the
    trainer's order, then the others by key. Not in the dict's order, which a JSON column
    does not keep (PostgreSQL's jsonb orders keys by length)."""
    known = list(METRICS)
    ordered = sorted(metrics, key=lambda key: (known.index(key), "") if key in METRICS else (len(known), key))
    return [(metric_name(key), metric_value(key, metrics[key])) for key in ordered]


def metric_names(keys) -> dict[str, str]:
    """The readable name of each of ``keys`` (for a chart's legend)."""
    return {key: metric_name(key) for key in keys}
