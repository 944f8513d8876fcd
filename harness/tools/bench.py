"""Benchmark: model-steps per second of the reference trainer and of packs, and what that
means for the whole Table 1 grid.

    python -m harness.bench [--quick] [--device auto|cpu|cuda] [--threads 1] [--sizes 2,8,24]
                            [--archs small,middle,large] [--concurrent]

What is measured: training steps only (one D and one G update per model), through the real
trainers (`harness.engine.train`, `harness.engine.train_pack`) on synthetic images: steady-state
seconds per step between two synchronized clock reads within one run, after its first steps
(`harness.tools.measure.time_steps`), best of a few repeats. A model-step is one step of one
config: a pack of K doing s steps/s makes K*s model-steps/s. "x ref" is over the reference trainer on the same configs.

Configs: GAN configs of one Table 1 architecture, mixing optimizers as Table 1 does. Packs of
K take the first K of the architecture's 24 GAN configs ordered by (lr, dropoutD, optimizers
adam/adam, sgd/sgd, adam/sgd, sgd/adam), so any pack of 2 or more is half Adam, half SGD. The
reference trainer is timed on the 8 (optimizers x dropoutD) classes, and its rate for a pack's
configs is K / sum of their times per step (the learning rate does not change the cost).

Each measurement runs in its own process (so peak memory is its own: max RSS growth on CPU,
torch.cuda.max_memory_allocated on CUDA). A pack whose memory estimate exceeds 60% of the free
memory is skipped.

Rates and projection (harness/costmodel.py): the pack measurements are fitted to
    seconds per pack step = step overhead + K x flops_per_step / FLOP/s,
and tiny packs run end to end (data and classifier already loaded), scoring more or fewer
samples, give the seconds per scored sample and a trial's fixed cost (`overheads`). The whole Table 1
grid is projected with these rates, in the sweep's own packs. `--save-rates` writes the
rates to harness/rates.json, where the sweep reads them for its projection and ETA.

    python -m harness.bench --sweep     the sweep's driver at Table 1's scale (see sweep_benchmark)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from harness.config import TrainConfig
from harness.engine import pick_device
from harness.errors import HarnessError, report
from harness.provenance import device_name
from harness.strict_json import dumps
from harness.tools.measure import (
    ARCHS,
    emit,
    free_memory,
    pack_memory_estimate,
    run_worker,
    table1_gan_configs,
    table1_packs,
    table1_variant,
    time_steps,
    write_grid,
)

TABLE1 = dict(epochs=25)
# timed steps per run (full, quick) and repeats, per architecture
STEPS = {"small": ((60, 30), 3), "middle": ((8, 4), 2), "large": ((4, 2), 1)}


# --- one measurement, in its own process ------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(job: dict) -> None:
    """Time the reference (pack == 1: each of the 8 cost classes) or one pack; one JSON line."""
    torch.set_num_threads(job["threads"])
    device = pick_device(job["device"])
    steps, repeats = job["steps"], job["repeats"]
    warm = replace(table1_gan_configs(job["arch"], 3)[0], sizeG=32, sizeD=16)
    time_steps([warm], 1, device)                                        # library warm-up
    time_steps([warm, replace(warm, optimD="sgd")], 1, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base = rss_bytes()
    out: dict = {}
    configs = table1_gan_configs(job["arch"], 1)
    if job["pack"] == 1:
        out["sec_per_step"] = {f"{c.optimD}/{c.optimG}/{c.dropoutD}": min(time_steps([c], steps, device)
                                                                          for _ in range(repeats))
                               for c in configs[:8]}
    else:
        out["model_steps_per_s"] = job["pack"] / min(time_steps(configs[: job["pack"]], steps, device)
                                                       for _ in range(repeats))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["peak_bytes"] = (torch.cuda.max_memory_allocated() if device.type == "cuda" else max(0, peak_rss - base))
    out["device"] = str(device)
    emit(out)


def measure(job: dict) -> dict:
    lines, error = run_worker("harness.bench", job, timeout=3600)
    return lines[-1] if lines and not error else {"error": error or "no measurement"}


# --- rates and projection -----------------------------------------------------------------------

def overheads(job: dict) -> dict:
    """Seconds per scored sample and a trial's fixed cost, from tiny packs of 8 run end to end
    through harness.trial.run_trial (MNIST and classifier loaded) that score 64, 576 and 1088
    samples per member at the end: a least-squares line through (samples scored, seconds). Its
    slope is a sample's cost as the trainer scores them (generate, classify, statistics); its
    intercept is the fixed cost (building the pack, one step, FID, the PNGs, the rows)."""
    import numpy as np

    from harness.costmodel import scored_samples
    from harness.trial import TrialEnv, run_trial
    torch.set_num_threads(job["threads"])
    env = TrialEnv(job["data_dir"], None, threads=job["threads"], gpu=job["device"] != "cpu")

    def tiny(score: int) -> list[TrainConfig]:
        return [replace(table1_gan_configs("small", 1)[i], sizeG=8, sizeD=8, trainImages=64, epochs=1,
                        scoreSamples=score, epochScoreSamples=64) for i in range(8)]

    def seconds(pack: list[TrainConfig]) -> float:
        t = time.perf_counter()
        run_trial(pack, env)
        return time.perf_counter() - t
    run_trial(tiny(64), env)                                             # loads and warms up
    packs = [tiny(score) for score in (64, 576, 1088)]
    samples = [len(p) * scored_samples(p[0]) for p in packs]
    times = [min(seconds(p) for _ in range(2)) for p in packs]
    per_sample, fixed = np.polyfit(samples, times, 1)
    return {"score_s_per_sample": max(0.0, float(per_sample)), "trial_overhead_s": max(0.0, float(fixed))}


def fit_rates(sec: dict[str, dict[int, float]], over: dict, kind: str, threads: int, packs: bool, measured: str):
    """Rates fitted to the measured packs (packs=True) or to the reference trainer (packs=False)."""
    from harness.costmodel import Rates, fit_step_time, flops_per_step
    points = [(K * flops_per_step(table1_gan_configs(arch, 1)[0]), K * s)
              for arch, by_k in sec.items() for K, s in by_k.items() if (K > 1) == packs]
    if not points:
        return None
    a, r = fit_step_time(points)
    return Rates(kind=kind, step_overhead_s=a, flops_per_s=r, score_s_per_sample=over["score_s_per_sample"],
                 trial_overhead_s=over["trial_overhead_s"], threads=threads, measured=measured)


def concurrency(job: dict) -> float:
    """Model-steps/s of two identical measurements run at once, over one run alone (2.0 = perfect)."""
    from harness.tools.measure import run_workers

    def rate(r: dict) -> float:
        if "model_steps_per_s" in r:
            return r["model_steps_per_s"]
        return len(r["sec_per_step"]) / sum(r["sec_per_step"].values())
    alone = rate(measure(job))
    return sum(rate(lines[-1]) for lines, _ in run_workers("harness.bench", [job, job], timeout=3600)) / alone


# --- the sweep's driver at Table 1's scale (--sweep) ---------------------------------------------

TINY_WIDTHS = {"sizeG": (400, 800, 1600, 3200), "sizeD": (128, 256, 512, 1024)}  # -> 4, 5, 6, 7 units


def tiny_table1_grid(folder: Path) -> Path:
    """Table 1 with its counts and shapes (every config; every architecture its own shape) but
    widths of 4-7 units and one step per run, scored on 64 samples: the driver's work, not training."""
    def tiny(entry: dict) -> dict:
        return {**entry, **{key: [4 + widths.index(w) for w in entry[key]] for key, widths in TINY_WIDTHS.items()}}
    grid = table1_variant("bench_sweep", dict(epochs=1, trainImages=64, scoreSamples=64, epochScoreSamples=64), tiny)
    return write_grid(grid, folder)


def table1_pack_size(cfg: TrainConfig) -> int:
    """The CPU pack size of the Table 1 architecture a tiny config stands for (same packing)."""
    from harness.plan import cpu_pack_size
    return cpu_pack_size(replace(cfg, **{k: w[getattr(cfg, k) - 4] for k, w in TINY_WIDTHS.items()}))


def sweep_benchmark(results: Path, executor: str, data_dir: str | None) -> dict:
    """Run the tiny Table 1 grid through the real sweep (this process is its driver) and measure
    the time to the first row, configs/s, the driver's CPU seconds per trial, Tune's state size."""
    import threading

    from harness.data import resolve_data_dir
    from harness.executors import SweepOptions
    from harness.grid import load_grid
    from harness.results import ResultsTable
    from harness.sweep import run_sweep

    results.mkdir(parents=True, exist_ok=True)
    grid_path = tiny_table1_grid(results)
    folder = results / "bench_sweep"
    t0 = time.monotonic()
    first_row: list[float] = []

    def watch() -> None:  # the first part file (one finished trial's rows) in the results folder
        while not first_row and not done.is_set():
            parts = (folder / "parts").is_dir() and any((folder / "parts").glob("*.parquet"))
            if parts or (folder / "trials.parquet").exists():
                first_row.append(time.monotonic() - t0)
            time.sleep(0.2)
    done = threading.Event()
    threading.Thread(target=watch, daemon=True).start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    grid = load_grid(grid_path)
    code = run_sweep(grid, SweepOptions(results=results, executor=executor, data_dir=str(resolve_data_dir(data_dir)),
                                        pack_size=table1_pack_size))
    wall = time.monotonic() - t0
    done.set()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rows = ResultsTable(folder).df
    trials = round((1 / rows["packSize"]).sum()) if len(rows) else 0   # the trials that finished
    state = sum(f.stat().st_size for f in (folder / "ray").rglob("*") if f.is_file())   # 0 if absent
    return {"exit": code, "configs": len(grid.configs), "trials": trials, "rows": len(rows),
            "ok": int((rows["status"] == "ok").sum()) if len(rows) else 0,
            "first_row_s": first_row[0] if first_row else None, "wall_s": wall,
            "configs_per_s": len(rows) / wall,
            "driver_cpu_s_per_trial": (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / max(1, trials),
            "tune_state_bytes": state}


def driver_seconds_per_trial(n_packs: int, folder: Path) -> float:
    """What the sweep's driver does per trial, through Ray Tune's own trial generation (no Ray
    started): plan the packs, let Tune's SearchGenerator create every trial from PackSearcher's
    suggestions, and write each trial's rows with the sweep's RowWriter (one results part each)."""
    import contextlib
    import io

    from ray.tune.experiment import Experiment
    from ray.tune.search import SearchGenerator

    from harness.engine import TrainResult
    from harness.executors.tune_parts import PackSearcher
    from harness.grid import Grid
    from harness.plan import plan_packs
    from harness.results import ResultsTable
    from harness.rows import Progress, RowWriter
    configs = [TrainConfig(sizeG=8 + i, sizeD=8, trainImages=64, epochs=1) for i in range(n_packs)]
    grid = Grid(name="g", path=folder / "g.yaml", description="", configs=configs, settings={})
    t = time.perf_counter()
    packs = plan_packs(configs, 8, None)
    gen = SearchGenerator(PackSearcher([str(i) for i in range(len(packs))], [{"cpu": 1}] * len(packs)))
    gen.add_configurations([Experiment("bench", lambda config: None, num_samples=len(packs))])
    writer = RowWriter(grid, ResultsTable(folder / f"t{n_packs}"), packs,
                       Progress(total=n_packs, already=0, costs=[1.0] * n_packs, projected=None))
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in packs:
            i = gen.next_trial().config["pack"]
            writer.finished(i, [{"configId": c.config_id, "result": TrainResult.failed("x"), "png": None}
                                for c in packs[i]])
    return (time.perf_counter() - t) / n_packs


def print_driver_scaling() -> None:
    """The driver's seconds per trial for 133 and 1330 trials (Table 1's count), best of 3 and 2:
    flat when its work is linear in the grid (quadratic planning made it grow ~10x)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        small = min(driver_seconds_per_trial(133, Path(tmp) / f"s{r}") for r in range(3))
        large = min(driver_seconds_per_trial(1330, Path(tmp) / f"l{r}") for r in range(2))
    print(f"driver time per trial: {small * 1e3:.2f} ms at 133 trials, {large * 1e3:.2f} ms at 1330 "
          f"({large / small:.2f}x; flat is 1x, the target < 3x)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer timed steps and repeats (~2 minutes on 2 CPU cores)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads per measurement (default 1)")
    p.add_argument("--sizes", default="2,8,24", help="pack sizes (default 2,8,24)")
    p.add_argument("--archs", default="small,middle,large")
    p.add_argument("--concurrent", action="store_true",
                   help="also measure 2 concurrent trials (small arch; reference and the largest pack size)")
    p.add_argument("--sweep", action="store_true",
                   help="instead: the sweep's driver on a grid of Table 1's counts and packing, tiny widths, one step "
                        "per run (targets on 2 cores: first row < 30 s, 6656 rows < 10 min, Tune state <= 20 MB)")
    p.add_argument("--driver", action="store_true",
                   help="instead: the sweep driver's time per trial at 133 and 1330 trials (flat in the grid's size)")
    p.add_argument("--sweep-results", "--results", dest="sweep_results", default=None,
                   help="with --sweep: results folder (default: a temporary one)")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else the cache)")
    p.add_argument("--executor", default="ray", choices=("ray", "local"), help="with --sweep: the sweep's executor")
    p.add_argument("--save-rates", action="store_true",
                   help="write the fitted rates to harness/rates.json (the sweep's projection and ETA read them)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def print_sweep_benchmark(args: argparse.Namespace) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        r = sweep_benchmark(Path(args.sweep_results or tmp), args.executor, args.data_dir)
    print(f"\nsweep benchmark ({args.executor} executor; {os.cpu_count()} CPUs): {r['configs']} configs; "
          f"{r['rows']} rows ({r['ok']} ok) from {r['trials']} finished trials, exit {r['exit']}")
    first = f"{r['first_row_s']:.1f} s" if r["first_row_s"] is not None else "none"
    print(f"  first row after {first} (target < 30 s)\n  all rows after {r['wall_s']:.0f} s "
          f"(target < 600 s), {r['configs_per_s']:.1f} configs/s\n  driver CPU "
          f"{r['driver_cpu_s_per_trial'] * 1000:.1f} ms per trial\n  Ray Tune experiment folder "
          f"{r['tune_state_bytes'] / 2**20:.1f} MB (target <= 20 MB)")
    print(dumps(r))


def measure_arch(arch: str, sizes: list[int], args: argparse.Namespace) -> dict[int, float] | None:
    """Seconds per model-step of the reference trainer (key 1) and of packs of `sizes`, printed as
    measured; None if the reference failed."""
    (full, quick), repeats = STEPS[arch]
    job = dict(arch=arch, device=args.device, threads=args.threads, steps=quick if args.quick else full,
               repeats=1 if args.quick else repeats)
    ref = measure({**job, "pack": 1})
    if "error" in ref:
        print(f"{arch}: reference failed: {ref['error']}")
        return None
    configs = table1_gan_configs(arch, 1)

    def ref_rate(K: int) -> float:
        return K / sum(ref["sec_per_step"][f"{c.optimD}/{c.optimG}/{c.dropoutD}"] for c in configs[:K])

    label = f"{arch} {ARCHS[arch]}"
    sec = {1: 1 / ref_rate(8)}
    print(f"{label:<36}{'ref':>5}{ref_rate(8):>15.1f}{1.0:>8.2f}{ref['peak_bytes'] / 2**20:>10.0f}", flush=True)
    for K in sizes:
        need, free = pack_memory_estimate(arch, K), free_memory(pick_device(args.device))
        if need > 0.6 * free:
            print(f"{label:<36}{K:>5}{'skipped':>15}  (needs ~{need / 2**30:.1f} GB, {free / 2**30:.1f} GB free)",
                  flush=True)
            continue
        r = measure({**job, "pack": K})
        if "error" in r:
            print(f"{label:<36}{K:>5}  failed: {r['error']}", flush=True)
            continue
        rate = r["model_steps_per_s"]
        sec[K] = 1 / rate
        print(f"{label:<36}{K:>5}{rate:>15.1f}{rate / ref_rate(K):>8.2f}{r['peak_bytes'] / 2**20:>10.0f}", flush=True)
    return sec


def measure_concurrency(args: argparse.Namespace, sizes: list[int]) -> dict[int, float]:
    (full, quick), _ = STEPS["small"]
    job = dict(arch="small", device=args.device, threads=args.threads, steps=quick if args.quick else full, repeats=1)
    factors = {K: concurrency({**job, "pack": K}) for K in (1, max(sizes))}
    print("\n2 concurrent trials (small arch): " + ", ".join(
        f"{'reference' if K == 1 else f'packs of {K}'} {f:.2f}x the model-steps/s of one" for K, f in factors.items())
          + " (2.00 = perfect scaling over the two cores)")
    return factors


def project_table1(args: argparse.Namespace, sec: dict[str, dict[int, float]], factors: dict[int, float]) -> int:
    """Rates fitted to what was measured, how well they fit, Table 1 projected with them; --save-rates."""
    from harness.costmodel import flops_per_step, fmt_duration, project
    from harness.plan import cpu_pack_size
    device = pick_device(args.device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    over = measure({"overheads": True, "device": args.device, "threads": args.threads, "data_dir": args.data_dir})
    if "error" in over:
        return report(HarnessError("bench: overheads", f"the measurement failed ({over['error']})",
                                   "check --data-dir (it trains and scores on MNIST) and the device, then rerun", 1))
    measured = (f"python -m harness.bench{' --quick' if args.quick else ''} --threads {args.threads} on "
                f"{device_name(str(device))}, {time.strftime('%Y-%m-%d')}")
    pack_rates = fit_rates(sec, over, kind, args.threads, True, measured)
    ref_rates = fit_rates(sec, over, kind, args.threads, False, measured)
    if pack_rates is None:
        return report(HarnessError("bench: rates", "no pack was measured, so no rates were fitted",
                                   "see the failures in the table above; try fewer --sizes or --device cpu", 1))
    print(f"\nCost model fitted to the packs: step overhead {pack_rates.step_overhead_s * 1e3:.2f} ms, "
          f"{pack_rates.flops_per_s / 1e9:.1f} GFLOP/s; scoring {pack_rates.score_s_per_sample * 1e6:.0f} us/sample; "
          f"trial overhead {pack_rates.trial_overhead_s:.2f} s")
    for arch, by_k in sec.items():
        cfg = table1_gan_configs(arch, 1)[0]
        fits = []
        for K, s in sorted(by_k.items()):
            rates = pack_rates if K > 1 else ref_rates
            model = rates.step_overhead_s + K * flops_per_step(cfg) / rates.flops_per_s
            fits.append(f"{'ref' if K == 1 else K}: {model / (K * s):.2f}")
        print(f"  model / measured seconds per step, {arch}: " + ", ".join(fits))
    slots = max(1, os.cpu_count() // args.threads) if kind == "cpu" else 4
    print(f"\nTable 1 grid ({sum(map(len, table1_packs(1)))} runs x {TABLE1['epochs']} epochs), projected by "
          f"the cost model:")
    for what, size, rates in (("reference trainer", 1, ref_rates),
                              ("the CPU default: packs of 8 (2 if >16M weights)", cpu_pack_size, pack_rates),
                              ("packs of 24", 24, pack_rates)):
        if rates is not None:
            packs = table1_packs(size)
            one, many = project(packs, rates, 1), project(packs, rates, slots)
            print(f"  {what:<50} one trial at a time {fmt_duration(one):>9}; {slots} at a time {fmt_duration(many):>9}")
    if factors:
        print(f"  (the {slots}-at-a-time figures assume perfect scaling; measured above: "
              + ", ".join(f"{f:.2f}x" for f in factors.values()) + " for 2)")
    if args.save_rates:
        pack_rates.save()
        print(f"rates for '{kind}' written to harness/rates.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        if job.get("overheads"):
            emit(overheads(job))
        else:
            worker(job)
        return 0
    if args.sweep:
        try:
            print_sweep_benchmark(args)
        except HarnessError as e:  # bad --data-dir, a busy or full results folder, a cluster that cannot run it
            return report(e)
        return 0
    if args.driver:
        print_driver_scaling()
        return 0
    t0 = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"model-steps/s, {args.threads} thread(s) per measurement, device {args.device}"
          f"{' (quick)' if args.quick else ''}; cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'arch (nLayerG,nLayerD,sizeG,sizeD)':<36}{'pack':>5}{'model-steps/s':>15}{'x ref':>8}{'peak MB':>10}",
          flush=True)
    sec = {arch: by_k for arch in args.archs.split(",") if (by_k := measure_arch(arch, sizes, args)) is not None}
    factors = measure_concurrency(args, sizes) if args.concurrent else {}
    code = project_table1(args, sec, factors)
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
