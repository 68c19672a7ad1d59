"""Multi-process data-parallel training with torch DDP, launched by torchrun.

``torchrun --nproc_per_node N -m posekit.cli train CONFIG`` sets RANK / WORLD_SIZE / LOCAL_RANK; each process
trains on its own shard of every epoch's batches (`EpochBatches`), gradients are averaged by DDP, and rank 0
alone writes data, logs and checkpoints and runs evaluation.  Backend: nccl on GPU, gloo on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place: rank in [0, world), local_rank = rank on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device_type: str) -> Dist:
    """Join the process group torchrun describes in the environment (nothing to do for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)  # one GPU per process, chosen before NCCL starts
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, local)


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def mean_across(d: Dist, values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over all processes (identity for one process)."""
    if not d.active or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / d.world).tolist()))


def cleanup(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


class EpochBatches:
    """Batch sampler: epoch e's permutation of the dataset drawn from (seed, e), cut into batches of ``batch``
    (the last partial batch dropped), every ``world``-th batch going to rank ``rank``; the first ``skip``
    batches of the epoch are left out (to resume mid-epoch).  Batches are lists of (epoch, index) keys, as
    `posekit.data.topdown.TopDownDataset` takes them, so workers need no epoch state."""

    def __init__(self, size: int, batch: int, seed: int, d: Dist) -> None:
        self.size, self.batch, self.seed, self.d = size, batch, seed, d
        self.epoch, self.skip = 0, 0

    def steps_per_epoch(self) -> int:
        return self.size // self.batch // self.d.world

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.steps_per_epoch() - self.skip

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        for step in range(self.skip, self.steps_per_epoch()):
            start = (step * self.d.world + self.d.rank) * self.batch
            yield [(self.epoch, int(i)) for i in perm[start:start + self.batch]]
