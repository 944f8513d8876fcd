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
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from harness.costmodel import fmt_duration
from harness.errors import HarnessError, report
from harness.provenance import device_name
from harness.tools.correctness import (
    CPU_VARIANTS,
    IPRIME_TOL,
    TIGHT_STEPS,
    VARIANTS,
    check_correctness,
    drift_table,
    one_line,
)
from harness.tools.measure import ARCHS, table1_variant, write_grid
from harness.tools.throughput import (
    concurrency_worker,
    measure_concurrency,
    measure_throughput,
    projection,
    throughput_worker,
)

DEFAULT_BUDGET_S = {"cuda": 450.0, "cpu": 280.0}
REPORT_S = 30.0   # what the slice keeps of its time for its report (at most half its time)


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
    """The slice through the local executor, stopped at `deadline` less the report's time (REPORT_S,
    or half what is left when that is less than 2 x REPORT_S); the report on what it has."""
    from harness.executors import SweepOptions
    from harness.grid import load_grid
    from harness.report import write_report
    from harness.results import ResultsTable
    from harness.sweep import run_sweep
    with tempfile.TemporaryDirectory() as tmp:
        grid = load_grid(write_grid(slice_grid(device, quick), Path(tmp)))
        stop_at = deadline - min(REPORT_S, (deadline - time.monotonic()) / 2)
        options = SweepOptions(results=Path(tmp), executor="local", data_dir=data_dir,
                               gpus_per_trial=0 if device == "cpu" else 1,
                               stop=lambda: stop() or time.monotonic() > stop_at)
        t = time.monotonic()
        code = run_sweep(grid, options)
        wall = time.monotonic() - t
        df = ResultsTable(Path(tmp) / grid.name).df
        if not df.empty:
            write_report(Path(tmp) / grid.name, Path(tmp) / "report")
            shutil.copy(Path(tmp) / "report" / "index.html", out / "report.html")
    finished = code == 0
    return {"ok": finished, "exit": code, "configs": len(grid.configs), "rows": len(df),
            "stopped": None if finished else ("stopped" if stop() else "at its deadline" if code == 130 else None),
            "statuses": df["status"].value_counts().to_dict() if len(df) else {}, "wall_s": wall,
            "best_Iprime": df.groupby("model")["Iprime"].max().round(3).to_dict() if len(df) else {},
            "report": "report.html" if len(df) else None}


# --- the check -------------------------------------------------------------------------------------

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
    stopped = f", stopped {s['stopped']}" if s.get("stopped") else ""
    lines.append(f"{s.get('rows', 0)}/{s.get('configs', 0)} rows{stopped}, "
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
    if t.get("concurrency"):  # keys: n processes (a rate) or error_<n> (why there is none)
        each = [f"{str(k).removeprefix('error_')}: {v if isinstance(v, str) else f'{v:.1f}'}"
                for k, v in t["concurrency"].items()]
        lines.append(f"\nconcurrent processes (small arch, aggregate model-steps/s by processes): {'; '.join(each)}")
    return lines


def projection_md(p: dict) -> list[str]:
    lines = ["", "## Projection: Table 1 on this device", ""]
    if p.get("ok"):
        lines.append(f"**{p['hours']:.2f} hours** with variant {p['variant']}, packs of {p['pack_size']}, "
                     f"{p['concurrency']} in flight ({p['concurrency_speedup']:.2f}x one); one at a time "
                     f"{p['hours_one_at_a_time']:.2f} h. Fitted: step overhead "
                     f"{p['fitted']['step_overhead_s'] * 1e3:.3f} ms, "
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


def run_check(out: Path, device: torch.device, data_dir: str, quick: bool, budget: float,
              stop: threading.Event) -> dict:
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
    p.add_argument("--out", dest="out_flag", metavar="OUT", help="the same folder, as a flag")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else the cache)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true",
                   help="small everything, fp32 only (the CPU test of the check itself)")
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
    args.out = args.out or args.out_flag
    if not args.out:
        p.error("OUT_DIR is required")
    if args.device == "cuda" and not torch.cuda.is_available():
        return report(HarnessError("gpucheck", "no CUDA device here", "run with --device cpu to check the logic"))
    from harness.data import DataError, resolve_data_dir
    try:
        data_dir = str(resolve_data_dir(args.data_dir))
    except DataError as e:
        return report(e)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return report(HarnessError(f"OUT_DIR {out}", f"cannot be created ({e.strerror})", "pass a writable folder"))
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
