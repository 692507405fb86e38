"""Seeded draws: epoch order, per-step generators, per-pair flips, empty prompts (training.sampling)."""

import torch

from training.sampling import EpochPermutation, drop_captions, flip_together, step_generator


def test_a_pair_is_flipped_as_one():
    winners = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(3, 1, 2, 2)
    pixels = torch.cat([winners, winners + 100]).expand(-1, 3, -1, -1)
    flipped = flip_together(pixels, torch.tensor([True, False, True]))
    for i, should in enumerate([True, False, True]):
        for item in (i, i + 3):  # the winner and its loser
            expected = pixels[item].flip(-1) if should else pixels[item]
            assert torch.equal(flipped[item], expected)


def test_the_empty_prompt_share_is_about_the_configured_rate():
    """Over 4,000 captions drawn as the trainer draws them, about 10% become the empty prompt."""
    drawn = [drop_captions(["a cat"] * 4, 0.1, step_generator(0, step, 0, 0)) for step in range(1000)]
    share = sum(caption == "" for captions in drawn for caption in captions) / 4000
    assert 0.085 < share < 0.115
    assert {caption for captions in drawn for caption in captions} == {"", "a cat"}


def test_epoch_order_is_a_seeded_permutation_that_can_start_midway():
    """Each epoch is a permutation fixed by (seed, epoch); ``start`` skips what was consumed."""
    sampler = EpochPermutation(10, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(sampler) == first
    sampler.epoch = 1
    second = list(sampler)
    assert second != first
    sampler.start = 4
    assert list(sampler) == second[4:] and len(sampler) == 6
