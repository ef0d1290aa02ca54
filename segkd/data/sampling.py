"""The training sampler: the shuffle order and every sample's augmentation follow from the run seed.

albumentations 2.x keeps its own random generators, which ``seed_everything`` does not reach, so
two runs with the same seed augmented differently. Here the sampler hands each sample a seed of
its own, derived from ``(run seed, epoch, sample index)``, and the dataset seeds the pipeline with
it just before transforming that sample. The augmentation of a sample is then the same whatever
the number of workers or DDP ranks and after a resume (Lightning sets the sampler's epoch), and
the teacher-logit cache can replay the geometry a sample was given.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
from torch.utils.data import Dataset, DistributedSampler


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    """A well-mixed 32-bit seed for one sample in one epoch (SeedSequence avoids correlated streams)."""
    return int(np.random.SeedSequence([run_seed, epoch, index]).generate_state(1)[0])


class SeededSampler(DistributedSampler):
    """Shuffled indices for this rank, each paired with its augmentation seed: yields ``(index, seed)``.

    A DistributedSampler even on one process (``num_replicas=1``), so Lightning keeps it under DDP
    instead of wrapping it, and calls :meth:`set_epoch` at every epoch, resumed runs included.
    """

    def __init__(
        self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        for index in super().__iter__():
            yield index, sample_seed(self.seed, self.epoch, index)


def resolve_seed(seed: Optional[int]) -> int:
    """The run seed, or a fresh one (logged by the caller) when the config leaves it unset."""
    return int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
