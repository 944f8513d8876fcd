"""What a pack of configs costs, in seconds: FLOPs per step from the architecture, times a rate
per device kind measured by `python -m harness.bench --save-rates`.

    flops_per_step(cfg)              matmul FLOPs of one training step of one config
    Rates.load(kind)                 the measured rates of a device kind ("cpu", "cuda"), or None
    rates.pack_seconds(pack)         seconds to build, train and score one pack
    project(packs, rates, slots)     seconds for all packs on `slots` concurrent trials
    pack_memory(cfg, K)              bytes a pack of K members of cfg's shape needs

The model (each term fitted by the benchmark, see harness/tools/bench.py):
    pack seconds = trial overhead + steps x (step overhead + K x flops_per_step / flops per s)
                   + K x samples scored x seconds per scored sample x the dataset's score_cost
The sweep uses it for the projection it prints before the first trial and for its ETA, which
weighs what is left by this cost rather than by the number of configs (packs of the widest
architectures cost far more than those of the narrowest).
"""
from __future__ import annotations

import heapq
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import datasets
from harness.config import TrainConfig, scored_epochs, total_steps
from harness.nets import linear_weights

RATES_FILE = Path(__file__).with_name("rates.json")


def pack_memory(cfg: TrainConfig, K: int, batch: int = 64) -> int:
    """Bytes a pack of K members of cfg's shape needs: weights, gradients, Adam's m/v/denominator
    and one member's reference modules (6 x 4 bytes per weight), plus activations."""
    params = sum(linear_weights(cfg))
    return int(K * params * 4 * 6 + batch * K * (cfg.sizeG * cfg.nLayerG + datasets.of(cfg).dim * 6) * 4 * 4)


def flops_per_step(cfg: TrainConfig) -> float:
    """Matmul FLOPs of one step (one D and one G update) of one config, with B = batchSize and
    W_G, W_D the weights of G's and D's Linear layers (a pass over W costs 2 B W):
      G: forward, backward for dW and dx                                       3 passes
      D: forward on real and fake, their backward (dW, dx), then in the G step
         a forward on the fakes and the backward for dx only                   8 passes"""
    w_g, w_d = linear_weights(cfg)
    return 2.0 * cfg.batchSize * (3 * w_g + 8 * w_d)


def scored_samples(cfg: TrainConfig) -> int:
    """Samples one config generates and classifies: each epoch's and the final set (the 8x8 grid
    is drawn but not classified: it is part of a trial's fixed cost)."""
    return scored_epochs(cfg) * cfg.epochScoreSamples + cfg.scoreSamples


@dataclass
class Rates:
    kind: str                  # "cpu" (per trial at `threads` threads) or "cuda"
    step_overhead_s: float     # fixed seconds per pack step (kernel launches, Python)
    flops_per_s: float         # sustained matmul FLOP/s of a training step
    score_s_per_sample: float  # generating + classifying one sample
    trial_overhead_s: float    # one trial's fixed cost: building the pack, writing its rows
    threads: int = 1
    measured: str = ""         # the command, machine and date the figures come from

    def pack_seconds(self, pack: list[TrainConfig]) -> float:
        c, K = pack[0], len(pack)
        train = total_steps(c) * (self.step_overhead_s + K * flops_per_step(c) / self.flops_per_s)
        score = K * scored_samples(c) * self.score_s_per_sample * datasets.of(c).score_cost
        return self.trial_overhead_s + train + score

    @staticmethod
    def load(kind: str, path: Path = RATES_FILE) -> Rates | None:
        try:
            table = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        entry = table.get(kind)
        return Rates(kind=kind, **entry) if entry else None

    def save(self, path: Path = RATES_FILE) -> None:
        from harness.atomic import write_atomic
        from harness.strict_json import dumps
        try:
            table = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            table = {}
        entry = asdict(self)
        table[entry.pop("kind")] = entry
        write_atomic(path, dumps(table, indent=2, sort_keys=True) + "\n")


def fit_step_time(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(step overhead s, FLOP/s) of  seconds = a + flops / r,  least squares over (flops, seconds)
    points with relative errors (each point weighted by 1/seconds, so small and large models
    count alike); a >= 0."""
    import numpy as np
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    A = np.stack([np.ones_like(x), x], 1) / y[:, None]
    (a, inv_r), *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)
    if a < 0 or inv_r <= 0:  # no overhead visible: a rate through the origin
        a, inv_r = 0.0, float(np.median(y / x))
    return float(a), 1.0 / float(inv_r)


def project(packs: list[list[TrainConfig]], rates: Rates, slots: int, left: list[float] | None = None) -> float:
    """Wall seconds for the packs on `slots` concurrent trials, largest first (as the sweep
    schedules them): the busiest slot's total in a greedy schedule. `left`: the share of each
    pack still to train (a resumed pack's saved epochs are not trained again; default all)."""
    loads = [0.0] * max(1, min(slots, len(packs)))
    shares = left if left is not None else [1.0] * len(packs)
    for s in sorted((rates.pack_seconds(p) * f for p, f in zip(packs, shares, strict=True)), reverse=True):
        heapq.heapreplace(loads, loads[0] + s)   # the least busy slot takes the next pack
    return max(loads)


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    seconds = round(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m {s:02d}s" if m else f"{s}s"
