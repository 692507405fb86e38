"""Turn a denoiser's raw output into the noise prediction ε_θ the paper's losses compare.

- ``epsilon`` (the paper): used as is.
- ``v_prediction``: v = √ᾱ·ε − √(1−ᾱ)·z₀, so ε = √ᾱ·v + √(1−ᾱ)·z_t.
- ``sample`` (x₀-prediction) and anything else are refused: turning x₀ into ε divides by
  √(1−ᾱ), which explodes at small t, so such a model needs its own loss, not this one.

A DiT with learned variance (PixArt-α's ``out_channels = 2 × in_channels``) returns the
noise and the variance stacked on the channel axis; only the first half is ε.
"""

import torch

SUPPORTED_PREDICTION_TYPES = ("epsilon", "v_prediction")


class UnsupportedPredictionType(ValueError):
    pass


def check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in SUPPORTED_PREDICTION_TYPES:
        raise UnsupportedPredictionType(
            f"prediction type {prediction_type!r} is not supported: the losses compare noise "
            f"predictions, which this package derives from {' or '.join(SUPPORTED_PREDICTION_TYPES)} "
            "models (an x0/'sample' model would need division by sqrt(1 - alpha_bar), unstable near t=0)"
        )


def noise_prediction(
    model_output: torch.Tensor,
    noisy_latents: torch.Tensor,
    alpha_bar: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """ε_θ(z_t, t) from the model's output, shape of ``noisy_latents``."""
    check_prediction_type(prediction_type)
    channels = noisy_latents.shape[1]
    if model_output.shape[1] == 2 * channels:
        model_output = model_output[:, :channels]
    elif model_output.shape[1] != channels:
        raise ValueError(f"denoiser returned {model_output.shape[1]} channels for {channels}-channel latents")
    if prediction_type == "epsilon":
        return model_output
    a = alpha_bar.to(model_output.dtype).reshape(-1, *([1] * (noisy_latents.dim() - 1)))
    return a.sqrt() * model_output + (1 - a).sqrt() * noisy_latents
