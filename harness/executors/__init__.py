"""Where a sweep's trials run, and how: the sweep's options below its command line
(`SweepOptions`), and two executors with one contract:

    executor = LocalExecutor(options)  /  RayExecutor(options, results_folder)
    executor.start() -> ExecutorInfo        # connect, check that a trial can run; SweepStop(2) if not
    executor.run(packs, resources, env, sink)
    executor.stop()

- `raytune.RayExecutor` (the default): one Ray Tune trial per pack, on an embedded local Ray or
  an existing cluster; the only way to use several machines.
- `local.LocalExecutor` (`--executor local`): the packs one after another in the sweep's own
  process, without Ray (a machine with PyTorch and no Ray, e.g. a lone GPU box).

`run` calls the sink (the sweep's RowWriter) as trials progress, always from the calling
thread: `sink.started(i)`, `sink.epoch(i, epoch, {configId: I'})`, `sink.finished(i, rows)`
(rows as `harness.trial.run_trial` returns them) or `sink.failed(i, message, provenance)` after
the retries (the provenance columns the trial's exception carries, or None); `sink.stop(reason)`
(a SweepStop) ends the sweep for a reason of the executor's own (its storage is full:
`disk_full`). It returns early once `sink.stopping` is true (Ctrl-C, a full disk, the options'
`stop`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs: what `python -m harness.sweep` parses its flags into (same names), and
    what a program that runs a sweep gives `harness.sweep.run_sweep`."""
    results: Path = Path("results")         # results folder; the grid's go to results/<grid name>/
    data_dir: str | None = None             # MNIST (default: $HARNESS_DATA_DIR, else the cache)
    classifier: str | None = None           # ConvNet weights (default: the committed ones)
    executor: str = "ray"                   # "ray" | "local"
    address: str | None = None              # an existing Ray cluster (default: $RAY_ADDRESS, else embedded)
    gpus_per_trial: float | None = None     # default: GPUS_PER_TRIAL where GPUs exist, else 0
    cpus_per_trial: float = 1
    max_concurrent: int = 0                 # 0: as resources allow
    pack_size: int | Callable | None = None  # a number, or one per config (cfg -> int); None: per device
    local_workers: int = 1                  # --executor local: packs in flight at once
    limit: int | None = None                # at most this many not-yet-done configs
    retries: int = 1                        # retries of a failing trial before its rows are errors
    storage: str | None = None              # Ray Tune's experiment folder (default results/<grid>/ray)
    preflight_timeout: float = 120.0
    inject_failure: tuple[str, ...] = ()    # config ids whose trials raise instead of training
    sample: int | None = None               # run N configs of the grid drawn at random (harness.sampling)
    sample_seed: int = 0                    # ... with this seed: the same seed, a larger N adds configs
    tensorboard: bool = True                # a TensorBoard run per row in results/<grid>/tensorboard/
    speed: str | None = None                # the engine's speed variant (harness.speeds); None: per device
    checkpoint_every: float | None = None   # seconds between a trial's saves (harness.engine.resume); None: its default
    resume_command: str = ""                # what the last line gives to resume or retry ("" : say so in words)
    stop: Callable[[], bool] | None = None  # asked before every training step and trial: True ends the sweep


class SweepStop(HarnessError):
    """Ends the sweep with a one-line message (what, why, fix) and an exit status (`code`: 2, or 1
    when the executor itself failed)."""


def disk_full(folder, what: str) -> SweepStop:
    """The sweep's end when `what` (the results folder, Ray Tune's storage) at `folder` is full."""
    return SweepStop(f"{what} {folder}", "is full (no space left on the device)",
                     "free some space, or pass --results/--storage on a larger disk, and run the same command "
                     "to resume (rows already written stay readable)", 2)


@dataclass
class ExecutorInfo:
    description: str             # one line: where the trials run, with what
    cpus: float                  # what the executor can use at once
    gpus: float
    gpus_per_trial: float        # what each trial gets (0: train on CPU)
    gpu_memory: float | None     # bytes of one GPU, if known
    max_concurrent: int = 0      # a cap on concurrent trials (0: none)

    def slots(self, resources: list[dict]) -> int:
        """How many trials run at once on these resources (for the projection)."""
        if not resources:
            return 1
        cpu = max(r["cpu"] for r in resources)
        n = math.floor(self.cpus / cpu) if cpu > 0 else len(resources)
        gpu = max(r.get("gpu", 0) for r in resources)
        if gpu > 0:
            n = min(n, math.floor(self.gpus / gpu))
        if self.max_concurrent:
            n = min(n, self.max_concurrent)
        return max(1, n)
