"""The one-shot GPU check: is the packed engine right on this device, how fast is it, what does
that make of Table 1, and does a real slice of Table 1 run end to end? One command, no Ray, no
internet, three small files.

    PYTHONPATH=. python3 -m harness.gpucheck OUT_DIR --data-dir DIR      # on a GPU box
    python -m harness.gpucheck OUT_DIR --device cpu                      # every CPU variant, on a CPU
    python -m harness.gpucheck OUT_DIR --device cpu --quick              # its logic, smallest

OUT_DIR gets gpucheck.json (sections correctness, throughput, projection, slice), gpucheck.md
(the same, to read) and report.html (the slice's report page, self-contained). Both are
rewritten after every phase, and a SIGTERM or Ctrl-C stops the work at the next training step
and still writes them: a run cut short keeps everything it finished.

Time: the whole check fits `--budget-s` (default 450 s on CUDA, 280 s on CPU). Each phase gets a
share of what is left; within a phase each job gets the time left over the jobs left; a job
that runs out of time keeps what it finished, and what it did not reach is `skipped`, never a
failure.

- correctness: packs against the reference trainer on this device, same seeds: every packable
  family (GAN, EBGAN, EBGAN-PT, LSGAN, WGAN-GP, BEGAN), Adam and SGD; a member with a huge lr
  diverges and is frozen while its pack-mates train on. A member passes when its losses stay
  within the variant's tolerance over the first TIGHT_STEPS steps (before rounding drift can
  grow), its status is its reference run's, and its final I' is within IPRIME_TOL of it (see
  `compare`). Each check is {family, model, optimizer, seed, variant, status: pass | fail |
  skipped, reason}; a variant that cannot apply (torch.compile with a double backward) is
  skipped with its reason. `correctness.ok` counts passes and failures only.
- throughput: the reference trainer and packs of 8, 24, 48, 96 (those that fit) for the
  smallest, a middle and the largest Table 1 architecture, every speed variant; each
  (architecture, variant) in its own process, which reports each pack size as it finishes it;
  timings synchronize the device; peak memory, GPU utilization, and compile's graphs and graph
  breaks.
- projection: hours for the whole Table 1 on this device with the fastest variant that passed
  correctness, and the packs in flight at once that pay (measured with concurrent processes).
- slice: a real Table 1 slice through the sweep's local executor until its deadline, then the
  report on the rows it has.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch

from harness.config import TrainConfig
from harness.costmodel import Rates, fit_step_time, flops_per_step, fmt_duration, project
from harness.measure import (ARCHS, REPO, emit, free_memory, pack_configs, pack_memory_estimate, run_worker,
                             run_workers, start_together, table1_packs, table1_variant, time_steps, write_grid)
from harness.packed import Speed, SpeedUnsupported, compile_counts
from harness.provenance import device_name
from harness.train import Stopped, TrainResult

# Speed variants of the packed engine (harness.packed.Speed): name -> its switches.
# In the order they are checked and measured: what the projection most likely rests on first,
# each graph variant after its eager twin, torch.compile (minutes of compiling) last.
VARIANTS = {
    "fp32": {},
    "graph": {"graph": True},
    "tf32": {"tf32": True},
    "graph+tf32": {"graph": True, "tf32": True},
    "bf16": {"bf16": True},
    "compile": {"compile": True},
}
CPU_VARIANTS = ("fp32", "bf16", "compile")      # TF32 and CUDA graphs are CUDA's
DEFAULT_BUDGET_S = {"cuda": 450.0, "cpu": 280.0}

# The comparator. A pack member is held against its reference run (same config, same seed, the
# reference trainer, this device). Two errors must be told apart:
# - rounding drift: a CUDA pack's batched matmuls round unlike the reference's plain ones
#   (~1e-7 relative at the first step), and Adam turns that into whole steps of lr x sign(g) for
#   gradients near 0: a reference run whose initial weights are nudged by one ulp
#   (`python -m harness.gpucheck --drift`) stays within 2e-7 of its losses at the first step and
#   1e-3 for 3 steps, leaves a 1% band from step 4 on (LSGAN, Adam), and its final I' after 60
#   steps moves by up to 1.5;
# - a bug (a wrong setting, a member's loss without its dropout): visible from the first steps
#   (dropout at initialization, with D's weights near 0, moves GAN's first loss by 1e-4 only).
# So losses are compared step by step over the first TIGHT_STEPS steps only: at the first step
# (no update yet: the forward passes' rounding alone) within FIRST_RTOL, then within LOSS_RTOL
# (TF32 and bf16 round matmul inputs to 10 and 7 mantissa bits: looser); after that a member
# must end as its reference run ended (ok or diverged), with its final I' within IPRIME_TOL: a
# coarse bound, above the drift, that catches a run that finished but learned something else.
# A CUDA graph replays from step GraphedSteps.WARMUP + 1 on, past the tight window: a graph pack
# is also held against the same pack run eagerly (the same kernels) through its first replays.
TIGHT_STEPS = 3
FIRST_RTOL = {"fp32": 1e-5, "graph": 1e-5, "compile": 1e-5, "tf32": 5e-3, "graph+tf32": 5e-3, "bf16": 5e-2}
FIRST_ATOL = 1e-7
LOSS_RTOL = {"fp32": 1e-2, "graph": 1e-2, "compile": 1e-2, "tf32": 5e-2, "graph+tf32": 5e-2, "bf16": 1e-1}
LOSS_ATOL = 1e-3
IPRIME_TOL = 2.0
EAGER_TWIN = {"graph": "fp32", "graph+tf32": "tf32"}   # a graph variant's eager twin
PACK_SIZES = (8, 24, 48, 96)
CONCURRENCY = (1, 2, 4)
TIMED_STEPS = {"small": 40, "middle": 20, "large": 10}
REPORT_S = 30.0   # what the slice keeps of its time for its report


# --- correctness -----------------------------------------------------------------------------------

CHECK_GRID = REPO / "grids" / "gpucheck.yaml"
HUGE_LR = 1e5   # a member of grids/gpucheck.yaml with a learning rate above this must diverge


def correctness_packs(device: torch.device, quick: bool) -> list[list[TrainConfig]]:
    """grids/gpucheck.yaml's configs, one pack per shape (per family). On a CPU the widths and
    runs shrink (32/16 units, 30 steps); --quick keeps one seed."""
    from harness.grid import load_grid
    from harness.sweep import make_packs
    configs = load_grid(CHECK_GRID).configs
    if device.type == "cpu":
        configs = [replace(c, sizeG=32, sizeD=16, trainImages=640, scoreSamples=500, epochScoreSamples=200)
                   for c in configs]
    if quick:
        configs = [c for c in configs if c.seed == 0]
    return make_packs(configs, pack_size=len(configs))


def compare(member: TrainResult, ref: TrainResult, variant: str, steps: int = TIGHT_STEPS,
            final: bool = True) -> dict:
    """Whether a pack member is its reference run up to rounding (see TIGHT_STEPS above): a
    status, the reason when it fails, and the distances. final=False: the first `steps` steps only."""
    n = min(steps, len(ref.lossHistory), len(member.lossHistory))
    got = torch.tensor(member.lossHistory[:n], dtype=torch.float64).reshape(n, 2)
    want = torch.tensor(ref.lossHistory[:n], dtype=torch.float64).reshape(n, 2)
    both = torch.isfinite(got) & torch.isfinite(want)
    rtol = torch.tensor([FIRST_RTOL[variant]] + [LOSS_RTOL[variant]] * (n - 1), dtype=torch.float64)[:n, None]
    atol = torch.tensor([FIRST_ATOL] + [LOSS_ATOL] * (n - 1), dtype=torch.float64)[:n, None]
    allowed = atol + rtol * want.abs()
    excess = ((got - want).abs() - allowed).where(both, 0.0)
    rel = ((got - want).abs() / want.abs().clamp_min(1e-6)).where(both, 0.0)
    d_iprime = abs(member.Iprime - ref.Iprime) if member.status == ref.status == "ok" else math.nan
    out = {"steps_compared": n, "max_rel_loss_diff": float(rel.max()) if n else math.nan,
           "loss_diff_over_tolerance": float(((got - want).abs() / allowed).where(both, 0.0).max()) if n else math.nan,
           "Iprime": member.Iprime, "ref_Iprime": ref.Iprime, "Iprime_diff": d_iprime,
           "member_status": member.status, "ref_status": ref.status}
    bad = (excess > 0).nonzero()
    if not bool((torch.isfinite(got) == torch.isfinite(want)).all()):
        reason = "a loss is finite in one run and not in the other within the first steps"
    elif len(bad):
        step, which = (int(x) for x in bad[0])
        reason = (f"{'DG'[which]}'s loss at step {step + 1}: {float(got[step, which]):.7g} vs "
                  f"{float(want[step, which]):.7g} (tolerance {float(rtol[step]):g} relative + {float(atol[step]):g})")
    elif final and member.status != ref.status:
        reason = f"ended {member.status}, its reference run {ref.status}"
    elif final and ref.status == "ok" and not d_iprime <= IPRIME_TOL:
        reason = f"final I' {member.Iprime:.3f} vs the reference's {ref.Iprime:.3f} (tolerance {IPRIME_TOL:g})"
    else:
        return {**out, "status": "pass", "reason": ""}
    return {**out, "status": "fail", "reason": reason}


def compare_replays(member: TrainResult, eager: TrainResult, variant: str) -> dict:
    """A CUDA graph pack's member against the same member of the eager pack, through the
    graph's first TIGHT_STEPS replays."""
    from harness.packed import GraphedSteps
    row = compare(member, eager, variant, GraphedSteps.WARMUP + TIGHT_STEPS, final=False)
    if row["status"] == "fail":
        row["reason"] = f"graph replay vs the eager pack: {row['reason']}"
    return row


def check_row(cfg: TrainConfig, variant: str, status: str, reason: str, **extra) -> dict:
    return {"family": cfg.family, "model": cfg.model, "optimizer": f"{cfg.optimD}/{cfg.optimG}", "lr": cfg.lr,
            "seed": cfg.seed, "variant": variant, "status": status, "reason": reason, **extra}


def check_correctness(device: torch.device, data_dir: str | None, variants: list[str], quick: bool,
                      deadline: float, stop: Callable[[], bool]) -> dict:
    from harness.data import gan_training_set
    from harness.metrics import Scorer
    from harness.packed import train_pack
    from harness.train import train

    packs = correctness_packs(device, quick)
    data = gan_training_set(data_dir, max(p[0].trainImages for p in packs), device)
    scorer = Scorer(None, data_dir, device)
    refs: dict[TrainConfig, TrainResult] = {}
    eager: dict[tuple[str, TrainConfig], TrainResult] = {}   # (variant, config) -> member, for graph variants
    checks = []
    for variant in variants:          # VARIANTS' order: a graph variant after its eager twin
        for pack in packs:
            try:
                Speed(**VARIANTS[variant]).check(device, pack[0].spec)
                if stop() or time.monotonic() > deadline:
                    raise Stopped("out of time" if not stop() else "stopped")
                for cfg in pack:   # the reference runs, each once, when first needed
                    if cfg not in refs:
                        refs[cfg] = train(cfg, data, scorer, None, device, record_losses=True, stop=stop)
                t = time.monotonic()
                members = train_pack(pack, data, scorer, None, device, record_losses=True,
                                     speed=Speed(**VARIANTS[variant]), stop=stop)
                pack_s = round(time.monotonic() - t, 1)
            except SpeedUnsupported as e:
                checks += [check_row(cfg, variant, "skipped", str(e)) for cfg in pack]
                continue
            except Stopped:
                checks += [check_row(cfg, variant, "skipped", "stopped" if stop() else "out of time") for cfg in pack]
                continue
            except Exception as e:  # a variant that crashes is a failed check, not the end
                checks += [check_row(cfg, variant, "fail", one_line(e)) for cfg in pack]
                continue
            for cfg, member in zip(pack, members):
                eager[variant, cfg] = member
                row = compare(member, refs[cfg], variant)
                twin = eager.get((EAGER_TWIN.get(variant, ""), cfg))
                if row["status"] == "pass" and twin is not None:
                    replays = compare_replays(member, twin, variant)
                    row.update(status=replays["status"], reason=replays["reason"],
                               replay_rel_loss_diff=replays["max_rel_loss_diff"])
                if cfg.lr >= HUGE_LR:  # the huge-lr member: diverged and frozen, its mates the other rows
                    ok = member.status == "diverged" and refs[cfg].status == "diverged"
                    row.update(status="pass" if ok else "fail",
                               reason="" if ok else f"the huge-lr member ended {member.status}, not diverged")
                    row["huge_lr"] = True
                checks.append(check_row(cfg, variant, row.pop("status"), row.pop("reason"), pack_s=pack_s, **row))
    return summarize_checks(checks, variants)


def summarize_checks(checks: list[dict], variants: list[str]) -> dict:
    """correctness.ok: some check passed and none failed; skipped checks count for neither."""
    def verdict(rows: list[dict]) -> str:
        if any(r["status"] == "fail" for r in rows):
            return "fail"
        return "pass" if any(r["status"] == "pass" for r in rows) else "skipped"
    by_variant = {v: verdict([c for c in checks if c["variant"] == v]) for v in variants}
    return {"ok": verdict(checks) == "pass", "variants": by_variant,
            "counts": {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "skipped")},
            "tolerances": {"tight_steps": TIGHT_STEPS, "first_rtol": FIRST_RTOL, "first_atol": FIRST_ATOL,
                           "loss_rtol": LOSS_RTOL, "loss_atol": LOSS_ATOL,
                           "Iprime_abs": IPRIME_TOL}, "checks": checks}


# --- rounding drift: how far a one-ulp nudge takes a reference run (--drift) -------------------------

def nudged_reference(cfg: TrainConfig, device: torch.device, direction: int = 1):
    """The reference trainer's backend with every initial weight moved by one ulp (towards +inf,
    or -inf with direction -1): a run that differs from the reference by rounding only."""
    from harness.train import Reference
    backend = Reference(cfg, device)
    with torch.no_grad():
        for p in [*backend.G.parameters(), *backend.D.parameters()]:
            p.copy_(torch.nextafter(p, torch.full_like(p, direction * math.inf)))
    return backend


def nudged_run(cfg: TrainConfig, data: torch.Tensor, scorer, device: torch.device, direction: int = 1) -> TrainResult:
    from harness.train import run
    return run(lambda: nudged_reference(cfg, device, direction), [cfg], data, scorer, None, device,
               record_losses=True)[0]


def drift_table(device: torch.device, data_dir: str | None, quick: bool) -> list[dict]:
    """For every config of the correctness packs (seed 0): its reference run against two runs
    nudged by one ulp, up and down: the largest relative loss difference at each of the first 6
    steps, and the final I' of each. What TIGHT_STEPS and IPRIME_TOL are set from."""
    from harness.data import gan_training_set
    from harness.metrics import Scorer
    from harness.train import train
    configs = [c for p in correctness_packs(device, quick) for c in p if c.seed == 0]
    data = gan_training_set(data_dir, configs[0].trainImages, device)
    scorer = Scorer(None, data_dir, device)
    rows = []
    for cfg in configs:
        ref = train(cfg, data, scorer, None, device, record_losses=True)
        twins = [nudged_run(cfg, data, scorer, device, d) for d in (1, -1)]
        rel = [max(compare(t, ref, "fp32", steps=k + 1, final=False)["max_rel_loss_diff"] for t in twins)
               for k in range(6)]
        rows.append({"model": cfg.model, "optimizer": f"{cfg.optimD}/{cfg.optimG}", "lr": cfg.lr,
                     "rel_by_step": rel, "Iprime": ref.Iprime, "twin_Iprime": [t.Iprime for t in twins]})
        print(f"{cfg.model:9} {cfg.optimD}/{cfg.optimG} lr {cfg.lr:g}: max relative loss difference by step "
              + " ".join(f"{x:.0e}" for x in rel) + f"; final I' {ref.Iprime:.3f}, nudged "
              + ", ".join(f"{t.Iprime:.3f}" for t in twins), flush=True)
    return rows


# --- throughput ------------------------------------------------------------------------------------

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


def throughput_worker(job: dict) -> None:
    """In its own process, one variant (or the reference trainer) for every architecture of the
    job at each pack size, ascending; one JSON line per (architecture, pack size) as it finishes
    (harness.measure.emit), so a worker stopped at its time limit keeps what it measured."""
    from harness.train import pick_device
    device = pick_device(job["device"])
    if device.type == "cpu":
        torch.set_num_threads(1)
    variant = job["variant"]
    speed = Speed(**VARIANTS["fp32" if variant == "reference" else variant])
    for K in job["sizes"]:            # every architecture at a size before the next size
        for arch in job["archs"]:
            row = {"arch": arch, "variant": variant, "pack": K}
            need, free = pack_memory_estimate(arch, K), free_memory(device)
            if need > 0.8 * free:
                emit({**row, "status": "skipped", "error": f"does not fit: needs ~{need / 2**30:.1f} GiB, "
                                                            f"{free / 2**30:.1f} GiB free"})
                continue
            try:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                with UtilizationSampler(device.type == "cuda") as util:
                    seconds = time_steps(pack_configs(arch, K, 1), TIMED_STEPS[arch], device, speed)
                peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
                emit({**row, "status": "ok", "model_steps_per_s": K / seconds,
                      "peak_MiB": peak / 2**20 if peak is not None else None, "gpu_util_pct": util.mean(),
                      **(compile_counts() if speed.compile else {})})
            except Exception as e:
                emit({**row, "status": "failed", "error": one_line(e)})
                if "out of memory" in str(e).lower():
                    break


def concurrency_worker(job: dict) -> None:
    """One of several processes timing the same pack at once (started together by a file barrier)."""
    from harness.train import pick_device
    device = pick_device(job["device"])
    speed = Speed(**VARIANTS[job["variant"]])
    time_steps(pack_configs(job["arch"], job["pack"], 1), 2, device, speed)   # warm up, then start together
    start_together(job["ready"], job["n"])
    emit({"model_steps_per_s": job["pack"] / time_steps(pack_configs(job["arch"], job["pack"], 1),
                                                        job["steps"], device, speed)})


def measure_throughput(device: str, variants: list[str], quick: bool, deadline: float,
                       stop: Callable[[], bool]) -> dict:
    """Every (architecture, variant, pack size): one worker per variant, each capped at the time
    left over the workers left (a worker that finishes early leaves its time to the next)."""
    archs = ["small"] if quick else list(ARCHS)
    sizes = [8] if quick else list(PACK_SIZES)
    jobs = [("reference", [1])] + [(v, sizes) for v in variants]
    rows = []
    for i, (variant, ks) in enumerate(jobs):
        cap = (deadline - time.monotonic()) / (len(jobs) - i)
        got, error = ([], "out of time") if cap < 5 or stop() else run_worker(
            "harness.gpucheck", {"throughput": True, "archs": archs, "device": device, "variant": variant,
                                 "sizes": ks}, cap, stop)
        done = {(r["arch"], r["pack"]): r for r in got}
        for arch in archs:
            for K in ks:
                if (arch, K) in done:
                    rows.append(done[arch, K])
                elif error and ("out of time" in error or error == "stopped"):
                    rows.append({"arch": arch, "variant": variant, "pack": K, "status": "skipped", "error": error})
                else:
                    rows.append({"arch": arch, "variant": variant, "pack": K, "status": "failed",
                                 "error": error or "the worker ended without measuring it"})
    refs = {r["arch"]: r["model_steps_per_s"] for r in rows if r["variant"] == "reference" and r["status"] == "ok"}
    for r in rows:
        if r["status"] == "ok" and r["arch"] in refs:
            r["x_ref"] = r["model_steps_per_s"] / refs[r["arch"]]
    return {"rows": rows, "timed_steps": TIMED_STEPS}


def measure_concurrency(device: str, variant: str, quick: bool, deadline: float, stop: Callable[[], bool]) -> dict:
    """Aggregate model-steps/s of n processes training the same small-architecture pack at once."""
    out: dict = {}
    counts = CONCURRENCY[:2] if quick else CONCURRENCY
    for i, n in enumerate(counts):
        cap = (deadline - time.monotonic()) / (len(counts) - i)
        if cap < 10 or stop():
            out[f"error_{n}"] = "skipped: out of time" if not stop() else "stopped"
            continue
        with tempfile.TemporaryDirectory() as tmp:
            job = {"concurrent": True, "arch": "small", "pack": 8 if quick else 24, "steps": 12 if quick else 60,
                   "device": device, "variant": variant, "n": n, "ready": str(Path(tmp) / "ready")}
            results = run_workers("harness.gpucheck", [job] * n, cap, stop)
        if all(lines for lines, _ in results):
            out[n] = sum(lines[-1]["model_steps_per_s"] for lines, _ in results)
        else:
            out[f"error_{n}"] = next((e for _, e in results if e), "no measurement")
    return out


# --- projection ------------------------------------------------------------------------------------

def projection(throughput: dict, correctness: dict, concurrency: dict, kind: str) -> dict:
    """Hours for Table 1 with the fastest variant that passed correctness: each such variant's
    rates fitted to its measured packs, Table 1 projected with them, the fewest hours taken among
    the variants measured on the most architectures (a variant measured on the smallest one only
    cannot speak for the others)."""
    passed = [v for v, verdict in correctness.get("variants", {}).items() if verdict == "pass"]
    fits = {}
    for v in passed:
        rows = [r for r in throughput["rows"] if r["variant"] == v and r["status"] == "ok"]
        points = [(r["pack"] * flops_per_step(pack_configs(r["arch"], 1, 1)[0]), r["pack"] / r["model_steps_per_s"])
                  for r in rows]
        if not points:
            continue
        a, r = fit_step_time(points) if len(points) > 1 else (0.0, points[0][0] / points[0][1])
        rates = Rates(kind, step_overhead_s=a, flops_per_s=r, score_s_per_sample=0.0, trial_overhead_s=1.0,
                      measured=f"harness.gpucheck, variant {v}")
        fits[v] = (len({r["arch"] for r in rows}), rates)
    if not fits:
        return {"ok": False, "error": "no speed variant passed correctness with throughput measured"}
    packs = table1_packs(24)                                  # every pack holds one architecture's configs
    widest = max(n for n, _ in fits.values())
    hours_by = {v: project(packs, rates, 1) / 3600 for v, (n, rates) in fits.items() if n == widest}
    variant = min(hours_by, key=hours_by.get)
    rates = fits[variant][1]
    scaling = {n: s for n, s in concurrency.items() if isinstance(n, int) and s}
    base = scaling.get(1)
    speedups = {n: s / base for n, s in scaling.items()} if base else {1: 1.0}
    slots = max(speedups, key=lambda n: speedups[n] / n >= 0.8 and speedups[n] or 0)  # worthwhile concurrency
    one = project(packs, rates, 1)
    hours = one / speedups.get(slots, 1.0) / 3600
    return {"ok": True, "variant": variant, "pack_size": "24 GAN / 2 EBGAN (one architecture's configs per seed)",
            "concurrency": slots, "concurrency_speedup": speedups.get(slots, 1.0), "hours": hours,
            "hours_one_at_a_time": one / 3600, "fitted": asdict(rates),
            "hours_by_variant": {v: round(h, 2) for v, h in hours_by.items()},
            "note": "training steps and an assumed 1 s per trial; scoring (35,000 samples per run over 25 epochs) "
                    "is not measured here and not included: the slice's wall time shows what it adds"}


# --- slice -----------------------------------------------------------------------------------------

def slice_grid(device: str, quick: bool) -> dict:
    """Table 1's three measured architectures, all their configs, one short epoch each; on a CPU
    (or with --quick) one tiny architecture, one learning rate."""
    quick = quick or device == "cpu"
    settings = dict(epochs=1, trainImages=640 if quick else 6400,
                    scoreSamples=500 if quick else 2000, epochScoreSamples=200 if quick else 500)
    archs = [ARCHS["small"]] if quick else list(ARCHS.values())

    def rewrite(entry: dict) -> dict:
        entry.update(nLayerG=[a[0] for a in archs], nLayerD=[a[1] for a in archs])
        entry.update(sizeG=[a[2] for a in archs], sizeD=[a[3] for a in archs])
        if quick:   # a CPU can afford a few tiny configs only
            entry.update(sizeG=[16], sizeD=[8], lr=entry["lr"][:1])
        return entry
    grid = table1_variant("gpucheck_slice", settings, rewrite)
    if not quick:   # the architectures as listed, not their product
        grid["families"] = {name: [{**e, "nLayerG": [g], "nLayerD": [d], "sizeG": [sg], "sizeD": [sd]}
                                   for e in entries for g, d, sg, sd in archs]
                            for name, entries in grid["families"].items()}
    return grid


def run_slice(out: Path, device: str, data_dir: str, quick: bool, deadline: float,
              stop: Callable[[], bool]) -> dict:
    """The slice through the local executor, stopped at `deadline` less REPORT_S; the report on what it has."""
    from harness import report, sweep
    from harness.results import ResultsTable
    with tempfile.TemporaryDirectory() as tmp:
        path = write_grid(slice_grid(device, quick), Path(tmp))
        argv = [str(path), "--results", tmp, "--executor", "local", "--data-dir", data_dir,
                "--gpus-per-trial", "0" if device == "cpu" else "1"]
        t = time.monotonic()
        grid = sweep.load_grid(path)
        stop_at = deadline - REPORT_S
        code = sweep.run_sweep(grid, sweep.parse_args(argv), argv,
                               stop=lambda: stop() or time.monotonic() > stop_at)
        wall = time.monotonic() - t
        df = ResultsTable(Path(tmp) / grid.name).df
        if not df.empty:
            report.write_report(Path(tmp) / grid.name, Path(tmp) / "report")
            shutil.copy(Path(tmp) / "report" / "index.html", out / "report.html")
    finished = code == 0
    return {"ok": finished, "exit": code, "configs": len(grid.configs), "rows": len(df),
            "stopped": None if finished else ("stopped" if stop() else "at its deadline" if code == 130 else None),
            "statuses": df["status"].value_counts().to_dict() if len(df) else {}, "wall_s": wall,
            "best_Iprime": df.groupby("model")["Iprime"].max().round(3).to_dict() if len(df) else {},
            "report": "report.html" if len(df) else None}


# --- the check -------------------------------------------------------------------------------------

def one_line(e: BaseException) -> str:
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"


def write_outputs(out: Path, result: dict) -> None:
    from harness.atomic import write_atomic
    write_atomic(out / "gpucheck.json", json.dumps(result, indent=1, default=str))
    write_atomic(out / "gpucheck.md", markdown(result))


def markdown(r: dict) -> str:
    m = r.get("meta", {})
    lines = [f"# gpucheck: {m.get('device_name', '?')}", "",
             f"torch {m.get('torch')}, device {m.get('device')}{' (quick)' if m.get('quick') else ''}; "
             f"{m.get('wall_s', 0):.0f} s of a {m.get('budget_s', 0):.0f} s budget"
             f"{'; STOPPED by a signal' if m.get('stopped') else ''}", ""]
    lines += correctness_md(r.get("correctness", {}))
    lines += throughput_md(r.get("throughput", {}))
    lines += projection_md(r.get("projection", {}))
    s = r.get("slice", {})
    lines += ["", "## Slice", ""]
    lines.append(f"{s.get('rows', 0)}/{s.get('configs', 0)} rows{', stopped ' + s['stopped'] if s.get('stopped') else ''}, "
                 f"statuses {s.get('statuses')}, {s.get('wall_s', 0):.0f} s, best I' {s.get('best_Iprime')}; "
                 f"report: {s.get('report')}" if "error" not in s else f"error: {s['error']}")
    return "\n".join(lines) + "\n"


def correctness_md(c: dict) -> list[str]:
    counts = c.get("counts", {})
    lines = [f"## Correctness: {'PASS' if c.get('ok') else 'FAIL'} ({counts.get('pass', 0)} pass, "
             f"{counts.get('fail', 0)} fail, {counts.get('skipped', 0)} skipped)", ""]
    if "error" in c:
        lines.append(f"error: {c['error']}")
    checks = c.get("checks", [])
    for v, verdict in c.get("variants", {}).items():
        rows = [x for x in checks if x["variant"] == v and not x.get("huge_lr")]
        worst = max((x["loss_diff_over_tolerance"] for x in rows if "loss_diff_over_tolerance" in x), default=math.nan)
        d_i = max((x["Iprime_diff"] for x in rows if math.isfinite(x.get("Iprime_diff", math.nan))), default=math.nan)
        lines.append(f"- {v}: {verdict}; largest loss difference over the first {TIGHT_STEPS} steps {worst:.2f} "
                     f"of its tolerance, largest final |dI'| {d_i:.3f} (tolerance {IPRIME_TOL:g})")
        for reason in sorted({x["reason"] for x in rows if x["status"] == "skipped"}):
            lines.append(f"  - skipped: {reason}")
    for x in [x for x in checks if x["status"] == "fail"][:20]:
        lines.append(f"  - FAIL {x['variant']} {x['model']} {x['optimizer']} seed {x['seed']}: {x['reason']}")
    return lines


def throughput_md(t: dict) -> list[str]:
    lines = ["", "## Throughput (model-steps/s; timings synchronize the device)", "",
             "| arch | variant | pack | model-steps/s | x ref | peak MiB | GPU % | graphs / breaks | status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for x in t.get("rows", []):
        compiled = f"{x['graphs']} / {x['graph_breaks']}" if "graphs" in x else ""
        lines.append(f"| {x['arch']} | {x['variant']} | {x['pack']} | {x.get('model_steps_per_s', math.nan):.1f} | "
                     f"{x.get('x_ref', math.nan):.2f} | {_num(x.get('peak_MiB'))} | {_num(x.get('gpu_util_pct'))} | "
                     f"{compiled} | {x['status']}{': ' + x['error'] if x.get('error') else ''} |")
    if t.get("concurrency"):
        lines.append(f"\nconcurrent processes (small arch, aggregate model-steps/s): {t['concurrency']}")
    return lines


def projection_md(p: dict) -> list[str]:
    lines = ["", "## Projection: Table 1 on this device", ""]
    if p.get("ok"):
        lines.append(f"**{p['hours']:.2f} hours** with variant {p['variant']}, packs of {p['pack_size']}, "
                     f"{p['concurrency']} in flight ({p['concurrency_speedup']:.2f}x one); one at a time "
                     f"{p['hours_one_at_a_time']:.2f} h. Fitted: step overhead {p['fitted']['step_overhead_s'] * 1e3:.3f} ms, "
                     f"{p['fitted']['flops_per_s'] / 1e12:.2f} TFLOP/s. {p['note']}.")
    else:
        lines.append(f"not available: {p.get('error', 'not run')}")
    return lines


def _num(x) -> str:
    return "" if x is None else f"{x:.0f}"


def install_stop(stop: threading.Event) -> None:
    """SIGTERM / Ctrl-C: stop at the next training step, write the outputs; a second one quits."""
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"\n{signal.Signals(signum).name}: stopping at the next step; writing what is done",
              file=sys.stderr, flush=True)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_check(out: Path, device: torch.device, data_dir: str, quick: bool, budget: float, stop: threading.Event) -> dict:
    """The phases, each with a share of what is left of the budget; the outputs written after each."""
    t0 = time.monotonic()
    end = t0 + budget
    variants = [v for v in VARIANTS if device.type == "cuda" or v in CPU_VARIANTS]
    if quick:
        variants = variants[:1]
    halt = stop.is_set
    result: dict = {"meta": {"device": device.type, "device_name": device_name(device.type), "torch": torch.__version__,
                             "quick": quick, "budget_s": budget, "variants": variants}}

    def throughput(deadline: float) -> dict:
        start = time.monotonic()
        t = measure_throughput(device.type, variants, quick, start + 0.85 * (deadline - start), halt)
        fastest = projection(t, result.get("correctness", {}), {}, device.type).get("variant", "fp32")
        t["concurrency"] = measure_concurrency(device.type, fastest, quick, deadline, halt)
        result["projection"] = projection(t, result.get("correctness", {}), t["concurrency"], device.type)
        return t
    phases = [("correctness", 0.45, lambda d: check_correctness(device, data_dir, variants, quick, d, halt)),
              ("throughput", 0.6, throughput),
              ("slice", 1.0, lambda d: run_slice(out, device.type, data_dir, quick, d, halt))]
    for name, share, phase in phases:
        start = time.monotonic()
        print(f"gpucheck: {name} ({fmt_duration(end - start)} left)", flush=True)
        try:
            result[name] = phase(start + share * (end - start))
        except Exception as e:
            result[name] = {"ok": False, "error": one_line(e)}
        result["meta"][f"{name}_s"] = round(time.monotonic() - start, 1)
        result["meta"]["wall_s"] = time.monotonic() - t0
        result["meta"]["stopped"] = stop.is_set()
        write_outputs(out, result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.gpucheck", description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", help="folder for gpucheck.json, gpucheck.md and report.html")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else the cache)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true", help="small everything, fp32 only (the CPU test of the check itself)")
    p.add_argument("--budget-s", "--budget", dest="budget_s", type=float,
                   help=f"seconds for the whole check (default {DEFAULT_BUDGET_S['cuda']:.0f} on cuda, "
                        f"{DEFAULT_BUDGET_S['cpu']:.0f} on cpu)")
    p.add_argument("--drift", action="store_true",
                   help="instead: how far one-ulp nudges of the initial weights take each correctness config's "
                        "reference run on this device (what the comparator's tolerances rest on); OUT gets drift.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        if job.get("concurrent"):
            concurrency_worker(job)
        else:
            throughput_worker(job)
        return 0
    if not args.out:
        p.error("OUT_DIR is required")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("harness: gpucheck: no CUDA device here; fix: run with --device cpu to check the logic", file=sys.stderr)
        return 2
    from harness.data import DataError, resolve_data_dir
    try:
        data_dir = str(resolve_data_dir(args.data_dir))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.drift:
        rows = drift_table(torch.device(args.device), data_dir, args.quick)
        (out / "drift.json").write_text(json.dumps(rows, indent=1))
        return 0
    stop = threading.Event()
    install_stop(stop)
    t0 = time.monotonic()
    result = run_check(out, torch.device(args.device), data_dir, args.quick,
                       args.budget_s or DEFAULT_BUDGET_S[args.device], stop)
    files = [f for f in out.iterdir() if f.is_file()]
    print(markdown(result))
    print(f"gpucheck: {len(files)} files in {out} ({sum(f.stat().st_size for f in files) / 2**20:.1f} MB), "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    if stop.is_set():
        return 130
    return 0 if result.get("correctness", {}).get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
