"""The main job: run a grid file's configs, resumably, through Ray Tune (or in this process).

    python -m harness.sweep grids/mnist_table1.yaml [--results DIR] [--data-dir DIR]
        [--executor ray|local] [--address ADDR] [--gpus-per-trial F] [--cpus-per-trial N]
        [--max-concurrent N] [--pack-size N] [--limit N] [--retries N] [--dry-run]

grid file -> configs still to run (the results table says which are done) -> packs of
same-shape configs, the costliest first -> one trial per pack (a Ray Tune trial, or a call in
this process with --executor local) -> each trial trains and scores its configs -> the driver
writes their rows and sample PNGs into RESULTS/<grid>/ as trials finish. Running the same
command again runs only what is missing.

The driver's work per trial does not grow with the grid: the trials' parameters are pack
indices, the packs reach the workers once through the object store, and a trial reports only
numbers to Tune (rows come back another way, see harness/executors/raytune.py).

Exit status: 0 every config has an ok or diverged row; 1 error rows remain (the last line says
how many and how to retry them); 2 bad input, a busy results folder, a cluster that cannot run
a trial, a full disk; 130 interrupted (Ctrl-C or SIGTERM), with the command that resumes.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import math
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from classifiers.convnet import ClassifierError, load_classifier
from harness import families
from harness.atomic import write_atomic
from harness.config import TrainConfig
from harness.costmodel import Rates, fmt_duration, project
from harness.data import DataError, resolve_data_dir
from harness.executors import SweepStop, disk_full_message
from harness.grid import DEFAULT_MAX_CONFIGS, Grid, GridError, load_grid
from harness.lock import FolderLock, LockHeld
from harness.metrics import Scores
from harness.models import linear_weights
from harness.packed import pack_memory
from harness.results import DONE, ResultsError, ResultsTable
from harness.train import scored_epochs
from harness.trial import TrialEnv

GPU_MAX_PACK = 96  # the largest pack harness.gpucheck measures
COMPACT_EVERY_S = 30.0  # the driver merges the table's parts into trials.parquet this often
MIN_FREE_BYTES = 20 << 20  # below this much free space in the results folder a sweep does not start
BYTES_PER_CONFIG = 64 << 10  # a row and an 8 x 8 sample PNG, generously


def cpu_pack_size(cfg: TrainConfig) -> int:
    """Default --pack-size on CPU, per architecture, from `python -m harness.bench` (2-core CPU,
    1 thread per trial, three runs; model-steps/s over the reference trainer's):
        G2x400 D2x128   (0.6M weights): packs of 2 0.83-0.92x, 8 0.96-1.11x, 24 0.99-1.15x
        G3x1600 D3x512  (5.2M):         packs of 2 1.07-1.21x, 8 1.17-1.23x, 24 1.17-1.20x
        G5x3200 D5x1024 (38M):          packs of 2 1.44-1.45x, 8 1.20-1.38x (5 GB), 24 needs >20 GB
    so packs of 8, and 2 for models of more than 16M weights (G's and D's Linear layers)."""
    return 2 if sum(linear_weights(cfg)) > 16_000_000 else 8


TRIAL_OVERHEAD_BYTES = 1 << 30  # the data set, the classifier, scoring, the Python process
GPU_MEMORY_USE = 0.8              # the share of a trial's slice of GPU memory its pack may fill


def gpu_pack_size(gpu_memory: float | None, gpus_per_trial: float) -> Callable[[TrainConfig], int]:
    """Default --pack-size with GPUs, per architecture: the largest pack (up to GPU_MAX_PACK) whose
    memory (`packed.pack_memory`) fits the trial's share of the card; 24 where the card's size is
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


def pending_configs(grid: Grid, done: set[str], limit: int | None) -> list[TrainConfig]:
    todo = [c for c in grid.configs if c.config_id not in done]
    return todo[:limit] if limit is not None else todo


def row_for(cfg: TrainConfig, grid_name: str, result: dict) -> dict:
    """One results-table row: the paper's settings, identities, then the trainer's outputs."""
    return {**cfg.to_dict(), "model": cfg.model, "subgrid": cfg.subgrid, "configId": cfg.config_id,
            "settingsId": cfg.settings_id, "grid": grid_name, **result,
            "finishedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def error_result(message: str) -> dict:
    return dict(status="error", error=message, IprimePerEpoch=[], lossD=math.nan, lossG=math.nan,
                wallTime=math.nan, stepsPerSec=math.nan, steps=0, device="", host="", samplesPath=None,
                **Scores.missing().to_dict())


def dry_run_report(grid: Grid, done: set[str]) -> str:
    ids = {c.config_id for c in grid.configs}
    lines = [f"{grid.name}: {len(grid.configs)} configs x seeds ({grid.path}); "
             f"{len(ids & done)} done, {len(ids - done)} to run"]

    def count(label: str, cfgs: list[TrainConfig]) -> str:
        n_done = sum(c.config_id in done for c in cfgs)
        return f"  {label:<32} {len(cfgs):>6}   done {n_done:>6}"

    for family in families.all():
        cfgs = [c for c in grid.configs if c.family == family.name]
        if cfgs:
            lines.append(count(family.title, cfgs) + ("" if family.packs else "   (not packable: runs unpacked, one config per trial)"))
    for model, subgrids in grid.subgrids().items():
        lines.append(f"{model} optimizer subgrids:")
        for sub in subgrids:
            lines.append(count(sub, [c for c in grid.configs if c.model == model and c.subgrid == sub]))
    return "\n".join(lines)


# --- the driver: progress, rows, stopping ------------------------------------------------------

def check_space(folder: Path, need: int, what: str = "the results folder") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SweepStop(f"{what} {folder} has {free / 2**20:.1f} MB free, and this sweep needs about "
                        f"{need / 2**20:.0f} MB (rows, sample PNGs, Ray Tune's state); free some space, or "
                        f"pass --results on a larger disk", 2)


@dataclass
class Progress:
    """'[done/total] ETA' of this invocation, weighing the work left by its cost, not its count.

    Costs are the cost model's seconds per pack (one unit per pack when no rate is measured). The
    observed speed is the cost finished (running packs counted by their epochs done) per second of
    wall time; the ETA is the cost left at that speed, or the projection before anything finished."""
    total: int
    already: int
    costs: list[float]
    projected: float | None
    started: float = field(default_factory=time.monotonic)
    finished: int = 0
    running: dict[int, float] = field(default_factory=dict)   # pack -> fraction done
    cost_done: float = 0.0

    def __post_init__(self) -> None:
        self.cost_total = sum(self.costs)

    def epoch(self, pack: int, fraction: float) -> None:
        self.running[pack] = fraction

    def pack_finished(self, pack: int, configs: int) -> None:
        self.running.pop(pack, None)
        self.finished += configs
        self.cost_done += self.costs[pack]

    def eta_seconds(self) -> float | None:
        elapsed = time.monotonic() - self.started
        done = self.cost_done + sum(self.costs[p] * f for p, f in self.running.items())
        left = self.cost_total - done
        if done > 0 and elapsed > 0 and self.finished:
            return left * elapsed / done
        if self.projected is not None:
            return max(0.0, self.projected - elapsed)
        return None

    def line(self) -> str:
        done = self.already + self.finished
        elapsed = dt.timedelta(seconds=round(time.monotonic() - self.started))
        eta = self.eta_seconds()
        return (f"[{done}/{self.total} done, {100 * done / self.total:.1f}%] elapsed {elapsed}, "
                f"ETA {fmt_duration(eta) if eta is not None else 'unknown'}")


class RowWriter:
    """The executors' sink: writes each finished trial's rows and PNGs into the results folder,
    prints a line per config and the progress line, compacts the table now and then. A full disk
    stops the sweep (`stop_reason`)."""

    def __init__(self, grid: Grid, table: ResultsTable, packs: list[list[TrainConfig]], progress: Progress,
                 stop: Callable[[], bool] | None = None):
        self.grid, self.table, self.packs, self.progress = grid, table, packs, progress
        self.written: set[str] = set()
        self.stop_reason: SweepStop | None = None
        self.interrupted = threading.Event()
        self.external_stop = stop
        self.last_compact = time.monotonic()

    @property
    def stopping(self) -> bool:
        """Asked before every training step (local executor) and between trials: Ctrl-C or SIGTERM,
        a full disk, or the caller's own `stop` (a deadline)."""
        if self.external_stop is not None and not self.interrupted.is_set() and self.external_stop():
            self.interrupted.set()
        return self.interrupted.is_set() or self.stop_reason is not None

    def started(self, pack: int) -> None:
        self.progress.epoch(pack, 0.0)

    def epoch(self, pack: int, epoch: int, scores: dict[str, float]) -> None:
        self.progress.epoch(pack, min(1.0, epoch / max(1, scored_epochs(self.packs[pack][0]))))

    def finished(self, pack: int, rows: list[dict]) -> None:
        configs = {c.config_id: c for c in self.packs[pack]}
        out = []
        try:
            for r in rows:
                res = r["result"]
                if r.get("png") is not None:
                    rel = Path("samples") / f"{r['configId']}.png"
                    write_atomic(self.table.folder / rel, r["png"])
                    res["samplesPath"] = str(rel)
                out.append((configs[r["configId"]], res))
            self._write(pack, out)
        except OSError as e:
            self._os_error(e)

    def failed(self, pack: int, message: str) -> None:
        missing = [c for c in self.packs[pack] if c.config_id not in self.written]
        try:
            self._write(pack, [(c, error_result(message[:500])) for c in missing])
        except OSError as e:
            self._os_error(e)

    def stop(self, message: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = SweepStop(message, 2)

    def _os_error(self, e: OSError) -> None:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            self.stop_reason = SweepStop(disk_full_message(self.table.folder, "the results folder"), 2)
        else:
            self.stop_reason = SweepStop(f"cannot write to {self.table.folder} ({e}); check the folder "
                                         f"and run the same command to resume", 2)

    def _write(self, pack: int, rows: list[tuple[TrainConfig, dict]]) -> None:
        self.table.add([row_for(cfg, self.grid.name, res) for cfg, res in rows])
        self.written.update(cfg.config_id for cfg, _ in rows)
        self.progress.pack_finished(pack, len(rows))
        for cfg, res in rows:
            score = f"I'={res['Iprime']:.3f}" if res["status"] == "ok" else res["status"]
            if res["status"] == "error":
                score += f" ({res['error']})"
            print(f"finished {cfg.config_id} {cfg.model} nLayerG={cfg.nLayerG} nLayerD={cfg.nLayerD} "
                  f"sizeG={cfg.sizeG} sizeD={cfg.sizeD} dropoutD={cfg.dropoutD} {cfg.subgrid} "
                  f"seed={cfg.seed}: {score}", flush=True)
        print(self.progress.line(), flush=True)
        if time.monotonic() - self.last_compact > COMPACT_EVERY_S:
            self.compact()

    def compact(self) -> None:
        self.table.compact()
        self.last_compact = time.monotonic()


@contextlib.contextmanager
def stop_handlers(writer: RowWriter) -> Iterator[None]:
    """Ctrl-C / SIGTERM inside: training stops at the next step (local executor), no trial starts,
    and the sweep ends (exit 130); a second one quits at once. The caller's handlers after."""
    def handler(signum, frame):
        if writer.interrupted.is_set():
            raise KeyboardInterrupt
        writer.interrupted.set()
        print(f"\n{signal.Signals(signum).name}: stopping; rows already written are kept "
              f"(again to quit at once)", file=sys.stderr, flush=True)
    if threading.current_thread() is not threading.main_thread():
        yield   # signals reach the main thread only
        return
    before = signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def resume_command(argv: list[str]) -> str:
    kept, skip = [], False
    for a in argv:  # --limit N and --inject-failure X are one-off choices, not part of the resume
        if skip:
            skip = False
            continue
        if a in ("--limit", "--inject-failure"):
            skip = True
            continue
        if a.startswith(("--limit=", "--inject-failure=")):
            continue
        kept.append(a)
    return "python -m harness.sweep " + " ".join(shlex.quote(a) for a in kept)


def run_sweep(grid: Grid, args: argparse.Namespace, argv: list[str],
              pack_size: int | Callable[[TrainConfig], int] | None = None,
              stop: Callable[[], bool] | None = None) -> int:
    folder = Path(args.results).resolve() / grid.name
    with FolderLock(folder) as lock:
        if lock.note:
            print(f"note: {lock.note}", flush=True)
        table = ResultsTable(folder)
        table.compact()  # what an earlier, killed driver left in parts/
        done = table.done_ids()
        todo = pending_configs(grid, done, args.limit)
        write_atomic(folder / "grid.yaml", grid.text or Path(grid.path).read_text())
        write_atomic(folder / "grid.json", json.dumps(
            {"name": grid.name, "total": len(grid.configs),
             "configs": len({c.settings_id for c in grid.configs}),
             "by_family": grid.by_family(), "by_model": grid.by_model(),
             "gan_subgrids": grid.gan_subgrids()}, indent=2))
        if not todo:
            print(f"{grid.name}: all {len(grid.configs)} configs are done ({table.path})")
            return 0
        check_space(folder, MIN_FREE_BYTES + BYTES_PER_CONFIG * len(todo))
        return _run(grid, args, argv, table, done, todo, pack_size, stop)


def _run(grid: Grid, args, argv, table: ResultsTable, done: set[str], todo: list[TrainConfig], pack_size,
         stop: Callable[[], bool] | None) -> int:
    if args.executor == "local":
        from harness.executors.local import LocalExecutor
        executor = LocalExecutor(args)
    else:
        from harness.executors.raytune import RayExecutor
        executor = RayExecutor(args, table.folder)
    info = executor.start()                        # SweepStop(2) if it cannot run a trial
    try:
        gpus = info.gpus_per_trial
        rates = Rates.load("cuda" if gpus else "cpu")
        fail = frozenset(args.inject_failure or ())
        default_size = gpu_pack_size(info.gpu_memory, gpus) if gpus else cpu_pack_size
        packs = plan_packs(todo, pack_size or args.pack_size or default_size, rates, fail)
        resources = [trial_resources(p, args.cpus_per_trial, gpus, info.gpu_memory) for p in packs]
        slots = info.slots(resources)
        costs = [rates.pack_seconds(p) for p in packs] if rates else [float(len(p)) for p in packs]
        projected = project(packs, rates, slots) if rates else None
        print(f"{info.description}. {len(todo)} configs to run in {len(packs)} trials "
              f"(pack size <= {max(map(len, packs))}), {args.cpus_per_trial:g} CPU and {gpus:g} GPU each, "
              f"{slots} at a time; {len(done)} already done.", flush=True)
        if rates:
            print(f"Projected wall time: {fmt_duration(projected)} ({rates.kind} rates: {rates.measured})", flush=True)
        else:
            print("Projected wall time: unknown (no measured rate for this device kind; "
                  "python -m harness.bench --save-rates measures one)", flush=True)
        progress = Progress(total=len(grid.configs), already=len(done), costs=costs,
                            projected=projected)
        writer = RowWriter(grid, table, packs, progress, stop)
        env = TrialEnv(
            data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else os.environ.get("HARNESS_DATA_DIR"),
            classifier=str(Path(args.classifier).resolve()) if args.classifier else None,
            threads=max(1, int(args.cpus_per_trial)), gpu=gpus > 0, fail=fail)
        t1 = time.monotonic()
        interrupted = False
        try:
            with stop_handlers(writer):
                executor.run(packs, resources, env, writer)
        except KeyboardInterrupt:
            interrupted = True
        except SweepStop:
            raise
        except Exception as e:  # the executor's machinery failed, not a trial (those are rows)
            if writer.stop_reason is not None:
                raise writer.stop_reason from None
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e):
                raise SweepStop(disk_full_message(executor.storage, "Ray Tune's storage"), 2) from None
            last = [line for line in str(e).strip().splitlines() if line.strip()][-1:] or [""]
            raise SweepStop(f"the {args.executor} executor stopped with an error ({type(e).__name__}: "
                            f"{last[0][:300]}); rows already written are kept; resume with: "
                            f"{resume_command(argv)}", 1) from None
    finally:
        executor.stop()
        try:
            table.compact()
        except OSError:
            pass  # the parts stay; the next run merges them
    if writer.stop_reason is not None:
        raise writer.stop_reason
    df = table.df
    ids = {c.config_id for c in grid.configs}
    rows = df[df["configId"].isin(ids)] if not df.empty else df
    n_done = int(rows["status"].isin(DONE).sum()) if not rows.empty else 0
    n_err = int((rows["status"] == "error").sum()) if not rows.empty else 0
    print(f"{grid.name}: {n_done}/{len(grid.configs)} done, {n_err} errors; this run "
          f"{dt.timedelta(seconds=round(time.monotonic() - t1))}; results in {table.folder}", flush=True)
    if interrupted or writer.interrupted.is_set():
        print(f"Interrupted: {n_done} of {len(grid.configs)} configs are done. Resume with: "
              f"{resume_command(argv)}", flush=True)
        return 130
    if n_err:
        print(f"{n_err} configs have error rows (their messages are in the table's 'error' column); "
              f"retry them with: {resume_command(argv)}", flush=True)
        return 1
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("grid", help="grid file, e.g. grids/mnist_table1.yaml")
    p.add_argument("--results", default="results", help="results folder (default: results/)")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else download to a cache)")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed classifiers/mnist_convnet.pt)")
    p.add_argument("--executor", choices=("ray", "local"), default="ray",
                   help="ray: Ray Tune trials on an embedded local Ray or a cluster (default); local: the packs "
                        "one after another in this process, without Ray")
    p.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--gpus-per-trial", type=float, help="GPU fraction per trial (default 0.25 where GPUs exist, else 0)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (default 1)")
    p.add_argument("--max-concurrent", type=int, default=0, help="at most N trials at once (default: as resources allow)")
    p.add_argument("--pack-size", type=int, default=0, help=f"configs of one shape trained together per trial (default on CPU: "
                   f"8, 2 for models of >16M weights; with GPUs as many as fit the trial's share of the card, up to "
                   f"{GPU_MAX_PACK}; 1 = the reference trainer)")
    p.add_argument("--local-workers", type=int, default=1,
                   help="with --executor local: packs in flight at once, each in a worker process (default 1: "
                        "one after another in this process)")
    p.add_argument("--limit", type=int, help="run at most N not-yet-done configs")
    p.add_argument("--retries", type=int, default=1, help="retries of a failing trial before its rows are 'error'")
    p.add_argument("--storage", help="Ray Tune's experiment folder (default RESULTS/<grid>/ray; shared on a multi-node cluster)")
    p.add_argument("--preflight-timeout", type=float, default=120,
                   help="seconds a test task with a trial's resources may take to start on the cluster (default 120)")
    p.add_argument("--max-configs", type=int, default=DEFAULT_MAX_CONFIGS,
                   help=f"refuse grids that expand to more runs (default {DEFAULT_MAX_CONFIGS:,})")
    p.add_argument("--inject-failure", action="append", metavar="CONFIG_ID",
                   help="fault injection: the trial of this config raises instead of training (repeatable), to "
                        "check retries and error rows on your cluster; the config trains alone")
    p.add_argument("--dry-run", action="store_true", help="print counts (per family, per GAN subgrid, done) and exit")
    args = p.parse_args(argv)
    for name in ("limit", "pack_size", "max_concurrent", "retries", "max_configs", "local_workers"):
        v = getattr(args, name)
        if v is not None and v < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.cpus_per_trial <= 0 or (args.gpus_per_trial is not None and args.gpus_per_trial < 0):
        p.error("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.executor == "local" and args.address:
        p.error("--address is for --executor ray (a Ray cluster); --executor local runs in this process")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        grid = load_grid(args.grid, max_configs=args.max_configs)
        done = ResultsTable(Path(args.results) / grid.name).done_ids()
        if args.dry_run:
            print(dry_run_report(grid, done))
            return 0
        resolve_data_dir(args.data_dir)  # fail here, once, rather than in every trial
        load_classifier(args.classifier)
        return run_sweep(grid, args, argv)
    except (GridError, DataError, ClassifierError, ResultsError, LockHeld) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SweepStop as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    sys.exit(main())
