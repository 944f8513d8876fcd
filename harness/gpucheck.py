"""The one-shot GPU check: is the packed engine right on this device, how fast is it, what does
that make of Table 1, and does a real slice of Table 1 run end to end? One command, no Ray, no
internet, a handful of small files.

    PYTHONPATH=. python3 -m harness.gpucheck OUT_DIR --data-dir DIR      # on a GPU box, < 8 minutes
    python -m harness.gpucheck OUT_DIR --device cpu --quick              # its logic, on a CPU (CI)

OUT_DIR gets gpucheck.json (sections correctness, throughput, projection, slice; `correctness.ok`
is true only if every check passed), gpucheck.md (the same, to read) and report.html (the
slice's report page, self-contained): three files. Both JSON and Markdown are rewritten after
every phase, so a run cut short still leaves what it found.

- correctness: packs against the reference trainer on this device, same seeds: GAN, EBGAN and
  EBGAN-PT (and every other packable family), Adam and SGD, no dropout; each speed variant's
  first LOSS_STEPS steps' losses within its stated tolerance, the final I' of a short run within
  IPRIME_TOL; a member with a huge lr diverges and is frozen while its pack-mates stay on their
  reference runs.
- throughput: the reference trainer and packs of 8, 24, 48, 96 (as memory allows) for the
  smallest, a middle and the largest Table 1 architecture, with every speed variant; peak memory,
  GPU utilization (nvidia-smi, where it answers). Each (architecture, variant) runs in its own
  process: a variant that fails is a row with its one-line error, never the check's end.
- projection: hours for the whole Table 1 on this device with the fastest variant that passed
  correctness, the pack size per architecture that implies (the largest that fits: packs hold
  one architecture's configs, 24 GAN and 2 EBGAN per seed) and the concurrency (packs in flight
  at once, measured with concurrent processes).
- slice: a real Table 1 slice (three architectures, all their configs, short runs) through the
  sweep's local executor, then the report on it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from harness.bench import (ARCHS, REPO, NullScorer, mem_available, pack_memory_estimate, seconds_per_step,
                           table1_gan_configs, table1_packs)
from harness.config import TrainConfig
from harness.costmodel import Rates, flops_per_step, fmt_duration, project
from harness.models import IMAGE_DIM
from harness.provenance import device_name

# Speed variants of the packed engine (harness.packed.Speed): name -> its switches.
VARIANTS = {
    "fp32": {},
    "tf32": {"tf32": True},
    "bf16": {"bf16": True},
    "graph": {"graph": True},
    "graph+tf32": {"graph": True, "tf32": True},
    "compile": {"compile": True},
}
CPU_VARIANTS = ("fp32", "compile")      # TF32, bf16 autocast and CUDA graphs are CUDA's
LOSS_STEPS = 50
# Tolerances of a pack member against its reference run on the same device. A CUDA pack runs
# batched matmuls where the reference runs plain ones: equal maths, other summation orders, so
# ~1e-7 relative differences at the first step, which EBGAN's Adam (an update ~ lr x sign(g) for
# g ~ 0) amplifies ~1e4-fold within a few steps. TF32 and bf16 round matmul inputs to 10 and 7
# mantissa bits. On a CPU a fp32 member is bit-equal to its reference run (tests/test_packed.py).
LOSS_RTOL = {"fp32": 1e-2, "graph": 1e-2, "compile": 1e-2, "tf32": 5e-2, "graph+tf32": 5e-2, "bf16": 1e-1}
LOSS_ATOL = 1e-3
IPRIME_TOL = 0.1                          # final I' (range 0..ln 10 = 2.30), absolute
PACK_SIZES = (8, 24, 48, 96)
CONCURRENCY = (1, 2, 4)
MAX_FILES, MAX_BYTES = 8, 16 << 20


# --- correctness -----------------------------------------------------------------------------------

CHECK_GRID = REPO / "grids" / "gpucheck.yaml"
HUGE_LR = 1e5   # a member of grids/gpucheck.yaml with a learning rate above this must diverge


def correctness_packs(quick: bool) -> list[list[TrainConfig]]:
    """grids/gpucheck.yaml's configs, one pack per shape (per family); --quick: one seed, tiny widths, 30 steps."""
    from harness.grid import load_grid
    from harness.sweep import make_packs
    configs = load_grid(CHECK_GRID).configs
    if quick:
        configs = [replace(c, sizeG=32, sizeD=16, trainImages=640, scoreSamples=500, epochScoreSamples=200)
                   for c in configs if c.seed == 0]
    return make_packs(configs, pack_size=len(configs))


def compare(member, ref, variant: str) -> dict:
    """How far a pack member is from its reference run, and whether that is within tolerance."""
    n = min(LOSS_STEPS, len(ref.lossHistory), len(member.lossHistory))
    got = torch.tensor(member.lossHistory[:n], dtype=torch.float64)
    want = torch.tensor(ref.lossHistory[:n], dtype=torch.float64)
    both_finite = torch.isfinite(got) & torch.isfinite(want)
    excess = ((got - want).abs() - LOSS_ATOL - LOSS_RTOL[variant] * want.abs()).where(both_finite, 0.0)
    rel = ((got - want).abs() / want.abs().clamp_min(1e-6)).where(both_finite, 0.0)
    same_finite = bool((torch.isfinite(got) == torch.isfinite(want)).all())
    losses_ok = n > 0 and same_finite and bool((excess <= 0).all())
    if ref.status == "ok":
        d_iprime = abs(member.Iprime - ref.Iprime) if member.status == "ok" else math.inf
        final_ok = member.status == "ok" and d_iprime <= IPRIME_TOL
    else:
        d_iprime, final_ok = math.nan, member.status == ref.status
    return {"steps_compared": n, "max_rel_loss_diff": float(rel.max()) if n else math.nan,
            "losses_ok": losses_ok, "status": member.status, "ref_status": ref.status,
            "Iprime": member.Iprime, "ref_Iprime": ref.Iprime, "Iprime_diff": d_iprime,
            "ok": losses_ok and final_ok}


def check_correctness(device: torch.device, data_dir: str | None, variants: list[str], quick: bool,
                      deadline: float) -> dict:
    from harness.data import gan_training_set
    from harness.metrics import Scorer
    from harness.packed import Speed, train_pack
    from harness.train import train

    packs = correctness_packs(quick)
    data = gan_training_set(data_dir, max(p[0].trainImages for p in packs), device)
    scorer = Scorer(None, data_dir, device)
    refs = {c: train(c, data, scorer, None, device, record_losses=True) for p in packs for c in p}
    checks = []
    for variant in variants:
        for pack in packs:
            name = f"{pack[0].spec.title} pack of {len(pack)}, {variant}"
            if time.monotonic() > deadline:
                checks.append({"check": name, "variant": variant, "ok": False, "error": "skipped: out of time"})
                continue
            try:
                members = train_pack(pack, data, scorer, None, device, record_losses=True,
                                     speed=Speed(**VARIANTS[variant]))
            except Exception as e:  # a variant that fails is a failed check, not the end
                checks.append({"check": name, "variant": variant, "ok": False, "error": one_line(e)})
                continue
            for cfg, member in zip(pack, members):
                row = {"check": f"{name}: {cfg.model} {cfg.subgrid} seed {cfg.seed}", "variant": variant,
                       **compare(member, refs[cfg], variant)}
                if cfg.lr >= HUGE_LR:  # the huge-lr member: diverged, frozen; its mates are the other rows
                    row["ok"] = member.status == "diverged" and refs[cfg].status == "diverged"
                    row["check"] += " (huge lr: diverges, frozen)"
                checks.append(row)
    by_variant = {v: all(c["ok"] for c in checks if c["variant"] == v) for v in variants}
    return {"ok": all(c["ok"] for c in checks) and bool(checks), "variants_passed": by_variant,
            "tolerances": {"loss_steps": LOSS_STEPS, "loss_rtol": LOSS_RTOL, "loss_atol": LOSS_ATOL,
                           "Iprime_abs": IPRIME_TOL}, "checks": checks}


# --- throughput ------------------------------------------------------------------------------------

def throughput_configs(arch: str, K: int, steps: int) -> list[TrainConfig]:
    """K GAN configs of one architecture: its 24 optimizer/dropout/lr configs, over seeds."""
    base = table1_gan_configs(arch, steps)
    return [replace(base[i % 24], seed=i // 24) for i in range(K)]


def gpu_utilization() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5)
        return float(out.stdout.split()[0]) if out.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


class UtilizationSampler:
    """GPU utilization sampled every 0.5 s while a measurement runs (None where nvidia-smi is absent)."""

    def __init__(self, enabled: bool):
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True) if enabled and shutil.which("nvidia-smi") else None

    def run(self) -> None:
        while not self.stop.wait(0.5):
            u = gpu_utilization()
            if u is not None:
                self.samples.append(u)

    def __enter__(self):
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()

    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def throughput_worker(job: dict) -> dict:
    """In its own process: the reference trainer (job pack 1) or packs of job["sizes"], one variant."""
    from harness.packed import Speed, train_pack
    from harness.train import pick_device, train

    device = pick_device(job["device"])
    torch.set_num_threads(1 if device.type == "cpu" else torch.get_num_threads())
    steps, arch, speed = job["steps"], job["arch"], Speed(**VARIANTS[job["variant"]])
    data = (torch.rand(64 * (steps + 2), IMAGE_DIM) * 2 - 1).to(device)
    rows = []
    for K in job["sizes"]:
        row = {"arch": arch, "variant": job["variant"], "pack": K}
        need = pack_memory_estimate(arch, K)
        free = torch.cuda.mem_get_info()[0] if device.type == "cuda" else mem_available()
        if need > 0.8 * free:
            rows.append({**row, "status": "skipped", "error": f"needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"})
            continue
        try:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            with UtilizationSampler(device.type == "cuda") as util:
                if K == 1:
                    def run(n: int) -> float:
                        return train(throughput_configs(arch, 1, n)[0], data, NullScorer(), None, device).stepsPerSec
                    rate = 1 / seconds_per_step(run, steps, 1)
                else:
                    def run(n: int) -> float:
                        return train_pack(throughput_configs(arch, K, n), data, NullScorer(), None, device,
                                          speed=speed)[0].stepsPerSec
                    rate = K / seconds_per_step(run, steps, 1)
            peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            rows.append({**row, "status": "ok", "model_steps_per_s": rate,
                         "peak_MiB": peak / 2**20 if peak is not None else None, "gpu_util_pct": util.mean()})
        except Exception as e:
            rows.append({**row, "status": "failed", "error": one_line(e)})
            if "out of memory" in str(e).lower():
                break
    return {"rows": rows}


def concurrency_worker(job: dict) -> dict:
    """One of several processes timing the same pack at once (started together by a file barrier)."""
    from harness.packed import Speed, train_pack
    from harness.train import pick_device
    device = pick_device(job["device"])
    data = (torch.rand(64 * (job["steps"] + 2), IMAGE_DIM) * 2 - 1).to(device)

    def run(n: int) -> float:
        return train_pack(throughput_configs(job["arch"], job["pack"], n), data, NullScorer(), None, device,
                          speed=Speed(**VARIANTS[job["variant"]]))[0].stepsPerSec
    run(2)                                                                       # warm up, then start together
    Path(job["ready"] + f".{os.getpid()}").touch()
    while len(list(Path(job["ready"]).parent.glob(Path(job["ready"]).name + ".*"))) < job["n"]:
        time.sleep(0.05)
    return {"model_steps_per_s": job["pack"] / seconds_per_step(run, job["steps"], 1)}


def run_job(job: dict, timeout: float) -> dict:
    """A worker in its own process, with a timeout; its JSON, or {"error": one line}."""
    try:
        proc = subprocess.run([sys.executable, "-m", "harness.gpucheck", "--worker", json.dumps(job)],
                              capture_output=True, text=True, timeout=max(5.0, timeout))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_throughput(device: str, variants: list[str], quick: bool, deadline: float) -> dict:
    archs = ["small"] if quick else list(ARCHS)
    sizes = [8] if quick else list(PACK_SIZES)
    steps = {"small": 12 if quick else 40, "middle": 20, "large": 10}
    rows = []
    for arch in archs:
        jobs = [("reference", [1])] + [(v, sizes) for v in variants]
        for variant, ks in jobs:
            left = deadline - time.monotonic()
            if left < 10:
                rows += [{"arch": arch, "variant": variant, "pack": K, "status": "skipped", "error": "out of time"} for K in ks]
                continue
            r = run_job({"throughput": True, "arch": arch, "device": device, "steps": steps[arch],
                         "variant": "fp32" if variant == "reference" else variant, "sizes": ks}, left)
            if "error" in r:
                rows += [{"arch": arch, "variant": variant, "pack": K, "status": "failed", "error": r["error"]} for K in ks]
            else:
                rows += [{**row, "variant": variant} for row in r["rows"]]
    refs = {r["arch"]: r["model_steps_per_s"] for r in rows if r["variant"] == "reference" and r["status"] == "ok"}
    for r in rows:
        if r.get("status") == "ok" and r["arch"] in refs:
            r["x_ref"] = r["model_steps_per_s"] / refs[r["arch"]]
    return {"rows": rows, "steps": steps}


def measure_concurrency(device: str, variant: str, quick: bool, deadline: float) -> dict:
    """Aggregate model-steps/s of n processes training the same small-architecture pack at once."""
    out = {}
    for n in CONCURRENCY[:2] if quick else CONCURRENCY:
        if deadline - time.monotonic() < 20:
            break
        with tempfile.TemporaryDirectory() as tmp:
            job = {"concurrent": True, "arch": "small", "pack": 8 if quick else 24, "steps": 12 if quick else 60,
                   "device": device, "variant": variant, "n": n, "ready": str(Path(tmp) / "ready")}
            cmd = [sys.executable, "-m", "harness.gpucheck", "--worker", json.dumps(job)]
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
            try:
                outs = [p.communicate(timeout=max(10, deadline - time.monotonic()))[0] for p in procs]
                out[n] = sum(json.loads(o.strip().splitlines()[-1])["model_steps_per_s"] for o in outs)
            except Exception as e:
                for p in procs:
                    p.kill()
                out[n] = None
                out[f"error_{n}"] = one_line(e)
    return out


# --- projection ------------------------------------------------------------------------------------

def projection(throughput: dict, correctness: dict, concurrency: dict, kind: str) -> dict:
    """Hours for Table 1 with the fastest variant that passed correctness (and its pack sizes)."""
    passed = [v for v, ok in correctness.get("variants_passed", {}).items() if ok]
    best = None
    for v in passed:
        rows = [r for r in throughput["rows"] if r["variant"] == v and r.get("status") == "ok"]
        points = [(r["pack"] * flops_per_step(throughput_configs(r["arch"], 1, 1)[0]),
                   r["pack"] / r["model_steps_per_s"]) for r in rows]
        if not points:
            continue
        from harness.costmodel import fit_step_time
        a, r = fit_step_time(points) if len(points) > 1 else (0.0, points[0][0] / points[0][1])
        rates = Rates(kind, step_overhead_s=a, flops_per_s=r, score_s_per_sample=0.0, trial_overhead_s=1.0,
                      measured=f"harness.gpucheck, variant {v}")
        mean_rate = sum(x["model_steps_per_s"] for x in rows) / len(rows)
        if best is None or mean_rate > best[2]:
            best = (v, rates, mean_rate)
    if best is None:
        return {"ok": False, "error": "no speed variant passed correctness with throughput measured"}
    variant, rates, _ = best
    scaling = {n: s for n, s in concurrency.items() if isinstance(n, int) and s}
    base = scaling.get(1)
    speedups = {n: s / base for n, s in scaling.items()} if base else {1: 1.0}
    slots = max(speedups, key=lambda n: speedups[n] / n >= 0.8 and speedups[n] or 0)  # worthwhile concurrency
    packs = table1_packs(24)                                  # every pack holds one architecture's configs
    one = project(packs, rates, 1)
    hours = one / speedups.get(slots, 1.0) / 3600
    return {"ok": True, "variant": variant, "pack_size": "24 GAN / 2 EBGAN (one architecture's configs per seed)",
            "concurrency": slots, "concurrency_speedup": speedups.get(slots, 1.0), "hours": hours,
            "hours_one_at_a_time": one / 3600, "fitted": asdict(rates),
            "note": "training steps and an assumed 1 s per trial; scoring (35,000 samples per run over 25 epochs) is not measured here and not included: the slice's wall time shows what it adds"}


# --- slice -----------------------------------------------------------------------------------------

def run_slice(out: Path, device: str, data_dir: str, quick: bool, deadline: float) -> dict:
    """Three Table 1 architectures, all their configs, short runs, through the local executor; the report."""
    import yaml
    from harness import report, sweep
    table1 = yaml.safe_load((REPO / "grids" / "mnist_table1.yaml").read_text())
    table1["name"] = "gpucheck_slice"
    table1["settings"].update(epochs=1 if quick else 2, trainImages=640 if quick else 12800,
                              scoreSamples=500 if quick else 2000, epochScoreSamples=200 if quick else 500)
    archs = [ARCHS["small"]] if quick else list(ARCHS.values())
    table1["families"] = {name: [{**fam, "nLayerG": [g], "nLayerD": [d], "sizeG": [sg], "sizeD": [sd]}
                                 for g, d, sg, sd in archs] for name, fam in table1["families"].items()}
    if quick:  # a CPU can afford a few tiny configs only
        for entries in table1["families"].values():
            for e in entries:
                e.update(sizeG=[16], sizeD=[8], lr=e["lr"][:1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.yaml"
        path.write_text(yaml.safe_dump(table1, sort_keys=False))
        argv = [str(path), "--results", tmp, "--executor", "local", "--data-dir", data_dir,
                "--gpus-per-trial", "0" if device == "cpu" else "1"]
        t = time.monotonic()
        grid = sweep.load_grid(path)
        code = sweep.run_sweep(grid, sweep.parse_args(argv), argv)
        wall = time.monotonic() - t
        from harness.results import ResultsTable
        df = ResultsTable(Path(tmp) / grid.name).df
        report.write_report(Path(tmp) / grid.name, Path(tmp) / "report")
        shutil.copy(Path(tmp) / "report" / "index.html", out / "report.html")
    return {"ok": code == 0, "exit": code, "configs": len(grid.configs), "rows": len(df),
            "statuses": df["status"].value_counts().to_dict(), "wall_s": wall,
            "best_Iprime": df.groupby("model")["Iprime"].max().round(3).to_dict(), "report": "report.html"}


# --- the check -------------------------------------------------------------------------------------

def one_line(e: BaseException) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"


def write_outputs(out: Path, result: dict) -> None:
    from harness.atomic import write_atomic
    write_atomic(out / "gpucheck.json", json.dumps(result, indent=1, default=str))
    write_atomic(out / "gpucheck.md", markdown(result))


def markdown(r: dict) -> str:
    m = r.get("meta", {})
    lines = [f"# gpucheck: {m.get('device_name', '?')}", "",
             f"torch {m.get('torch')}, device {m.get('device')}{' (quick)' if m.get('quick') else ''}; "
             f"{m.get('wall_s', 0):.0f} s", ""]
    c = r.get("correctness", {})
    lines += [f"## Correctness: {'PASS' if c.get('ok') else 'FAIL'}", ""]
    if "error" in c:
        lines.append(f"error: {c['error']}")
    for v, ok in c.get("variants_passed", {}).items():
        lines.append(f"- {v}: {'pass' if ok else 'FAIL'}")
    failed = [x for x in c.get("checks", []) if not x.get("ok")]
    for x in failed[:20]:
        lines.append(f"  - FAIL {x['check']}: max rel loss diff {x.get('max_rel_loss_diff', float('nan')):.2e}, "
                     f"I' {x.get('Iprime', float('nan')):.3f} vs {x.get('ref_Iprime', float('nan')):.3f}"
                     f"{', ' + x['error'] if 'error' in x else ''}")
    worst = {}
    for x in c.get("checks", []):
        if "max_rel_loss_diff" in x:
            worst[x["variant"]] = max(worst.get(x["variant"], 0.0), x["max_rel_loss_diff"])
    if worst:
        lines.append("- worst relative loss difference over the first steps: "
                     + ", ".join(f"{v} {w:.1e}" for v, w in worst.items()))
    t = r.get("throughput", {})
    lines += ["", "## Throughput (model-steps/s)", "", "| arch | variant | pack | model-steps/s | x ref | peak MiB | GPU % | status |",
              "|---|---|---|---|---|---|---|---|"]
    for x in t.get("rows", []):
        lines.append(f"| {x['arch']} | {x['variant']} | {x['pack']} | {x.get('model_steps_per_s', float('nan')):.1f} | "
                     f"{x.get('x_ref', float('nan')):.1f} | {_num(x.get('peak_MiB'))} | {_num(x.get('gpu_util_pct'))} | "
                     f"{x['status']}{': ' + x['error'] if x.get('error') else ''} |")
    if t.get("concurrency"):
        lines.append(f"\nconcurrent processes (small arch, aggregate model-steps/s): {t['concurrency']}")
    p = r.get("projection", {})
    lines += ["", "## Projection: Table 1 on this device", ""]
    if p.get("ok"):
        lines.append(f"**{p['hours']:.2f} hours** with variant {p['variant']}, packs of {p['pack_size']}, "
                     f"{p['concurrency']} in flight ({p['concurrency_speedup']:.2f}x one); one at a time "
                     f"{p['hours_one_at_a_time']:.2f} h. Fitted: step overhead {p['fitted']['step_overhead_s'] * 1e3:.3f} ms, "
                     f"{p['fitted']['flops_per_s'] / 1e12:.1f} TFLOP/s. {p['note']}.")
    else:
        lines.append(f"not available: {p.get('error', 'not run')}")
    s = r.get("slice", {})
    lines += ["", "## Slice", ""]
    lines.append(f"{s.get('rows', 0)}/{s.get('configs', 0)} rows, statuses {s.get('statuses')}, "
                 f"{s.get('wall_s', 0):.0f} s, best I' {s.get('best_Iprime')}; report: {s.get('report')}"
                 if "error" not in s else f"error: {s['error']}")
    return "\n".join(lines) + "\n"


def _num(x) -> str:
    return "" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.gpucheck", description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", help="folder for gpucheck.json, gpucheck.md and report.html")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else the cache)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true", help="small everything (the CPU test of the check itself)")
    p.add_argument("--budget", type=float, default=450, help="seconds for the whole check (default 450)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(concurrency_worker(job) if job.get("concurrent") else throughput_worker(job)))
        return 0
    if not args.out:
        p.error("OUT_DIR is required")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here; run with --device cpu (and --quick) to check the logic", file=sys.stderr)
        return 2
    from harness.data import DataError, resolve_data_dir
    try:
        data_dir = str(resolve_data_dir(args.data_dir))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    end = t0 + args.budget
    device = torch.device(args.device)
    variants = [v for v in VARIANTS if args.device == "cuda" or v in CPU_VARIANTS]
    if args.quick:
        variants = variants[:1]
    result: dict = {"meta": {"device": args.device, "device_name": device_name(args.device), "torch": torch.__version__,
                             "quick": args.quick, "budget_s": args.budget, "variants": variants}}
    # phases, each with a share of what is left of the budget; results written after each
    phases = [("correctness", 0.25, lambda d: check_correctness(device, data_dir, variants, args.quick, d)),
              ("throughput", 0.6, lambda d: measure_throughput(args.device, variants, args.quick, d)),
              ("slice", 1.0, lambda d: run_slice(out, args.device, data_dir, args.quick, d))]
    for name, share, phase in phases:
        left = end - time.monotonic()
        print(f"gpucheck: {name} ({fmt_duration(left)} left)", flush=True)
        try:
            result[name] = phase(time.monotonic() + share * left)
        except Exception as e:
            result[name] = {"ok": False, "error": one_line(e)}
        result["meta"][f"{name}_s"] = round(time.monotonic() - (end - left), 1)
        if name == "throughput" and "rows" in result[name]:
            passed = [v for v, ok in result.get("correctness", {}).get("variants_passed", {}).items() if ok]
            fastest = max(passed, default="fp32", key=lambda v: max(
                (r.get("model_steps_per_s", 0) for r in result[name]["rows"] if r["variant"] == v), default=0))
            result[name]["concurrency"] = measure_concurrency(args.device, fastest, args.quick,
                                                              time.monotonic() + 0.15 * (end - time.monotonic()))
            result["projection"] = projection(result[name], result.get("correctness", {}), result[name]["concurrency"],
                                              "cuda" if args.device == "cuda" else "cpu")
        result["meta"]["wall_s"] = time.monotonic() - t0
        write_outputs(out, result)
    files = [f for f in out.iterdir() if f.is_file()]
    print(markdown(result))
    print(f"gpucheck: {len(files)} files in {out} ({sum(f.stat().st_size for f in files) / 2**20:.1f} MB), "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return 0 if result.get("correctness", {}).get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
