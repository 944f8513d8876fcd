"""Benchmark: model-steps per second of the reference trainer and of packs, and what that
means for the whole Table 1 grid.

    python -m harness.bench [--quick] [--device auto|cpu|cuda] [--threads 1] [--sizes 2,8,24]
                            [--archs small,middle,large] [--concurrent]

What is measured: training steps only (one D and one G update per model), through the real
trainers (`harness.train.train`, `harness.packed.train_pack`) on synthetic images, from their
own `stepsPerSec` (build and scoring excluded): steady-state seconds per step are the time
difference of a long and a short run over their step difference (first-step costs cancel),
best of a few repeats. A model-step is one step of one config: a pack of K doing s steps/s
makes K*s model-steps/s. "x ref" is over the reference trainer on the same configs.

Configs: GAN configs of one Table 1 architecture, mixing optimizers as Table 1 does. Packs of
K take the first K of the architecture's 24 GAN configs ordered by (lr, dropoutD, optimizers
adam/adam, sgd/sgd, adam/sgd, sgd/adam), so any pack of 2 or more is half Adam, half SGD. The
reference trainer is timed on the 8 (optimizers x dropoutD) classes, and its rate for a pack's
configs is K / sum of their times per step (the learning rate does not change the cost).

Each measurement runs in its own process (so peak memory is its own: max RSS growth on CPU,
torch.cuda.max_memory_allocated on CUDA). A pack whose memory estimate exceeds 60% of the free
memory is skipped.

Projection: each Table 1 config's cost per step is taken as c = 3 P_G + 7 P_D (its matmul
weights: G's forward and backward; D's three forwards, D-step backward and G-step input
gradient); seconds per model-step are interpolated piecewise-linearly in log(c) - log(time)
between the measured architectures (clamped outside). GAN configs train in packs of the size
given, at most the configs of one shape (Table 1: 24 GAN and 2 EBGAN configs per architecture).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace

import torch

from harness.config import TrainConfig
from harness.metrics import Scores
from harness.models import IMAGE_DIM, linear_weights
from harness.packed import pack_memory

ARCHS = {"small": (2, 2, 400, 128), "middle": (3, 3, 1600, 512), "large": (5, 5, 3200, 1024)}
COMBOS = [("adam", "adam"), ("sgd", "sgd"), ("adam", "sgd"), ("sgd", "adam")]
TABLE1 = dict(runs=6656, epochs=25, steps_per_epoch=937)
# timed steps per run (full, quick) and repeats, per architecture
STEPS = {"small": ((60, 30), 3), "middle": ((8, 4), 2), "large": ((4, 2), 1)}


class NullScorer:
    """Stands in for Scorer: the benchmark times steps, not scoring."""

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty(len(images), 10), torch.empty(len(images), 8)

    def scores_from(self, log_p: torch.Tensor, feats: torch.Tensor, fid: bool = True) -> Scores:
        return Scores(0.0, 1.0, 0.0, [0] * 10)

    def score(self, images: torch.Tensor, fid: bool = True) -> Scores:
        return self.scores_from(*self.classify(images), fid=fid)


def table1_gan_configs(arch: str, steps: int, batch: int = 64) -> list[TrainConfig]:
    """The 24 GAN configs of one architecture, ordered so every prefix mixes optimizers."""
    nLayerG, nLayerD, sizeG, sizeD = ARCHS[arch]
    # `steps` steps of an epoch of steps + 1: no end-of-epoch work (weight check, scoring) in the timing
    base = TrainConfig(family="gan", nLayerG=nLayerG, nLayerD=nLayerD, sizeG=sizeG, sizeD=sizeD,
                       trainImages=batch * (steps + 1), epochs=steps / (steps + 1), batchSize=batch,
                       scoreSamples=64, epochScoreSamples=64)
    return [replace(base, lr=lr, dropoutD=dropout, optimD=d, optimG=g)
            for lr in (0.01, 0.001, 0.0001) for dropout in (False, True) for d, g in COMBOS]


def step_cost(cfg: TrainConfig) -> float:
    g, d = linear_weights(cfg)
    return 3 * g + 7 * d


# --- one measurement, in its own process ------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def seconds_per_step(run, steps: int, repeats: int) -> float:
    """Steady-state seconds per step of `run(n)` (a trainer call of n steps returning its steps/s):
    (time of `steps` steps - time of n1 < steps steps) / (steps - n1), best of `repeats`, after
    one warm-up call, so that first-step costs (page faults of fresh buffers) cancel out."""
    n1 = max(1, steps // 3)
    run(n1)
    return min((steps / run(steps) - n1 / run(n1)) / (steps - n1) for _ in range(repeats))


def worker(job: dict) -> dict:
    """Time the reference (pack == 1: each of the 8 cost classes) or one pack; report JSON."""
    from harness.packed import train_pack
    from harness.train import pick_device, train

    torch.set_num_threads(job["threads"])
    device = pick_device(job["device"])
    steps, repeats = job["steps"], job["repeats"]
    data = (torch.rand(64 * max(steps + 1, 4), IMAGE_DIM) * 2 - 1).to(device)
    warm = replace(table1_gan_configs(job["arch"], 3)[0], sizeG=32, sizeD=16)
    train(warm, data, NullScorer(), None, device)                       # library warm-up
    train_pack([warm, replace(warm, optimD="sgd")], data, NullScorer(), None, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base = rss_bytes()
    out: dict = {}
    if job["pack"] == 1:
        out["sec_per_step"] = {}
        for i in range(8):
            def run(n: int) -> float:
                return train(table1_gan_configs(job["arch"], n)[i], data, NullScorer(), None, device).stepsPerSec
            c = table1_gan_configs(job["arch"], 1)[i]
            out["sec_per_step"][f"{c.optimD}/{c.optimG}/{c.dropoutD}"] = seconds_per_step(run, steps, repeats)
    else:
        def run(n: int) -> float:
            pack = table1_gan_configs(job["arch"], n)[: job["pack"]]
            return train_pack(pack, data, NullScorer(), None, device)[0].stepsPerSec
        out["model_steps_per_sec"] = job["pack"] / seconds_per_step(run, steps, repeats)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["peak_bytes"] = (torch.cuda.max_memory_allocated() if device.type == "cuda" else max(0, peak_rss - base))
    out["device"] = str(device)
    return out


def run_worker(job: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "harness.bench", "--worker", json.dumps(job)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info.get("MemAvailable", 0)


def pack_memory_estimate(arch: str, K: int) -> int:
    return pack_memory(table1_gan_configs(arch, 1)[0], K)


# --- projection -----------------------------------------------------------------------------

def interpolate(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear y(x) through sorted points, clamped outside."""
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def project_table1(sec_per_model_step: dict[str, dict[int, float]], pack) -> float | None:
    """Seconds for the whole Table 1 grid on one worker at pack size `pack` (a number, or one
    per config: `pack(config)`); None if a needed rate was not measured."""
    from harness.grid import load_grid
    from pathlib import Path

    grid = load_grid(Path(__file__).resolve().parents[1] / "grids" / "mnist_table1.yaml")
    archs = [a for a in ARCHS if a in sec_per_model_step]
    steps = TABLE1["epochs"] * TABLE1["steps_per_epoch"]
    total = 0.0
    per_shape = Counter(cfg.shape_key() for cfg in grid.configs)   # a pack is at most one shape's configs
    for cfg in grid.configs:
        k = min(pack(cfg) if callable(pack) else pack, per_shape[cfg.shape_key()])
        pts = [(math.log(step_cost(table1_gan_configs(a, 1)[0])), sec_per_model_step[a].get(k)) for a in archs]
        if any(t is None for _, t in pts):
            return None
        xs, ys = [x for x, _ in pts], [math.log(t) for _, t in pts]
        total += steps * math.exp(interpolate(math.log(step_cost(cfg)), xs, ys))
    return total


def concurrency(job: dict) -> float:
    """Model-steps/s of two identical measurements run at once, over one run alone (2.0 = perfect)."""
    def rate(r: dict) -> float:
        if "model_steps_per_sec" in r:
            return r["model_steps_per_sec"]
        return len(r["sec_per_step"]) / sum(r["sec_per_step"].values())
    alone = rate(run_worker(job))
    cmd = [sys.executable, "-m", "harness.bench", "--worker", json.dumps(job)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    return sum(rate(json.loads(p.communicate()[0].strip().splitlines()[-1])) for p in procs) / alone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer timed steps and repeats (~2 minutes on 2 CPU cores)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads per measurement (default 1)")
    p.add_argument("--sizes", default="2,8,24", help="pack sizes (default 2,8,24)")
    p.add_argument("--archs", default="small,middle,large")
    p.add_argument("--concurrent", action="store_true",
                   help="also measure 2 concurrent trials (small arch; reference and the largest pack size)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    t0 = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    archs = args.archs.split(",")
    sec: dict[str, dict[int, float]] = {}
    print(f"model-steps/s, {args.threads} thread(s) per measurement, device {args.device}"
          f"{' (quick)' if args.quick else ''}; cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'arch (nLayerG,nLayerD,sizeG,sizeD)':<36}{'pack':>5}{'model-steps/s':>15}{'x ref':>8}{'peak MB':>10}", flush=True)
    for arch in archs:
        (full, quick), repeats = STEPS[arch]
        job = dict(arch=arch, device=args.device, threads=args.threads, steps=quick if args.quick else full,
                   repeats=1 if args.quick else repeats)
        ref = run_worker({**job, "pack": 1})
        if "error" in ref:
            print(f"{arch}: reference failed: {ref['error']}")
            continue
        configs = table1_gan_configs(arch, 1)

        def ref_rate(K: int) -> float:
            t = [ref["sec_per_step"][f"{c.optimD}/{c.optimG}/{c.dropoutD}"] for c in configs[:K]]
            return K / sum(t)

        label = f"{arch} {ARCHS[arch]}"
        sec[arch] = {1: 1 / ref_rate(8)}
        print(f"{label:<36}{'ref':>5}{ref_rate(8):>15.1f}{1.0:>8.2f}{ref['peak_bytes'] / 2**20:>10.0f}", flush=True)
        for K in sizes:
            need = pack_memory_estimate(arch, K)
            if args.device != "cuda" and need > 0.6 * mem_available():
                print(f"{label:<36}{K:>5}{'skipped':>15}  (needs ~{need / 2**30:.1f} GB, "
                      f"{mem_available() / 2**30:.1f} GB free)", flush=True)
                continue
            r = run_worker({**job, "pack": K})
            if "error" in r:
                print(f"{label:<36}{K:>5}  failed: {r['error']}", flush=True)
                continue
            rate = r["model_steps_per_sec"]
            sec[arch][K] = 1 / rate
            print(f"{label:<36}{K:>5}{rate:>15.1f}{rate / ref_rate(K):>8.2f}{r['peak_bytes'] / 2**20:>10.0f}", flush=True)

    factors: dict[int, float] = {}
    if args.concurrent:
        (full, quick), _ = STEPS["small"]
        job = dict(arch="small", device=args.device, threads=args.threads, steps=quick if args.quick else full, repeats=1)
        for K in (1, max(sizes)):
            factors[K] = concurrency({**job, "pack": K})
        print("\n2 concurrent trials (small arch): " + ", ".join(
            f"{'reference' if K == 1 else f'packs of {K}'} {f:.2f}x the model-steps/s of one" for K, f in factors.items())
              + " (2.00 = perfect scaling over the two cores)")

    print(f"\nTable 1 grid ({TABLE1['runs']} runs x {TABLE1['epochs']} epochs x {TABLE1['steps_per_epoch']} steps) "
          f"at the measured rates, interpolated by step cost between the measured archs:")
    from harness.sweep import cpu_pack_size
    for K in [1] + sizes + [cpu_pack_size]:
        total = project_table1(sec, K) if len(sec) == len(archs) else None
        what = ("reference trainer" if K == 1 else f"packs of {K} (EBGAN: packs of {min(K, 2)})" if isinstance(K, int)
                else "CPU default (8; 2 if >16M weights)")
        if total is None:
            print(f"  {what:<36} n/a (not measured)")
            continue
        line = f"  {what:<36} one core {total / 3600:>7.0f} h = {total / 86400:5.1f} days"
        f = factors.get(K) or factors.get(1 if K == 1 else max(sizes)) if factors else None
        if f:
            line += f";  2 concurrent trials: {total / f / 86400:5.1f} days"
        print(line)
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
