"""The paper's objectives against values worked out by hand (training.losses)."""

import math

import pytest
import torch

from training.losses import dpo_loss, implicit_accuracy, latent_error, pixel_error, pixel_target, simpo_loss


def test_latent_error_is_the_per_sample_mean_of_squares():
    noise = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[2.0, 2.0], [0.0, 0.0]]]])
    pred = torch.zeros_like(noise)
    assert torch.allclose(latent_error(pred, noise), torch.tensor([1.0, 2.0]))


def double(z):
    return 2 * z


@pytest.mark.parametrize(
    "target, alpha_bar, expected",
    [
        # x_t (eq. 2): D diff = 2·√(1−ᾱ)·(ε − ε̂) → 4·(1−ᾱ)·mean((ε−ε̂)²)
        ("x_t", 0.75, 1.0),
        ("x_t", 0.36, 2.56),
        # x_0 (eq. 8): D diff = 2·√((1−ᾱ)/ᾱ)·(ε − ε̂) → 4·(1−ᾱ)/ᾱ·mean(...)
        ("x_0", 0.8, 1.0),
        ("x_0", 0.5, 4.0),
    ],
)
def test_pixel_error_by_hand(target, alpha_bar, expected):
    latents = torch.randn(1, 4, 3, 3)
    noise = torch.ones(1, 4, 3, 3)
    pred = torch.zeros(1, 4, 3, 3)
    err = pixel_error(double, latents, noise, pred, torch.tensor([alpha_bar]), target=target)
    assert err.shape == (1,)
    assert err.item() == pytest.approx(expected, rel=1e-5)


def test_pixel_error_is_zero_for_a_perfect_prediction():
    latents, noise = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    for target in ("x_t", "x_0"):
        err = pixel_error(double, latents, noise, noise.clone(), torch.tensor([0.3, 0.9]), target=target)
        assert torch.allclose(err, torch.zeros(2), atol=1e-10)


def test_pixel_error_rejects_an_unknown_target():
    with pytest.raises(ValueError, match="x_t"):
        pixel_error(
            double, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), target="x_T"
        )


@pytest.mark.parametrize("target", ["x_t", "x_0"])
def test_pixel_gradient_flows_into_the_prediction_only(target):
    """Neither the latents, the noise nor the frozen decoder get a gradient, for eq. 2 and eq. 8."""
    decoder = torch.nn.Conv2d(4, 3, 3, padding=1)
    decoder.requires_grad_(False)
    latents = torch.randn(2, 4, 5, 5, requires_grad=True)
    noise = torch.randn(2, 4, 5, 5, requires_grad=True)
    pred = torch.randn(2, 4, 5, 5, requires_grad=True)
    pixel_error(decoder, latents, noise, pred, torch.tensor([0.5, 0.7]), target=target).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert latents.grad is None
    assert noise.grad is None
    assert all(p.grad is None for p in decoder.parameters())


@pytest.mark.parametrize("target", ["x_t", "x_0"])
def test_a_precomputed_target_gives_the_same_error_without_decoding_it_again(target):
    """``target_pixels`` from ``pixel_target`` replaces the target decode, value unchanged."""
    calls = []

    def decode(z):
        calls.append(torch.is_grad_enabled())
        return double(z)

    latents, noise, pred = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    alpha_bar = torch.tensor([0.3, 0.9])
    plain = pixel_error(decode, latents, noise, pred, alpha_bar, target=target)
    assert calls == [False, True]  # the target without gradient, then the prediction
    calls.clear()
    target_pixels = pixel_target(decode, latents, noise, alpha_bar, target=target)
    again = pixel_error(decode, latents, noise, pred, alpha_bar, target=target, target_pixels=target_pixels)
    assert calls == [False, True]
    assert torch.equal(again, plain)


def test_dpo_loss_by_hand():
    # Δ = (0.5 − 0.6) − (0.7 − 0.6) = −0.2 → −log σ(10·0.2) = log(1 + e^−2)
    loss = dpo_loss(
        torch.tensor([0.5]), torch.tensor([0.7]), torch.tensor([0.6]), torch.tensor([0.6]), beta=10
    )
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_dpo_loss_is_log2_when_the_model_equals_its_reference():
    err = torch.tensor([0.3, 0.9])
    assert torch.allclose(
        dpo_loss(err, err.flip(0), err, err.flip(0), beta=2500), torch.full((2,), math.log(2))
    )


def test_simpo_loss_by_hand_with_and_without_margin():
    win, lose = torch.tensor([0.3, 0.5]), torch.tensor([0.5, 0.3])
    # −log σ(−5·(∓0.2)) = log(1 + e^∓1)
    assert torch.allclose(simpo_loss(win, lose, beta=5), torch.log1p(torch.exp(torch.tensor([-1.0, 1.0]))))
    # γ = 0.5: −log σ(1 − 0.5) = log(1 + e^−0.5)
    assert simpo_loss(win[:1], lose[:1], beta=5, gamma=0.5).item() == pytest.approx(
        math.log1p(math.exp(-0.5)), rel=1e-6
    )


def test_large_beta_stays_finite_and_linear():
    win, lose = torch.tensor([0.7]), torch.tensor([0.5])
    loss = simpo_loss(win, lose, beta=1e6)
    assert torch.isfinite(loss).all()
    assert loss.item() == pytest.approx(2e5, rel=1e-6)  # −log σ(−x) → x for large x
    assert torch.isfinite(dpo_loss(win, lose, lose, win, beta=1e9)).all()
    naive = -torch.log(torch.sigmoid(torch.tensor([-2e5])))
    assert torch.isinf(naive).all()  # what logsigmoid avoids


def test_losses_are_per_pair_and_differentiable():
    win = torch.tensor([0.2, 0.4, 0.6], requires_grad=True)
    lose = torch.tensor([0.3, 0.3, 0.3])
    loss = simpo_loss(win, lose, beta=2.0)
    assert loss.shape == (3,)
    loss.mean().backward()
    assert (win.grad > 0).all()  # lowering the winner's error lowers the loss


def test_implicit_accuracy_counts_ties_as_half():
    assert implicit_accuracy(torch.tensor([-1.0, 0.0, 1.0, -2.0])).item() == pytest.approx(0.625)
