"""The main job: run a grid file's configs, resumably, through Ray Tune (or in this process).

    python -m harness.sweep grids/mnist_table1.yaml [--results DIR] [--data-dir DIR]
        [--executor ray|local] [--address ADDR] [--gpus-per-trial F] [--cpus-per-trial N]
        [--max-concurrent N] [--pack-size N] [--limit N] [--retries N] [--no-tensorboard]
        [--checkpoint-every S] [--dry-run]

grid file -> configs still to run (the results table says which are done) -> packs of
same-shape configs, the costliest first -> one trial per pack (a Ray Tune trial, or a call in
this process with --executor local) -> each trial trains and scores its configs -> the driver
writes their rows and sample PNGs into RESULTS/<grid>/ as trials finish, and a TensorBoard
run per row into RESULTS/<grid>/tensorboard/. Running the same command again runs only what
is missing; a trial killed mid-run goes on from the last epoch it saved in RESULTS/<grid>/checkpoints/.

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
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from harness import datasets, families, speeds
from harness.atomic import write_atomic
from harness.config import TrainConfig
from harness.costmodel import Rates, fmt_duration, project
from harness.engine import Speed, SpeedUnsupported
from harness.engine.cuda import TF32_OVERRIDES
from harness.engine.resume import SAVE_EVERY_S, checkpoint_configs, saved_fraction
from harness.errors import HarnessError, report
from harness.executors import ExecutorInfo, SweepOptions, SweepStop, disk_full
from harness.grid import DEFAULT_MAX_CONFIGS, Grid, load_grid
from harness.lock import FolderLock
from harness.plan import GPU_MAX_PACK, cpu_pack_size, gpu_pack_size, pending_configs, plan_packs, trial_resources
from harness.provenance import device_name
from harness.results import DONE, ResultsTable
from harness.rows import Progress, RowWriter
from harness.sampling import sample_configs
from harness.strict_json import dumps
from harness.trial import TrialEnv

DAY_S = 86400
SAMPLE_SIZES = (100, 400, 1600)   # the samples the projection offers when a grid takes days
MIN_FREE_BYTES = 20 << 20  # below this much free space in the results folder a sweep does not start
BYTES_PER_CONFIG = 64 << 10  # a row and an 8 x 8 sample PNG, generously
TENSORBOARD_BYTES_PER_CONFIG = 64 << 10  # its TensorBoard run: the PNG again, the row as text, its scalars


def dry_run_report(grid: Grid, done: set[str], sample: list[TrainConfig] | None = None) -> str:
    """Counts per family and optimizer subgrid, and how many are done; of the sample, if one is given."""
    configs = grid.configs if sample is None else sample
    ids = {c.config_id for c in configs}
    of = "" if sample is None else (f" (a random sample of {len({c.settings_id for c in sample})} of its "
                                    f"{len({c.settings_id for c in grid.configs})} configs)")
    lines = [f"{grid.name}: {len(configs)} configs x seeds ({grid.path}){of}; "
             f"{len(ids & done)} done, {len(ids - done)} to run"]

    def count(label: str, cfgs: list[TrainConfig]) -> str:
        n_done = sum(c.config_id in done for c in cfgs)
        return f"  {label:<32} {len(cfgs):>6}   done {n_done:>6}"

    for family in families.all():
        cfgs = [c for c in configs if c.family == family.name]
        if cfgs:
            unpacked = "" if family.packs else "   (not packable: runs unpacked, one config per trial)"
            lines.append(count(family.title, cfgs) + unpacked)
    for model, subgrids in grid.subgrids().items():
        lines.append(f"{model} optimizer subgrids:")
        for sub in subgrids:
            lines.append(count(sub, [c for c in configs if c.model == model and c.subgrid == sub]))
    return "\n".join(lines)


def check_space(folder: Path, need: int, what: str = "the results folder") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SweepStop(f"{what} {folder}", f"has {free / 2**20:.1f} MB free, and this sweep needs about "
                        f"{need / 2**20:.0f} MB (rows, sample PNGs, TensorBoard runs, Ray Tune's state)",
                        "free some space, or pass --results on a larger disk", 2)


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


def resume_hint(options: SweepOptions) -> str:
    return options.resume_command or "the same sweep again (it runs only what is missing)"


def run_sweep(grid: Grid, options: SweepOptions) -> int:
    """Run the grid's configs that have no ok or diverged row yet; the exit status (0, 1, 130;
    SweepStop for 2)."""
    folder = Path(options.results).resolve() / grid.name
    with FolderLock(folder) as lock:
        if lock.note:
            print(f"note: {lock.note}", flush=True)
        table = ResultsTable(folder)
        table.compact()  # what an earlier, killed driver left in parts/
        done = table.done_ids()
        configs = sampled(grid, options)
        todo = pending_configs(configs, done, options.limit)
        write_atomic(folder / "grid.yaml", grid.text or Path(grid.path).read_text())
        write_atomic(folder / "grid.json", dumps(grid_json(grid, configs, options), indent=2))
        if not todo:
            print(f"{grid.name}: all {len(configs)} configs{' of the sample' if options.sample else ''} are done "
                  f"({table.path})")
            return 0
        per_config = BYTES_PER_CONFIG + (TENSORBOARD_BYTES_PER_CONFIG if options.tensorboard else 0)
        check_space(folder, MIN_FREE_BYTES + per_config * len(todo))
        return _run(grid, options, table, done, todo, configs)


def sampled(grid: Grid, options: SweepOptions) -> list[TrainConfig]:
    """The grid's runs, or with --sample N the N configs (all their seeds) drawn at random,
    stratified by family and optimizer subgrid, nested in N for a seed (harness.sampling)."""
    if not options.sample:
        return grid.configs
    return sample_configs(grid.configs, options.sample, options.sample_seed)


def grid_json(grid: Grid, configs: list[TrainConfig], options: SweepOptions) -> dict:
    """grid.json: the grid's counts (the whole grid's, also when a sample runs) and the sample."""
    out = {"name": grid.name, "dataset": grid.configs[0].dataset if grid.configs else "mnist",
           "total": len(grid.configs), "configs": len({c.settings_id for c in grid.configs}),
           "byFamily": grid.by_family(), "byModel": grid.by_model(), "ganSubgrids": grid.gan_subgrids()}
    out["speed"] = options.speed or "default (fp32 on CPU, auto with GPUs)"
    if options.sample:
        out["sample"] = {"configs": len({c.settings_id for c in configs}), "runs": len(configs),
                         "seed": options.sample_seed, "of": out["configs"]}
    return out


def _executor(options: SweepOptions, folder: Path):
    if options.executor == "local":
        from harness.executors.local import LocalExecutor
        return LocalExecutor(options)
    from harness.executors.raytune import RayExecutor
    return RayExecutor(options, folder)


def _plan(info: ExecutorInfo, options: SweepOptions, todo: list[TrainConfig], done: set[str], grid: Grid,
          checkpoints: Path):
    """The trials, their resources and costs, the projection line (less what packs resuming from
    `checkpoints` trained before); (packs, resources, rates, slots, projected seconds or None)."""
    gpus = info.gpus_per_trial
    rates = Rates.load("cuda" if gpus else "cpu")
    size = options.pack_size or (gpu_pack_size(info.gpu_memory, gpus) if gpus else cpu_pack_size)
    packs = plan_packs(todo, size, rates, frozenset(options.inject_failure))
    resources = [trial_resources(p, options.cpus_per_trial, gpus, info.gpu_memory) for p in packs]
    slots = info.slots(resources)
    print(f"{info.description}. {len(todo)} configs to run in {len(packs)} trials "
          f"(pack size <= {max(map(len, packs))}), {options.cpus_per_trial:g} CPU and {gpus:g} GPU each, "
          f"{slots} at a time; {len(done)} already done.", flush=True)
    if not rates:
        print("Projected wall time: unknown (no measured rate for this device kind; "
              "python -m harness.bench --save-rates measures one)", flush=True)
        return packs, resources, rates, slots, None
    left = [1.0 - saved_fraction(checkpoints, p) for p in packs]
    resuming = sum(f < 1.0 for f in left)
    projected = project(packs, rates, slots, left)
    print(f"Projected wall time: {fmt_duration(projected)} ({rates.kind} rates: {rates.measured}"
          + (f"; {resuming} {'pack goes' if resuming == 1 else 'packs go'} on from saved epochs" if resuming else "")
          + ")", flush=True)
    if projected > DAY_S and not options.sample:
        print(smaller_runs(grid, done, size, rates, slots), flush=True)
    return packs, resources, rates, slots, projected


def smaller_runs(grid: Grid, done: set[str], size, rates: Rates, slots: int) -> str:
    """What to run instead of a grid that takes days here: random samples of it (--sample N keeps
    every family's and optimizer subgrid's share), each with its projected time, and its mini twin."""
    units = len({c.settings_id for c in grid.configs})
    options = []
    for n in SAMPLE_SIZES:
        if n < units:
            todo = [c for c in sample_configs(grid.configs, n, 0) if c.config_id not in done]
            options.append(f"--sample {n}: {fmt_duration(project(plan_packs(todo, size, rates), rates, slots))}")
    mini = f"; or {grid.mini}, the same structure at small widths and short runs" if grid.mini else ""
    return (f"That is over a day here. A random sample of the grid, each family's and subgrid's share kept "
            f"(histograms and curves then estimate the whole grid's; add configs later with a larger N): "
            f"{', '.join(options)}{mini}.")


def _trial_env(options: SweepOptions, gpu: bool, checkpoints: Path) -> TrialEnv:
    return TrialEnv(
        data_dir=str(Path(options.data_dir).resolve()) if options.data_dir else os.environ.get("HARNESS_DATA_DIR"),
        classifier=str(Path(options.classifier).resolve()) if options.classifier else None,
        threads=max(1, int(options.cpus_per_trial)), gpu=gpu, fail=frozenset(options.inject_failure),
        speed=requested_speed(options, gpu), checkpoints=str(checkpoints.resolve()),
        checkpoint_every=options.checkpoint_every)


CHECKPOINTS = "checkpoints"   # results/<grid>/checkpoints/: the runs in flight


def checkpoint_folder(folder: Path, done: set[str]) -> Path:
    """results/<grid>/checkpoints/, where each trial saves its run at epoch ends so that a killed
    sweep's trials go on from there (harness.engine.resume); the files of runs whose configs are
    all done by now are removed, and the folder with the last of them."""
    checkpoints = folder / CHECKPOINTS
    for path in checkpoints.glob("*.pt"):
        if set(checkpoint_configs(path)) <= done:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        checkpoints.rmdir()       # only if empty
    return checkpoints


def requested_speed(options: SweepOptions, gpu: bool) -> str:
    return options.speed or speeds.DEFAULT["cuda" if gpu else "cpu"]


def speed_line(options: SweepOptions, info: ExecutorInfo, todo: list[TrainConfig]) -> str:
    """What the trials will train with, and why: `auto` resolved for this machine's device of the
    trials' kind (each trial resolves it again on its own device), and the families it skips."""
    gpu = info.gpus_per_trial > 0
    import torch
    kind = "cuda" if gpu and torch.cuda.is_available() else "cpu"
    name, why = speeds.resolve(requested_speed(options, gpu), device_name(kind))
    speed = Speed.parse(name)
    try:
        speed.check(torch.device(kind))
    except SpeedUnsupported as e:
        raise SweepStop(f"--speed {name}", f"{e}, and this sweep's trials train on {kind}",
                        "pass --speed fp32, bf16 or compile, or give the trials GPUs (--gpus-per-trial)", 2) from None
    overrides = [f"{v}={os.environ[v]}" for v in TF32_OVERRIDES if kind == "cuda" and os.environ.get(v)]
    if overrides:   # read by cuBLAS itself: torch's switch cannot undo them
        why += f"; {', '.join(overrides)} in the environment overrides TF32 for every variant (unset it for fp32)"
    first = {c.family: c for c in todo}.values()   # one config per family
    skipped = sorted({reason for c in first for reason in speed.applied(c.spec, c.settings)[1]})
    return (f"Speed: {name}" + (f" ({why})" if why != f"--speed {name}" else "")
            + "".join(f"; {reason}" for reason in skipped) + ".")


def _run(grid: Grid, options: SweepOptions, table: ResultsTable, done: set[str], todo: list[TrainConfig],
         configs: list[TrainConfig]) -> int:
    executor = _executor(options, table.folder)
    info = executor.start()                        # SweepStop(2) if it cannot run a trial
    try:
        checkpoints = checkpoint_folder(table.folder, done)
        packs, resources, rates, slots, projected = _plan(info, options, todo, done, grid, checkpoints)
        print(speed_line(options, info, todo), flush=True)
        costs = [rates.pack_seconds(p) for p in packs] if rates else [float(len(p)) for p in packs]
        ids = {c.config_id for c in configs}
        progress = Progress(total=len(configs), already=len(done & ids), costs=costs, projected=projected)
        extra = {"sampleSeed": options.sample_seed} if options.sample else {}
        writer = RowWriter(grid, table, packs, progress, options.stop, extra, options.tensorboard)
        t1 = time.monotonic()
        interrupted = False
        try:
            with stop_handlers(writer):
                env = _trial_env(options, info.gpus_per_trial > 0, checkpoints)
                executor.run(packs, resources, env, writer)
        except KeyboardInterrupt:
            interrupted = True
        except SweepStop:
            raise
        except Exception as e:  # the executor's machinery failed, not a trial (those are rows)
            raise writer.stop_reason or _executor_failed(e, executor, options) from None
    finally:
        executor.stop()
        with contextlib.suppress(OSError):
            (table.folder / CHECKPOINTS).rmdir()   # once every run in it has finished
        try:
            table.compact()
        except OSError:
            pass  # the parts stay; the next run merges them
    if writer.stop_reason is not None:
        raise writer.stop_reason
    return _summary(grid, configs, table, options, t1, interrupted or writer.interrupted.is_set())


def _executor_failed(e: Exception, executor, options: SweepOptions) -> SweepStop:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e):
        return disk_full(executor.storage, "Ray Tune's storage")
    last = [line for line in str(e).strip().splitlines() if line.strip()][-1:] or [""]
    return SweepStop(f"the {options.executor} executor", f"stopped with an error ({type(e).__name__}: "
                     f"{last[0][:300]})", f"resume with: {resume_hint(options)} (rows already written are kept)", 1)


def _summary(grid: Grid, configs: list[TrainConfig], table: ResultsTable, options: SweepOptions, t1: float,
             interrupted: bool) -> int:
    """The last lines, and the exit status: 130 interrupted, 1 error rows remain, else 0."""
    df = table.df
    ids = {c.config_id for c in configs}
    rows = df[df["configId"].isin(ids)] if not df.empty else df
    n_done = int(rows["status"].isin(DONE).sum()) if not rows.empty else 0
    n_err = int((rows["status"] == "error").sum()) if not rows.empty else 0
    print(f"{grid.name}: {n_done}/{len(configs)} done, {n_err} errors; this run "
          f"{dt.timedelta(seconds=round(time.monotonic() - t1))}; results in {table.folder}", flush=True)
    if interrupted:
        print(f"Interrupted: {n_done} of {len(configs)} configs are done. Resume with: "
              f"{resume_hint(options)}", flush=True)
        return 130
    if n_err:
        print(f"{n_err} configs have error rows (their messages are in the table's 'error' column); "
              f"retry them with: {resume_hint(options)}", flush=True)
        return 1
    return 0


def speed_name(value: str) -> str:
    try:
        return speeds.check_name(value)
    except HarnessError as e:
        raise argparse.ArgumentTypeError(e.why) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("grid", help="grid file, e.g. grids/mnist_table1.yaml")
    p.add_argument("--results", default="results", help="results folder (default: results/)")
    p.add_argument("--data-dir", help="MNIST folder, for grids of MNIST (default: $HARNESS_DATA_DIR, else download "
                   "to a cache); a generated dataset (ring8, grid25) needs none")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed classifiers/mnist_convnet.pt)")
    p.add_argument("--executor", choices=("ray", "local"), default="ray",
                   help="ray: Ray Tune trials on an embedded local Ray or a cluster (default); local: the packs "
                        "one after another in this process, without Ray")
    p.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPU fraction per trial (default 0.25 where GPUs exist, else 0)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (default 1)")
    p.add_argument("--max-concurrent", type=int, default=0,
                   help="at most N trials at once (default: as resources allow)")
    p.add_argument("--pack-size", type=int, default=0,
                   help=f"configs of one shape trained together per trial (default on CPU: "
                   f"8, 2 for models of >16M weights; with GPUs as many as fit the trial's share of the card, up to "
                   f"{GPU_MAX_PACK}; 1 = the reference trainer)")
    p.add_argument("--local-workers", type=int, default=1,
                   help="with --executor local: packs in flight at once, each in a worker process (default 1: "
                        "one after another in this process)")
    p.add_argument("--limit", type=int, help="run at most N not-yet-done configs")
    p.add_argument("--retries", type=int, default=1, help="retries of a failing trial before its rows are 'error'")
    p.add_argument("--storage",
                   help="Ray Tune's experiment folder (default RESULTS/<grid>/ray; shared on a multi-node cluster)")
    p.add_argument("--preflight-timeout", type=float, default=120,
                   help="seconds a test task with a trial's resources may take to start on the cluster (default 120)")
    p.add_argument("--max-configs", type=int, default=DEFAULT_MAX_CONFIGS,
                   help=f"refuse grids that expand to more runs (default {DEFAULT_MAX_CONFIGS:,})")
    p.add_argument("--inject-failure", action="append", metavar="CONFIG_ID",
                   help="fault injection: the trial of this config raises instead of training (repeatable), to "
                        "check retries and error rows on your cluster; the config trains alone")
    p.add_argument("--sample", type=int, metavar="N",
                   help="run N configs of the grid drawn at random, every family's and optimizer subgrid's share "
                        "kept; the same --sample-seed with a larger N adds configs to the earlier ones")
    p.add_argument("--sample-seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="write no TensorBoard runs (default: one per row in RESULTS/<grid>/tensorboard)")
    p.add_argument("--speed", type=speed_name, metavar="VARIANT",
                   help="the engine's speed variant: fp32, tf32, bf16, graph, compile, combinations joined by '+' "
                        "(graph+tf32), or auto: the fastest variant that passed this device's GPU check "
                        "(python -m harness.gpucheck). Default: fp32 on CPU, auto with GPUs. Rows record it (speed)")
    p.add_argument("--checkpoint-every", type=float, default=SAVE_EVERY_S, metavar="S",
                   help=f"a trial saves its run at the first epoch end S seconds after its last save (default "
                        f"{SAVE_EVERY_S:g}; 0: every epoch) into RESULTS/<grid>/checkpoints, so that a killed sweep's "
                        "trials go on from there when the same command runs again")
    p.add_argument("--dry-run", action="store_true", help="print counts (per family, per GAN subgrid, done) and exit")
    args = p.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        p.error("--sample must be >= 1")
    for name in ("limit", "pack_size", "max_concurrent", "retries", "max_configs", "local_workers"):
        v = getattr(args, name)
        if v is not None and v < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.checkpoint_every < 0:
        p.error("--checkpoint-every must be >= 0")
    if args.cpus_per_trial <= 0 or (args.gpus_per_trial is not None and args.gpus_per_trial < 0):
        p.error("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.executor == "local" and args.address:
        p.error("--address is for --executor ray (a Ray cluster); --executor local runs in this process")
    return args


def options_from(args: argparse.Namespace, argv: list[str]) -> SweepOptions:
    """The command line's SweepOptions (the flags' names are the options')."""
    return SweepOptions(
        results=Path(args.results), data_dir=args.data_dir, classifier=args.classifier, executor=args.executor,
        address=args.address, gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial,
        max_concurrent=args.max_concurrent, pack_size=args.pack_size or None, local_workers=args.local_workers,
        limit=args.limit, retries=args.retries, storage=args.storage, preflight_timeout=args.preflight_timeout,
        inject_failure=tuple(args.inject_failure or ()), sample=args.sample, sample_seed=args.sample_seed,
        tensorboard=args.tensorboard, speed=args.speed, checkpoint_every=args.checkpoint_every,
        resume_command=resume_command(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        grid = load_grid(args.grid, max_configs=args.max_configs)
        done = ResultsTable(Path(args.results) / grid.name).done_ids()
        if args.dry_run:
            options = options_from(args, argv)
            print(dry_run_report(grid, done, sampled(grid, options) if options.sample else None))
            return 0
        for name in sorted({c.dataset for c in grid.configs}):  # fail here, once, rather than in every trial
            datasets.get(name).prepare(args.data_dir, args.classifier)
        return run_sweep(grid, options_from(args, argv))
    except HarnessError as e:  # bad input, a busy folder, a SweepStop: one line
        return report(e)  # exit 2, or the SweepStop's own code


if __name__ == "__main__":
    sys.exit(main())
