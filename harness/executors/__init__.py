"""Where a sweep's trials run. Two executors, one contract:

    executor.start() -> ExecutorInfo        # connect, check that a trial can run; SweepStop(2) if not
    executor.run(packs, resources, env, sink)
    executor.stop()

- `raytune.RayExecutor` (the default): one Ray Tune trial per pack, on an embedded local Ray or
  an existing cluster; the only way to use several machines.
- `local.LocalExecutor` (`--executor local`): the packs one after another in the sweep's own
  process, without Ray (a machine with PyTorch and no Ray, e.g. a lone GPU box).

`run` calls the sink (the sweep's RowWriter) as trials progress, always from the calling
thread: `sink.started(i)`, `sink.epoch(i, epoch, {configId: I'})`, `sink.finished(i, rows)`
(rows as `harness.trial.run_trial` returns them) or `sink.failed(i, message)` after the
retries; `sink.stop(message)` ends the sweep (exit 2) for a reason of the executor's own (its
storage is full). It returns early once `sink.stopping` is true (Ctrl-C, a full disk).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


class SweepStop(Exception):
    """Ends the sweep with a one-line message and an exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def disk_full_message(folder, what: str) -> str:
    return (f"{what} {folder} is full (no space left on the device); rows already written stay readable. "
            f"Free some space, or pass --results/--storage on a larger disk, and run the same command to resume")


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
