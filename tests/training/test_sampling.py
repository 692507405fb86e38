"""Seeded draws: epoch order, per-step generators, per-pair flips, empty prompts (training.sampling)."""

import torch

from training.sampling import EpochPermutation, drop_captions, flip_together, step_draws


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
    drawn = [drop_captions(["a cat"] * 4, 0.1, step_draws(0, step, 0, 0, 4)) for step in range(1000)]
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


def test_a_blocked_order_reads_whole_blocks_within_each_window():
    """Blocks (Parquet row groups) come in a random order; examples are shuffled only within
    windows of whole blocks, so a window's examples come from its few blocks alone."""
    blocks = [3, 3, 2, 3, 3, 3]
    starts = [0, 3, 6, 8, 11, 14]
    sampler = EpochPermutation(17, seed=1, blocks=blocks, window=6)
    order = list(sampler)
    assert sorted(order) == list(range(17))
    block_of = {i: b for b, (s, n) in enumerate(zip(starts, blocks, strict=True)) for i in range(s, s + n)}
    position, windows = 0, []
    while position < 17:  # each window: whole blocks, at least 6 examples (the last may be less)
        seen, end = set(), position
        while end < 17 and (sum(blocks[b] for b in seen) < 6 or block_of[order[end]] in seen):
            seen.add(block_of[order[end]])
            end += 1
        assert sum(blocks[b] for b in seen) == end - position
        windows.append(seen)
        position = end
    assert len(windows) >= 3
    assert order != sorted(order) and list(EpochPermutation(17, 1, blocks, 6)) == order
    sampler.epoch = 1
    assert list(sampler) != order


def test_an_example_draws_the_same_whichever_process_holds_it():
    """Example k of a micro-step's global batch gets the same draws in a batch of four on one
    process as at place 1 of a batch of two on the second process (places 2 and 3)."""
    whole = step_draws(5, 3, 1, 0, 4)
    second = step_draws(5, 3, 1, 2, 2)
    assert torch.equal(whole.uniform()[2:], second.uniform())
    assert torch.equal(whole.normal((2, 3))[2:], second.normal((2, 3)))
    assert torch.equal(whole.integers(1000)[2:], second.integers(1000))
    shared = [step_draws(5, 3, 1, first, 2).shared for first in (0, 2)]
    assert torch.equal(torch.rand(3, generator=shared[0]), torch.rand(3, generator=shared[1]))
    assert not torch.equal(step_draws(5, 4, 1, 0, 4).uniform(), step_draws(5, 3, 1, 0, 4).uniform())


def test_a_window_holds_at_most_the_blocks_a_reader_caches():
    """With 1-example blocks and a cache of 4 blocks, windows close at 4 blocks even though
    they hold fewer examples than the window size."""
    sampler = EpochPermutation(12, seed=2, blocks=[1] * 12, window=1000, max_blocks=4)
    order = list(sampler)
    assert sorted(order) == list(range(12))
    # Block order is a permutation; each run of 4 positions is one window, so shuffling
    # happens within it only: the blocks of positions 0-3 are exactly the first 4 drawn.
    drawn = torch.randperm(12, generator=torch.Generator().manual_seed(2 * 100_003)).tolist()
    for start in (0, 4, 8):
        assert sorted(order[start : start + 4]) == sorted(drawn[start : start + 4])
