"""The training sampler: the shuffle order, each optimizer step's images and every sample's augmentation
follow from the run seed and the global batch, not from the number of processes.

albumentations 2.x keeps its own random generators, which ``seed_everything`` does not reach, so
two runs with the same seed augmented differently. Here the sampler hands each sample a seed of
its own, derived from ``(run seed, epoch, sample index)``, and the dataset seeds the pipeline with
it just before transforming that sample. The augmentation of a sample is then the same whatever
the number of workers or DDP ranks and after a resume (Lightning sets the sampler's epoch), and
the teacher-logit cache can replay the geometry a sample was given.

Each epoch is one seeded permutation cut into global batches (the incomplete last one dropped);
optimizer step k trains on global batch k, of which rank r takes the r-th contiguous share. One
process with a batch of 16 and four with 4 each (or two with 4 and two accumulation steps)
therefore see the same images at every step, which is what makes a recipe's result independent of
the GPU count (the loss is normalised over the whole global batch too: segkd.runtime.distributed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from segkd.data.errors import DatasetError


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    """A well-mixed 32-bit seed for one sample in one epoch (SeedSequence avoids correlated streams)."""
    return int(np.random.SeedSequence([run_seed, epoch, index]).generate_state(1)[0])


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is split: ``world`` processes x ``accumulate`` micro-batches of ``per_device``."""

    global_batch: int
    world: int
    per_device: int
    accumulate: int


def plan_batches(global_batch: int, world: int, device_batch: Optional[int] = None) -> BatchPlan:
    """Split the global batch (``dataset.batch_size``) over ``world`` processes; ``device_batch`` caps
    the micro-batch one device holds, the rest is made up by gradient accumulation."""
    if global_batch % world:
        raise DatasetError(
            f"dataset.batch_size={global_batch} is the global batch (all processes together) and does not split "
            f"over {world} processes; set dataset.batch_size to a multiple of {world}"
        )
    share = global_batch // world
    per_device = share if device_batch is None else int(device_batch)
    if per_device < 1 or share % per_device:
        raise DatasetError(
            f"dataset.device_batch_size={device_batch} does not divide the {share} images each of {world} "
            f"processes takes of the global batch dataset.batch_size={global_batch}; set dataset.device_batch_size "
            f"to a divisor of {share} (or null for {share})"
        )
    return BatchPlan(global_batch, world, per_device, share // per_device)


class SeededSampler(DistributedSampler):
    """This rank's share of each global batch, each index paired with its augmentation seed: yields
    ``(index, seed)``.

    A DistributedSampler even on one process (``num_replicas=1``), so Lightning keeps it under DDP
    instead of wrapping it, and calls :meth:`set_epoch` at every epoch, resumed runs included.
    ``global_batch=None`` treats the whole split as one batch to share (evaluation-style sharding).

    :meth:`skip_steps` resumes inside an epoch: a checkpoint written mid-epoch (on a preemption
    signal, or every N minutes) records how many optimizer steps of that epoch were done, and the
    resumed run's sampler starts after them instead of replaying the epoch from its start.
    """

    def __init__(
        self,
        dataset: Dataset,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        global_batch: Optional[int] = None,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        total = len(dataset)  # type: ignore[arg-type]
        self.global_batch = int(global_batch) if global_batch else math.ceil(total / num_replicas) * num_replicas
        if self.global_batch % num_replicas:
            raise ValueError(f"a global batch of {self.global_batch} does not split over {num_replicas} processes")
        self.share = self.global_batch // num_replicas
        self.steps = total // self.global_batch if global_batch else 1
        self._skip: tuple[int, int] = (-1, 0)  # (epoch, steps) to skip once

    def skip_steps(self, epoch: int, steps: int) -> None:
        """Leave out the first ``steps`` global batches of ``epoch`` (once: the next epoch is whole)."""
        self._skip = (int(epoch), int(steps))

    def _order(self) -> list[int]:
        total = len(self.dataset)  # type: ignore[arg-type]
        if not self.shuffle:
            return list(range(total))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(total, generator=generator).tolist()

    def _indices(self) -> list[int]:
        order = self._order()
        if len(order) < self.steps * self.global_batch:  # the whole split as one padded batch
            order += order[: self.steps * self.global_batch - len(order)]
        first = self._skip[1] if self._skip[0] == self.epoch else 0
        mine: list[int] = []
        for step in range(first, self.steps):
            start = step * self.global_batch + self.rank * self.share
            mine.extend(order[start : start + self.share])
        return mine

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = self._indices()
        self._skip = (-1, 0)
        for index in indices:
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        # The whole epoch even when resuming inside it: Lightning counts the epoch's batches from the
        # checkpoint's progress, so a shorter length would end the resumed epoch early.
        return self.steps * self.share


def resolve_seed(seed: Optional[int]) -> int:
    """The run seed, or a fresh one (logged by the caller) when the config leaves it unset."""
    return int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
