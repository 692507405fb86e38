"""Raw denoiser outputs to ε (training.prediction)."""

import pytest
import torch

from training.prediction import UnsupportedPredictionType, noise_prediction


def test_epsilon_passes_through():
    out = torch.randn(2, 4, 3, 3)
    assert noise_prediction(out, torch.randn(2, 4, 3, 3), torch.tensor([0.5, 0.5]), "epsilon") is out


def test_v_prediction_is_converted_to_epsilon():
    z0, eps = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    a = torch.tensor([0.3, 0.8])
    ab = a.reshape(-1, 1, 1, 1)
    z_t = ab.sqrt() * z0 + (1 - ab).sqrt() * eps
    v = ab.sqrt() * eps - (1 - ab).sqrt() * z0
    assert torch.allclose(noise_prediction(v, z_t, a, "v_prediction"), eps, atol=1e-5)


def test_learned_sigma_output_keeps_the_noise_half():
    out = torch.randn(2, 8, 3, 3)
    assert torch.equal(noise_prediction(out, torch.randn(2, 4, 3, 3), torch.ones(2), "epsilon"), out[:, :4])


def test_other_prediction_types_are_refused_with_a_reason():
    with pytest.raises(UnsupportedPredictionType, match="sample"):
        noise_prediction(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2), torch.ones(1), "sample")


def test_a_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 channels"):
        noise_prediction(torch.randn(1, 3, 2, 2), torch.randn(1, 4, 2, 2), torch.ones(1), "epsilon")
