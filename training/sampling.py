"""Where a run's randomness comes from, so that a resumed run draws what an uninterrupted one
would, and a run on several processes draws what a run on one would.

- The data order: a permutation per epoch seeded by (seed, epoch), owned by the sampler
  rather than a global RNG. A source read in blocks (Parquet row groups) is shuffled with
  locality: blocks in a random order, examples shuffled within windows of a few blocks, so
  a step reads a few blocks rather than one block per example.
- A step's draws (:class:`StepDraws`): one generator per example, seeded by (seed, step,
  micro-step, the example's place in the micro-step's global batch), for everything drawn
  per example (empty prompt, flip, VAE posterior sample, noise, timestep); and one shared
  generator, seeded by (seed, step, micro-step), for what the whole batch shares (the pixel
  crop window). Under ``accelerate launch`` process p holds places p·B … p·B + B − 1 of
  the global batch, so two processes of batch B draw for each example exactly what one
  process of batch 2B draws: the same losses and, up to the order of float sums, the same
  weights.
- The draws made per pair, so a winner and its loser always get the same: the empty
  prompt, the horizontal flip, the timestep (and the noise, unless ``share_noise`` is off).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

# Examples a locality shuffle mixes at once: a window of whole blocks at least this large
# (unless it reaches its most blocks first).
SHUFFLE_WINDOW = 1024


def _generator(*key: int) -> torch.Generator:
    state = np.random.SeedSequence(list(key)).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class EpochPermutation(Sampler):
    """A fresh order per epoch, seeded by (seed, epoch), starting ``start`` items in.

    Owning the order (instead of a global RNG) is what makes resume exact: the trainer
    sets ``epoch`` and ``start`` from the step it resumes at.

    Without ``blocks`` the order is a uniform permutation. With ``blocks`` (the sizes of
    consecutive index ranges that are read together, summing to ``size``) the blocks come
    in a random order and the examples are shuffled within windows of whole blocks holding
    at least ``window`` examples or ``max_blocks`` blocks: every example still comes once an
    epoch, and a reader that caches ``max_blocks`` blocks reads each block once.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        blocks: list[int] | None = None,
        window: int = SHUFFLE_WINDOW,
        max_blocks: int | None = None,
    ):
        if blocks is not None and sum(blocks) != size:
            raise ValueError(f"blocks cover {sum(blocks)} examples, not {size}")
        self.size, self.seed, self.epoch, self.start = size, seed, 0, 0
        self.blocks, self.window, self.max_blocks = blocks, window, max_blocks

    def order(self) -> list[int]:
        """The whole epoch's order."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if not self.blocks:
            return torch.randperm(self.size, generator=generator).tolist()
        starts = np.cumsum([0, *self.blocks])
        order, window, held = [], [], 0
        for block in torch.randperm(len(self.blocks), generator=generator).tolist():
            window.extend(range(starts[block], starts[block + 1]))
            held += 1
            if len(window) >= self.window or held == self.max_blocks:
                order.extend(_shuffled(window, generator))
                window, held = [], 0
        return order + _shuffled(window, generator)

    def __iter__(self):
        return iter(self.order()[self.start :])

    def __len__(self):
        return self.size - self.start


def _shuffled(items: list[int], generator: torch.Generator) -> list[int]:
    return [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]


@dataclass
class StepDraws:
    """The generators of one micro-step: ``examples[i]`` for example i of this process's
    micro-batch, ``shared`` for the draws every process makes alike."""

    shared: torch.Generator
    examples: list[torch.Generator]

    def uniform(self) -> torch.Tensor:
        """One uniform draw per example, ``[B]``."""
        return torch.cat([torch.rand(1, generator=g) for g in self.examples])

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """One standard normal tensor of ``shape`` per example, ``[B, *shape]``."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.examples])

    def integers(self, high: int) -> torch.Tensor:
        """One integer in [0, high) per example, ``[B]``."""
        return torch.cat([torch.randint(0, high, (1,), generator=g) for g in self.examples])


def step_draws(seed: int, step: int, micro: int, first: int, count: int) -> StepDraws:
    """The draws of micro-step ``micro`` of optimizer step ``step`` for the ``count``
    examples at places ``first`` … ``first + count − 1`` of its global batch."""
    return StepDraws(
        shared=_generator(seed, step, micro),
        examples=[_generator(seed, step, micro, first + i) for i in range(count)],
    )


def flip_together(pixels: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror item i of every group where ``flip[i]``: ``pixels`` is ``[k·B, 3, H, W]``
    (winners, then losers), ``flip`` is ``[B]``, so a pair is always flipped as one."""
    mask = flip.repeat(pixels.shape[0] // flip.shape[0]).reshape(-1, 1, 1, 1)
    return torch.where(mask, pixels.flip(-1), pixels)


def drop_captions(captions: list[str], prob: float, draws: StepDraws) -> list[str]:
    """Each caption replaced by the empty prompt with probability ``prob`` (keeps
    classifier-free guidance working). One draw per caption, so a pair, which has one
    caption for its winner and its loser, loses it for both."""
    drop = draws.uniform() < prob
    return ["" if d else text for d, text in zip(drop.tolist(), captions, strict=True)]
