"""`--executor local`: the sweep's packs in this process (or in `--local-workers N` processes of
this machine), without Ray.

For a machine that has PyTorch and no Ray (a lone GPU box): the same packs, table, PNGs,
progress and resume as the Ray executor, on this machine's device (the GPU if there is one and
--gpus-per-trial is not 0). With N workers, N packs are in flight at once, each in a process of
its own (spawned; each keeps MNIST and the classifier loaded between its trials): on a GPU,
small packs leave it idle between their kernels, and `python -m harness.gpucheck` measures what
running several at once gains. It never imports Ray.
"""
from __future__ import annotations

import math
import multiprocessing
import queue
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

import torch

from harness.config import scored_epochs
from harness.engine import Stopped
from harness.executors import ExecutorInfo, SweepOptions
from harness.trial import TrialEnv, device_for, pack_label, run_trial

_EVENTS: multiprocessing.Queue | None = None  # a worker process's line back to the driver


def _init_worker(events) -> None:
    global _EVENTS
    _EVENTS = events
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it ends the workers


def _worker_trial(i: int, pack, env: TrialEnv) -> list[dict]:
    """run_trial in a worker process; its epochs go back through the events queue."""
    return run_trial(pack, env, lambda epoch, scores: _EVENTS.put((i, epoch, scores)))


class LocalExecutor:
    storage = None  # no experiment folder of its own

    def __init__(self, options: SweepOptions):
        self.retries = options.retries
        self.want_gpu = options.gpus_per_trial != 0  # None (the default) or > 0
        self.threads = max(1, int(options.cpus_per_trial))
        self.workers = max(1, options.local_workers)

    def start(self) -> ExecutorInfo:
        gpu = self.want_gpu and torch.cuda.is_available()
        device = device_for(TrialEnv(None, None, gpu=gpu))
        name = torch.cuda.get_device_name(device) if gpu else f"CPU, {self.threads} thread(s) per trial"
        memory = torch.cuda.get_device_properties(device).total_memory if gpu else None
        where = "this process" if self.workers == 1 else f"{self.workers} worker processes"
        return ExecutorInfo(description=f"Local executor: {where}, {name}", cpus=self.threads * self.workers,
                            gpus=1.0 if gpu else 0.0, gpus_per_trial=1.0 / self.workers if gpu else 0.0,
                            gpu_memory=memory, max_concurrent=self.workers)

    def run(self, packs, resources, env, sink) -> None:
        if self.workers == 1:
            self.run_here(packs, env, sink)
        else:
            self.run_in_workers(packs, env, sink)

    def epoch_line(self, packs, i: int, epoch: int, scores: dict[str, float], sink) -> None:
        finite = [v for v in scores.values() if math.isfinite(v)]
        best = f"{max(finite):.3f}" if finite else "n/a"
        print(f"  trial {i + 1}: epoch {epoch}/{max(1, scored_epochs(packs[i][0]))}: {len(scores)} training, "
              f"best I' {best}", flush=True)
        sink.epoch(i, epoch, scores)

    def failed_attempt(self, i: int, attempt: int, e: Exception, sink) -> bool:
        """Whether to retry; after the last retry the pack's rows are errors."""
        message = f"{type(e).__name__}: {e}".splitlines()[0]
        if attempt < self.retries:
            print(f"  trial {i + 1} failed ({message}); retrying ({attempt + 1}/{self.retries})", flush=True)
            return True
        sink.failed(i, message, getattr(e, "provenance", None))   # where it failed (harness.trial.run_trial)
        return False

    def run_here(self, packs, env, sink) -> None:
        for i, pack in enumerate(packs):
            if sink.stopping:
                return
            print(f"trial {i + 1}/{len(packs)}: {pack_label(pack)}", flush=True)
            sink.started(i)
            for attempt in range(self.retries + 1):
                try:
                    rows = run_trial(pack, env, lambda e, s, i=i: self.epoch_line(packs, i, e, s, sink),
                                     stop=lambda: sink.stopping)
                except Stopped:  # Ctrl-C, SIGTERM, a deadline: the pack in flight is dropped (resume reruns it)
                    return
                except Exception as e:  # a trial's failure is a row, not the sweep's end
                    if self.failed_attempt(i, attempt, e, sink):
                        continue
                else:
                    sink.finished(i, rows)
                break

    def run_in_workers(self, packs, env, sink) -> None:
        ctx = multiprocessing.get_context("spawn")  # CUDA does not survive a fork
        events = ctx.Queue()
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(events,))
        running: dict[Future, tuple[int, int]] = {}   # future -> (pack, attempt)
        todo = list(range(len(packs)))[::-1]
        try:
            while (todo or running) and not sink.stopping:
                while todo and len(running) < self.workers:
                    i = todo.pop()
                    print(f"trial {i + 1}/{len(packs)}: {pack_label(packs[i])}", flush=True)
                    sink.started(i)
                    running[pool.submit(_worker_trial, i, packs[i], env)] = (i, 0)
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                self.drain(events, packs, sink)
                for future in done:
                    i, attempt = running.pop(future)
                    try:
                        rows = future.result()
                    except Exception as e:
                        if self.failed_attempt(i, attempt, e, sink):
                            running[pool.submit(_worker_trial, i, packs[i], env)] = (i, attempt + 1)
                    else:
                        sink.finished(i, rows)
        finally:
            for p in list(getattr(pool, "_processes", {}).values()) if sink.stopping else []:
                p.terminate()  # interrupted: the packs in flight are dropped (they run again on resume)
            pool.shutdown(wait=not sink.stopping, cancel_futures=True)

    def drain(self, events, packs, sink) -> None:
        while True:
            try:
                i, epoch, scores = events.get_nowait()
            except queue.Empty:
                return
            self.epoch_line(packs, i, epoch, scores, sink)

    def stop(self) -> None:
        pass
