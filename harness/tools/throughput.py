"""The GPU check's throughput: model-steps/s of the reference trainer and of packs of every speed
variant, each variant in a worker process that reports each (architecture, pack size) as it
finishes; packs in flight at once; and the projection of Table 1 from the variants that passed."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from harness.costmodel import Rates, fit_step_time, flops_per_step, project
from harness.engine import Speed
from harness.engine.cuda import compile_counts
from harness.tools.correctness import one_line
from harness.tools.measure import (
    ARCHS,
    emit,
    free_memory,
    pack_configs,
    pack_memory_estimate,
    run_worker,
    run_workers,
    start_together,
    table1_packs,
    time_steps,
)

PACK_SIZES = (8, 24, 48, 96)
CONCURRENCY = (1, 2, 4)
CONCURRENCY_MIN_S = 10.0   # what one concurrency measurement needs: processes started, warmed up, timed
TIMED_STEPS = {"small": 40, "middle": 20, "large": 10}


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
    (harness.tools.measure.emit), so a worker stopped at its time limit keeps what it measured.
    Out of memory ends the worker: every size and architecture after it is as large or larger,
    and each is reported `skipped` with the reason."""
    from harness.engine import pick_device
    device = pick_device(job["device"])
    if device.type == "cpu":
        torch.set_num_threads(1)
    variant = job["variant"]
    speed = Speed.parse("fp32" if variant == "reference" else variant)
    todo = [(arch, K) for K in job["sizes"] for arch in job["archs"]]   # every architecture at a size first
    for i, (arch, K) in enumerate(todo):
        row = {"arch": arch, "variant": variant, "pack": K}
        need, free = pack_memory_estimate(arch, K), free_memory(device)
        if need > 0.8 * free:
            emit({**row, "status": "skipped", "error": f"does not fit: needs ~{need / 2**30:.1f} GiB, "
                                                        f"{free / 2**30:.1f} GiB free"})
            continue
        try:
            emit({**row, "status": "ok", **measure_pack(arch, K, device, speed)})
        except Exception as e:
            emit({**row, "status": "failed", "error": one_line(e)})
            if out_of_memory(e):
                for a, k in todo[i + 1:]:
                    emit({"arch": a, "variant": variant, "pack": k, "status": "skipped",
                          "error": f"not tried: out of memory at {arch} pack {K}"})
                return


def measure_pack(arch: str, K: int, device: torch.device, speed: Speed) -> dict:
    """Model-steps/s of one pack (the reference trainer for K = 1), its peak memory and GPU
    utilization, and compile's graphs and graph breaks."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with UtilizationSampler(device.type == "cuda") as util:
        seconds = time_steps(pack_configs(arch, K, 1), TIMED_STEPS[arch], device, speed)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return {"model_steps_per_s": K / seconds, "peak_MiB": peak / 2**20 if peak is not None else None,
            "gpu_util_pct": util.mean(), **(compile_counts() if speed.compile else {})}


def out_of_memory(e: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(e, oom) or "out of memory" in str(e).lower()


def concurrency_worker(job: dict) -> None:
    """One of several processes timing the same pack at once (started together by a file barrier)."""
    from harness.engine import pick_device
    device = pick_device(job["device"])
    speed = Speed.parse(job["variant"])
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


def concurrency_reserve(span: float, quick: bool) -> float:
    """What the throughput phase keeps of its `span` seconds for measure_concurrency: a quarter,
    and at least CONCURRENCY_MIN_S per count measured, up to half the phase; nothing when half
    the phase cannot hold the base's minimum (the base then gets what the packs leave)."""
    counts = CONCURRENCY[:2] if quick else CONCURRENCY
    reserve = min(max(0.25 * span, CONCURRENCY_MIN_S * len(counts)), span / 2)
    return reserve if reserve >= CONCURRENCY_MIN_S else 0.0


def measure_concurrency(device: str, variant: str, quick: bool, deadline: float, stop: Callable[[], bool]) -> dict:
    """Aggregate model-steps/s of n processes training the same small-architecture pack at once.
    The base (1 process) comes first and takes at least CONCURRENCY_MIN_S where that is left: the
    others mean nothing without it, and are not measured when it fails."""
    out: dict = {}
    counts = CONCURRENCY[:2] if quick else CONCURRENCY
    for i, n in enumerate(counts):
        left = deadline - time.monotonic()
        cap = max(left / (len(counts) - i), min(left, CONCURRENCY_MIN_S) if n == 1 else 0.0)
        if stop() or cap < CONCURRENCY_MIN_S or (n > 1 and 1 not in out):
            out[f"error_{n}"] = ("stopped" if stop() else "skipped: out of time" if cap < CONCURRENCY_MIN_S
                                 else "skipped: no 1-process rate to compare with")
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

FIT_PARAMETERS = 2   # fit_step_time's: the step overhead and the FLOP/s


def step_times(throughput: dict, variant: str) -> dict[tuple[str, int], float]:
    """Seconds per pack step of `variant` at each (architecture, pack size) it was measured at."""
    return {(r["arch"], r["pack"]): r["pack"] / r["model_steps_per_s"] for r in throughput["rows"]
            if r["variant"] == variant and r["status"] == "ok"}


def fit_variant(times: dict[tuple[str, int], float], kind: str, variant: str) -> tuple[Rates, dict]:
    """The variant's rates fitted to its step times (FIT_PARAMETERS or more points), and how well
    they fit: each point's relative residual, fitted / measured - 1, and the largest in size. With
    as many points as parameters the fit passes through them and its residuals check nothing:
    `degrees_of_freedom` says how many points are left over to check it."""
    flops = {(arch, K): K * flops_per_step(pack_configs(arch, 1, 1)[0]) for arch, K in times}
    a, r = fit_step_time([(flops[key], s) for key, s in times.items()])
    residuals = [{"arch": arch, "pack": K, "measured_ms": s * 1e3, "fitted_ms": (a + flops[arch, K] / r) * 1e3,
                  "residual": (a + flops[arch, K] / r) / s - 1} for (arch, K), s in times.items()]
    rates = Rates(kind, step_overhead_s=a, flops_per_s=r, score_s_per_sample=0.0, trial_overhead_s=1.0,
                  measured=f"harness.gpucheck, variant {variant}")
    return rates, {"parameters": FIT_PARAMETERS, "points": len(times),
                   "degrees_of_freedom": len(times) - FIT_PARAMETERS, "residuals": residuals,
                   "largest_residual": max((x["residual"] for x in residuals), key=abs)}


def fastest_measured(times: dict[str, dict[tuple[str, int], float]]) -> tuple[str | None, str]:
    """The variant with the highest measured model-steps/s, where that is well defined: the only
    variant measured, or the fastest at every (architecture, pack size) all of them were measured
    at; else None. Either way, why."""
    if len(times) == 1:
        return next(iter(times)), "the only variant that passed with throughput measured"
    common = sorted(set.intersection(*(set(t) for t in times.values())))
    if not common:
        return None, "the variants that passed were measured at no common (architecture, pack size)"
    winners = {(arch, K): min(times, key=lambda v: times[v][arch, K]) for arch, K in common}
    at = ", ".join(f"{arch} pack {K}: {v}" for (arch, K), v in winners.items())
    if len(set(winners.values())) > 1:
        return None, f"the fastest variant differs between the points every one was measured at ({at})"
    return winners[common[0]], f"the highest measured model-steps/s at each point every one was measured at ({at})"


def verdict_variant(p: dict) -> str | None:
    """The variant a projection names: the projected fastest, else the fastest measured (or None)."""
    return p.get("variant") if p.get("ok") else p.get("fastest_measured")


def projection(throughput: dict, correctness: dict, concurrency: dict, kind: str) -> dict:
    """Hours for Table 1 with the fastest variant that passed correctness: each such variant's
    rates fitted to its measured packs, Table 1 projected with them, the fewest hours taken among
    the variants measured on the most architectures (a variant measured on the smallest one only
    cannot speak for the others). A variant measured at fewer (architecture, pack size) points
    than the fit has parameters is not fitted (a line through one point is no measurement); when
    none is left, nothing is projected and the result says why, and which variant (if any) was
    fastest by its measured rate."""
    passed = [v for v, verdict in correctness.get("variants", {}).items() if verdict == "pass"]
    times = {v: t for v in passed if (t := step_times(throughput, v))}
    if not times:
        return {"ok": False, "error": "no speed variant passed correctness with throughput measured"}
    too_few = {v: f"measured at {len(t)} (architecture, pack size) point{'s' * (len(t) != 1)} "
                  f"({', '.join(f'{arch} pack {K}' for arch, K in t)}), fewer than the fit's {FIT_PARAMETERS} "
                  f"parameters (step overhead and FLOP/s)"
               for v, t in times.items() if len(t) < FIT_PARAMETERS}
    if len(too_few) == len(times):
        fastest, why = fastest_measured(times)
        return {"ok": False, "error": "; ".join(f"{v} {reason}" for v, reason in too_few.items()),
                "not_fitted": too_few, "fastest_measured": fastest, "fastest_basis": why}
    fits = {v: (len({arch for arch, _ in t}), *fit_variant(t, kind, v)) for v, t in times.items() if v not in too_few}
    packs = table1_packs(24)                                  # every pack holds one architecture's configs
    widest = max(n for n, _, _ in fits.values())
    hours_by = {v: project(packs, rates, 1) / 3600 for v, (n, rates, _) in fits.items() if n == widest}
    variant = min(hours_by, key=hours_by.get)
    _, rates, fit = fits[variant]
    scaling = {int(n): s for n, s in concurrency.items() if str(n).isdigit() and s}
    base = scaling.get(1)
    speedups = {n: s / base for n, s in scaling.items()} if base else {1: 1.0}
    slots = max(speedups, key=lambda n: speedups[n] / n >= 0.8 and speedups[n] or 0)  # worthwhile concurrency
    one = project(packs, rates, 1)
    hours = one / speedups.get(slots, 1.0) / 3600
    return {"ok": True, "variant": variant, "pack_size": "24 GAN / 2 EBGAN (one architecture's configs per seed)",
            "concurrency": slots, "concurrency_speedup": speedups.get(slots, 1.0), "hours": hours,
            "hours_one_at_a_time": one / 3600, "fitted": asdict(rates), "fit": fit, "not_fitted": too_few,
            "concurrency_measured": bool(base),
            "concurrency_error": None if base else concurrency.get("error_1", "not measured"),
            "hours_by_variant": {v: round(h, 2) for v, h in hours_by.items()},
            "note": "training steps and an assumed 1 s per trial; scoring (35,000 samples per run over 25 epochs) "
                    "is not measured here and not included: the slice's wall time shows what it adds"}
