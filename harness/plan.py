"""From a grid's configs to trials: what is still to run, packs of same-shape configs, the
order they run in, and what each trial asks of the cluster. No Ray, no torch training here.

    todo = pending_configs(configs, done, limit)
    packs = plan_packs(todo, pack_size, rates)              # the costliest first
    resources = [trial_resources(p, cpus, gpus, gpu_memory) for p in packs]
"""
from __future__ import annotations

import math
from collections.abc import Callable

from harness.config import TrainConfig
from harness.costmodel import Rates, pack_memory
from harness.nets import linear_weights

GPU_MAX_PACK = 96  # the largest pack harness.gpucheck measures


TINY_MODEL_WEIGHTS = 100_000   # below this (the 2D mixtures' nets), per-op overhead is most of a step
WIDE_MODEL_WEIGHTS = 16_000_000


def cpu_pack_size(cfg: TrainConfig) -> int:
    """Default --pack-size on CPU, per architecture: packs of 8; 32 for models of under 100k
    weights (G's and D's Linear layers: the 2D mixtures' nets), where a step is mostly per-op
    overhead that a pack pays once; 2 for models of more than 16M weights, whose packs of 8 take
    gigabytes. Chosen from the packs' model-steps/s over the reference trainer's (docs/benchmarks.md,
    "Pack sizes on a CPU" and "Speed variants and pack sizes on a CPU")."""
    weights = sum(linear_weights(cfg))
    return 32 if weights < TINY_MODEL_WEIGHTS else 2 if weights > WIDE_MODEL_WEIGHTS else 8


TRIAL_OVERHEAD_BYTES = 1 << 30  # the data set, the classifier, scoring, the Python process
GPU_MEMORY_USE = 0.8              # the share of a trial's slice of GPU memory its pack may fill


def gpu_pack_size(gpu_memory: float | None, gpus_per_trial: float) -> Callable[[TrainConfig], int]:
    """Default --pack-size with GPUs, per architecture: the largest pack (up to GPU_MAX_PACK) whose
    memory (`costmodel.pack_memory`) fits the trial's share of the card; 24 where the card's size is
    unknown (a driver without the GPU). A pack holds configs of one shape only, so on Table 1 it is
    at most 24 GAN and 2 EBGAN configs per seed; several seeds fill larger packs."""
    def size(cfg: TrainConfig) -> int:
        if not gpu_memory:
            return 24
        budget = GPU_MEMORY_USE * gpu_memory * min(1.0, gpus_per_trial) - TRIAL_OVERHEAD_BYTES
        return max([k for k in range(1, GPU_MAX_PACK + 1) if pack_memory(cfg, k) <= budget], default=1)
    return size


def trial_resources(pack: list[TrainConfig], cpus: float, gpus: float, gpu_memory: float | None) -> dict:
    """Ray resources of one trial, sized to its pack: CPUs as asked, host memory for the pack on
    CPU; on a GPU at least the fraction of the card the pack's memory needs (in 1/8 steps).
    Memory is rounded up to a power of sqrt(2) GiB, so that packs of similar size ask for the
    same resources and Ray Tune can reuse one worker process for them (it reuses an actor
    only for a trial that asks for the same resources)."""
    need = pack_memory(pack[0], len(pack)) + TRIAL_OVERHEAD_BYTES
    if gpus > 0:
        if gpu_memory:
            gpus = min(1.0, max(gpus, math.ceil(8 * need / gpu_memory) / 8))
        return {"cpu": cpus, "gpu": gpus}
    return {"cpu": cpus, "gpu": 0, "memory": int(2 ** (math.ceil(2 * math.log2(need / 2**30)) / 2) * 2**30)}


# --- planning (no Ray needed) ---------------------------------------------------------------

def make_packs(configs: list[TrainConfig], pack_size: int | Callable[[TrainConfig], int]) -> list[list[TrainConfig]]:
    """Group configs of identical tensor shapes, at most `pack_size` per pack (a number, or one per
    shape: `pack_size(config)`), in grid order. Seeds and optimizers may mix in a pack. A family
    that does not pack (`Family.packs` False) gets packs of 1: the reference trainer."""
    groups: dict[tuple, list[TrainConfig]] = {}
    for cfg in configs:
        groups.setdefault(cfg.shape_key(), []).append(cfg)
    sizes = {key: (pack_size(g[0]) if callable(pack_size) else pack_size) if g[0].spec.packs else 1
             for key, g in groups.items()}
    return [g[i:i + sizes[key]] for key, g in groups.items() for i in range(0, len(g), sizes[key])]


def plan_packs(todo: list[TrainConfig], pack_size, rates: Rates | None, alone: frozenset[str] = frozenset()
               ) -> list[list[TrainConfig]]:
    """The trials of a sweep: packs of `todo`, the costliest first (a greedy longest-first
    schedule keeps every slot busy to the end); configs in `alone` get a trial each."""
    packs = make_packs([c for c in todo if c.config_id not in alone], pack_size) + [
        [c] for c in todo if c.config_id in alone]
    if rates is not None:
        packs.sort(key=rates.pack_seconds, reverse=True)
    return packs


def pending_configs(configs: list[TrainConfig], done: set[str], limit: int | None) -> list[TrainConfig]:
    todo = [c for c in configs if c.config_id not in done]
    return todo[:limit] if limit is not None else todo
