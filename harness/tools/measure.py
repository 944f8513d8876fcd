"""What `harness.bench` and `harness.gpucheck` both measure with: Table 1's architectures and
GAN configs, a step timer on one built pack, worker subprocesses that report as they go, and
rewritten copies of the Table 1 grid file.

    rows, error = run_worker("harness.gpucheck", job, timeout=60)   # its JSON lines, kept as they come
    seconds = time_steps(configs, data, device)                      # steady-state seconds per step

A measurement runs in a process of its own (its peak memory is its own, a crash is one line).
The worker prints one JSON line per finished measurement and flushes it, so a worker stopped at
its time limit still hands back everything it finished.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from harness import datasets
from harness.config import TrainConfig
from harness.costmodel import pack_memory
from harness.engine import Speed, StepClock, StopHook, train, train_pack
from harness.metrics import Scores

REPO = Path(__file__).resolve().parents[2]
TABLE1_GRID = REPO / "grids" / "mnist_table1.yaml"
ARCHS = {"small": (2, 2, 400, 128), "middle": (3, 3, 1600, 512), "large": (5, 5, 3200, 1024)}
COMBOS = [("adam", "adam"), ("sgd", "sgd"), ("adam", "sgd"), ("sgd", "adam")]
WARMUP_STEPS = 5   # steps before the timed ones: allocation, compilation, a CUDA graph's capture


class NullScorer:
    """Stands in for Scorer: a measurement times steps, not scoring."""

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty(len(images), 10), torch.empty(len(images), 8)

    def scores_from(self, log_p: torch.Tensor, feats: torch.Tensor, fid: bool = True) -> Scores:
        return Scores(0.0, 1.0, 0.0, [0] * 10)

    def score(self, images: torch.Tensor, fid: bool = True) -> Scores:
        return self.scores_from(*self.classify(images), fid=fid)


def table1_gan_configs(arch: str, steps: int, batch: int = 64) -> list[TrainConfig]:
    """The 24 GAN configs of one Table 1 architecture, ordered so that every prefix of 2 or more
    mixes optimizers: (lr, dropoutD, optimizers adam/adam, sgd/sgd, adam/sgd, sgd/adam).
    Each runs `steps` steps of an epoch of steps + 1: no end-of-epoch work (weight check,
    scoring) falls inside a timing."""
    nLayerG, nLayerD, sizeG, sizeD = ARCHS[arch]
    base = TrainConfig(family="gan", nLayerG=nLayerG, nLayerD=nLayerD, sizeG=sizeG, sizeD=sizeD,
                       trainImages=batch * (steps + 1), epochs=steps / (steps + 1), batchSize=batch,
                       scoreSamples=64, epochScoreSamples=64)
    return [replace(base, lr=lr, dropoutD=dropout, optimD=d, optimG=g)
            for lr in (0.01, 0.001, 0.0001) for dropout in (False, True) for d, g in COMBOS]


def pack_configs(arch: str, K: int, steps: int) -> list[TrainConfig]:
    """K GAN configs of one architecture: its 24 optimizer/dropout/lr configs, over seeds."""
    base = table1_gan_configs(arch, steps)
    return [replace(base[i % 24], seed=i // 24) for i in range(K)]


def synthetic_data(steps: int, device: torch.device, dataset: str = "mnist") -> torch.Tensor:
    """Random samples of `dataset`'s shape in [-1, 1], enough for `steps` steps of batches of 64."""
    return (torch.rand(64 * (steps + 2), datasets.get(dataset).dim) * 2 - 1).to(device)


def time_steps(configs: list[TrainConfig], timed: int, device: torch.device, speed: Speed | None = None,
               stop: StopHook | None = None) -> float:
    """Steady-state seconds per step of `configs` (one config: the reference trainer; more: one
    pack, built once, its members drawn at random on the device): WARMUP_STEPS steps, then
    `timed` steps between two synchronized clock reads (harness.engine.StepClock)."""
    steps = WARMUP_STEPS + timed + 1
    cfgs = [replace(c, trainImages=64 * (steps + 1), epochs=steps / (steps + 1)) for c in configs]
    data = synthetic_data(steps, device, configs[0].dataset)
    step_clock = StepClock(WARMUP_STEPS, WARMUP_STEPS + timed)
    if len(cfgs) == 1:
        train(cfgs[0], data, NullScorer(), None, device, stop=stop, step_clock=step_clock)
    else:
        train_pack(cfgs, data, NullScorer(), None, device, speed=speed, stop=stop, step_clock=step_clock,
                   init="random")
    return step_clock.seconds_per_step()


def free_memory(device: torch.device) -> int:
    """Bytes free for a new pack: the CUDA caching allocator's cache released first (memory it
    caches from an earlier pack is free for this one), else the host's MemAvailable."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info.get("MemAvailable", 0)


def pack_memory_estimate(arch: str, K: int) -> int:
    return pack_memory(table1_gan_configs(arch, 1)[0], K)


# --- worker processes ---------------------------------------------------------------------------

def emit(row: dict) -> None:
    """A worker's one finished measurement: one JSON line on stdout, flushed at once."""
    print(json.dumps(row, default=str), flush=True)


def run_workers(module: str, jobs: list[dict], timeout: float, stop: Callable[[], bool] | None = None
                ) -> list[tuple[list[dict], str | None]]:
    """Run `python -m MODULE --worker JOB` for every job at once; per job, the JSON lines it
    printed (every one, also from a worker stopped at `timeout` seconds or by `stop()`) and an
    error line or None. stderr goes to a file, so a chatty worker can never block on a pipe."""
    deadline = time.monotonic() + max(1.0, timeout)
    with tempfile.TemporaryDirectory() as tmp:
        procs, lines, errs = [], [], []
        for i, job in enumerate(jobs):
            err = open(Path(tmp) / f"{i}.err", "w+")
            proc = subprocess.Popen([sys.executable, "-m", module, "--worker", json.dumps(job)],
                                    stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO)
            q: queue.Queue = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, q), daemon=True).start()
            procs.append((proc, q))
            lines.append([])
            errs.append(err)
        cut: str | None = None
        while any(p.poll() is None for p, _ in procs) or any(not q.empty() for _, q in procs):
            for (_, q), got in zip(procs, lines):
                _drain(q, got)
            if cut is None and (time.monotonic() > deadline or (stop is not None and stop())):
                cut = f"out of time after {timeout:.0f} s" if time.monotonic() > deadline else "stopped"
                for proc, _ in procs:
                    proc.kill()
            time.sleep(0.05)
        out = []
        for (proc, q), got, err in zip(procs, lines, errs):
            proc.wait()
            _drain(q, got)
            err.seek(0)
            last = [line for line in err.read().strip().splitlines() if line.strip()][-1:]
            error = cut or (None if proc.returncode == 0 else (last[0][:300] if last else f"exit {proc.returncode}"))
            out.append((got, error))
            err.close()
    return out


def run_worker(module: str, job: dict, timeout: float, stop: Callable[[], bool] | None = None
               ) -> tuple[list[dict], str | None]:
    return run_workers(module, [job], timeout, stop)[0]


def _pump(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)


def _drain(q: queue.Queue, into: list[dict]) -> None:
    while True:
        try:
            line = q.get_nowait()
        except queue.Empty:
            return
        if line.startswith("{"):
            into.append(json.loads(line))


def start_together(ready: str, n: int) -> None:
    """A file barrier: n worker processes each touch READY.<pid> and go on once all n have."""
    path = Path(ready)
    (path.parent / f"{path.name}.{os.getpid()}").touch()
    while len(list(path.parent.glob(path.name + ".*"))) < n:
        time.sleep(0.05)


# --- rewritten copies of Table 1 -----------------------------------------------------------------

def table1_variant(name: str, settings: dict[str, Any], rewrite: Callable[[dict], dict] | None = None) -> dict:
    """grids/mnist_table1.yaml as a dict, renamed, with `settings` changed and every family
    entry (each family's as a list) passed through `rewrite` (entry -> entry): the benchmark's
    tiny Table 1 and the GPU check's slice are both such copies."""
    import yaml
    table1 = yaml.safe_load(TABLE1_GRID.read_text())
    table1["name"] = name
    table1["settings"].update(settings)
    rewrite = rewrite or (lambda entry: entry)
    table1["families"] = {fam: [rewrite(dict(e)) for e in (entries if isinstance(entries, list) else [entries])]
                          for fam, entries in table1["families"].items()}
    return table1


def write_grid(grid: dict, folder: Path) -> Path:
    import yaml
    path = folder / f"{grid['name']}.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def table1_packs(pack_size) -> list:
    from harness.grid import load_grid
    from harness.plan import make_packs
    return make_packs(load_grid(TABLE1_GRID).configs, pack_size)
