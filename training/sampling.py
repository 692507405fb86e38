"""Where a run's randomness comes from, so that a resumed run draws what an uninterrupted one would.

- The data order: a permutation per epoch seeded by (seed, epoch), owned by the sampler
  rather than a global RNG.
- A step's draws (VAE posterior sample, noise, timesteps, crop, empty prompts, flips): a
  generator seeded by (seed, step, micro-step, process).
- The draws made per pair, so a winner and its loser always get the same: the empty
  prompt, the horizontal flip.
"""

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochPermutation(Sampler):
    """A fresh permutation per epoch, seeded by (seed, epoch), starting ``start`` items in.

    Owning the order (instead of a global RNG) is what makes resume exact: the trainer
    sets ``epoch`` and ``start`` from the step it resumes at.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch, self.start = size, seed, 0, 0

    def __iter__(self):
        order = torch.randperm(
            self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        )
        return iter(order[self.start :].tolist())

    def __len__(self):
        return self.size - self.start


def flip_together(pixels: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror item i of every group where ``flip[i]``: ``pixels`` is ``[k·B, 3, H, W]``
    (winners, then losers), ``flip`` is ``[B]``, so a pair is always flipped as one."""
    mask = flip.repeat(pixels.shape[0] // flip.shape[0]).reshape(-1, 1, 1, 1)
    return torch.where(mask, pixels.flip(-1), pixels)


def drop_captions(captions: list[str], prob: float, generator: torch.Generator) -> list[str]:
    """Each caption replaced by the empty prompt with probability ``prob`` (keeps
    classifier-free guidance working). One draw per caption, so a pair, which has one
    caption for its winner and its loser, loses it for both."""
    drop = torch.rand(len(captions), generator=generator) < prob
    return ["" if d else text for d, text in zip(drop.tolist(), captions, strict=True)]


def step_generator(seed: int, step: int, micro: int, process: int) -> torch.Generator:
    """The generator of one micro-step's draws, seeded by (seed, step, micro-step, process)."""
    state = np.random.SeedSequence([seed, step, micro, process]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))
