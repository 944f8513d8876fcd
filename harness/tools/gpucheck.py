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
  skipped | unavailable | error, reason}: a variant that does not apply to a family (a CUDA
  graph with 5 D steps per G step, torch.compile with a double backward) is skipped with its
  reason; a setup error (no C compiler, an attribute this torch lacks) is an error, not a
  failure. `correctness.ok` counts passes and failures only. Graph and compile variants run in
  worker processes; the reference runs and every fp32 variant run with TF32 off, and the
  environment's TF32 overrides are cleared for the check (gpucheck.json's meta.tf32 says what
  was there). See harness.tools.checks.
- throughput: the reference trainer and packs of 8, 24, 48, 96 (those that fit) for the
  smallest, a middle and the largest Table 1 architecture, every speed variant; each
  (architecture, variant) in its own process, which reports each pack size as it finishes it;
  timings synchronize the device; peak memory, GPU utilization, and compile's graphs and graph
  breaks.
- projection: hours for the whole Table 1 on this device with the fastest variant that passed
  correctness, and the packs in flight at once that pay (measured with concurrent processes).
  Each variant's rates are fitted (step overhead, FLOP/s) to its measured packs, and shown with
  the fit's residuals; with fewer points than that it says it cannot project, and why. That
  variant (with no projection, the fastest by measured rate where that is well defined, else
  none) is the device's verdict, saved to harness/speeds.json (--speeds-file): what
  `python -m harness.sweep --speed auto` trains with on a device of this name (not by --quick,
  nor by a check a signal stopped).
- slice: a real Table 1 slice through the sweep's local executor, with the verdict's variant,
  until its deadline, then the report on the rows it has.
"""
from __future__ import annotations

import argparse
import datetime as dt
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

from harness import speeds
from harness.costmodel import fmt_duration
from harness.errors import HarnessError, report
from harness.provenance import device_name
from harness.strict_json import dumps
from harness.tools.checks import check_correctness, clear_tf32_overrides, correctness_worker, tf32_state
from harness.tools.correctness import CPU_VARIANTS, IPRIME_TOL, TIGHT_STEPS, VARIANTS, drift_table, one_line
from harness.tools.measure import ARCHS, table1_variant, write_grid
from harness.tools.throughput import (
    concurrency_reserve,
    concurrency_worker,
    measure_concurrency,
    measure_throughput,
    projection,
    throughput_worker,
    verdict_variant,
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
              stop: Callable[[], bool], speed: str | None = None) -> dict:
    """The slice through the local executor with `speed` (None: the sweep's default), stopped at
    `deadline` less the report's time (REPORT_S, or half what is left when that is less than
    2 x REPORT_S); the report on what it has."""
    from harness.executors import SweepOptions
    from harness.grid import load_grid
    from harness.report import write_report
    from harness.results import ResultsTable
    from harness.sweep import run_sweep
    with tempfile.TemporaryDirectory() as tmp:
        grid = load_grid(write_grid(slice_grid(device, quick), Path(tmp)))
        stop_at = deadline - min(REPORT_S, (deadline - time.monotonic()) / 2)
        options = SweepOptions(results=Path(tmp), executor="local", data_dir=data_dir,
                               gpus_per_trial=0 if device == "cpu" else 1, speed=speed,
                               tensorboard=False,   # its folder is a temporary one
                               stop=lambda: stop() or time.monotonic() > stop_at)
        t = time.monotonic()
        code = beside_main_thread(lambda: run_sweep(grid, options))
        wall = time.monotonic() - t
        df = ResultsTable(Path(tmp) / grid.name).df
        if not df.empty:
            write_report(Path(tmp) / grid.name, Path(tmp) / "report")
            shutil.copy(Path(tmp) / "report" / "index.html", out / "report.html")
    finished = code == 0
    return {"ok": finished, "exit": code, "configs": len(grid.configs), "rows": len(df), "speed": speed,
            "stopped": None if finished else ("stopped" if stop() else "at its deadline" if code == 130 else None),
            "statuses": df["status"].value_counts().to_dict() if len(df) else {}, "wall_s": wall,
            "best_Iprime": df.groupby("model")["Iprime"].max().round(3).to_dict() if len(df) else {},
            "report": "report.html" if len(df) else None}


def beside_main_thread(work: Callable[[], int]) -> int:
    """work() in a thread of its own while the main thread waits. The sweep installs its own
    SIGTERM / Ctrl-C handler when it runs on the main thread, and then a signal would end the
    sweep without the check hearing of it; beside the main thread it installs none, the signal
    reaches gpucheck's handler (`install_stop`), and the sweep stops through its `stop` option."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as e:   # raised again in the main thread
            box["error"] = e
    thread = threading.Thread(target=target, name="gpucheck-slice", daemon=True)  # a second signal quits
    thread.start()
    while thread.is_alive():
        thread.join(0.2)   # short waits: the main thread runs a signal's handler between them
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- the check -------------------------------------------------------------------------------------

def write_outputs(out: Path, result: dict) -> None:
    from harness.atomic import write_atomic
    write_atomic(out / "gpucheck.json", dumps(result, indent=1, default=str))
    write_atomic(out / "gpucheck.md", markdown(result))


def markdown(r: dict) -> str:
    m = r.get("meta", {})
    lines = [f"# gpucheck: {m.get('device_name', '?')}", "",
             f"torch {m.get('torch')}, device {m.get('device')}{' (quick)' if m.get('quick') else ''}; "
             f"{m.get('wall_s', 0):.0f} s of a {m.get('budget_s', 0):.0f} s budget"
             f"{'; STOPPED by a signal' if m.get('stopped') else ''}", "",
             tf32_md(m.get("tf32", {}), r.get("correctness", {}).get("tf32", {})), ""]
    lines += correctness_md(r.get("correctness", {}))
    lines += throughput_md(r.get("throughput", {}))
    lines += projection_md(r.get("projection", {}))
    s = r.get("slice", {})
    lines += ["", "## Slice", ""]
    stopped = f", stopped {s['stopped']}" if s.get("stopped") else ""
    lines.append(f"{s.get('rows', 0)}/{s.get('configs', 0)} rows{stopped}, speed {s.get('speed') or 'the default'}, "
                 f"statuses {s.get('statuses')}, {s.get('wall_s', 0):.0f} s, best I' {s.get('best_Iprime')}; "
                 f"report: {s.get('report')}" if "error" not in s else f"error: {s['error']}")
    return "\n".join(lines) + "\n"


def tf32_md(env: dict, seen: dict) -> str:
    """One line: torch's TF32 state at the start, the environment's overrides (cleared for the
    check), and the TF32 switch each variant's packs and the reference runs trained under."""
    start = env.get("at_start", {})
    overrides = ", ".join(f"{k}={v}" for k, v in env.get("environment", {}).items() if v is not None)
    refs = sorted({x.get("allow_tf32") for x in seen.get("reference runs", [])}, key=str)
    by_variant = "; ".join(f"{v} {'/'.join('on' if x else 'off' for x in xs)}"
                           for v, xs in seen.get("allow_tf32 by variant", {}).items() if xs)
    return (f"TF32: at the start allow_tf32 {start.get('allow_tf32')}, float32 matmul precision "
            f"{start.get('float32_matmul_precision')}. "
            + (f"The environment set {overrides}: cleared for this check (a sweep in this environment keeps it: "
               "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 runs fp32 matmuls in TF32). " if overrides
               else "No TF32 override in the environment. ")
            + f"Trained with TF32: reference runs {'/'.join('on' if x else 'off' for x in refs) or 'n/a'}"
            + (f"; {by_variant}." if by_variant else "."))


def correctness_md(c: dict) -> list[str]:
    counts = c.get("counts", {})
    others = ", ".join(f"{counts[s]} {s}" for s in ("skipped", "unavailable", "error") if counts.get(s))
    lines = [f"## Correctness: {'PASS' if c.get('ok') else 'FAIL'} ({counts.get('pass', 0)} pass, "
             f"{counts.get('fail', 0)} fail{', ' + others if others else ''})", ""]
    if "error" in c:
        lines.append(f"error: {c['error']}")
    checks = c.get("checks", [])
    for v, verdict in c.get("variants", {}).items():
        rows = [x for x in checks if x["variant"] == v and not x.get("huge_lr")]
        worst = max((x["loss_diff_over_tolerance"] for x in rows if "loss_diff_over_tolerance" in x), default=math.nan)
        d_i = max((x["Iprime_diff"] for x in rows if math.isfinite(x.get("Iprime_diff", math.nan))), default=math.nan)
        lines.append(f"- {v}: {verdict}; largest loss difference over the first {TIGHT_STEPS} steps {worst:.2f} "
                     f"of its tolerance, largest final |dI'| {d_i:.3f} (tolerance {IPRIME_TOL:g})")
        for status in ("skipped", "unavailable", "error"):
            for reason in sorted({x["reason"] for x in rows if x["status"] == status}):
                lines.append(f"  - {status}: {reason}")
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
    if not p:
        return lines + ["not run"]
    verdict = verdict_md(p.get("verdict") or {}, p.get("ok", False))
    if not p.get("ok"):
        return lines + [f"cannot project: {p.get('error')}. {verdict}"]
    measured = p.get("concurrency_measured", True)
    flight = (f"{p['concurrency']} in flight ({p['concurrency_speedup']:.2f}x one)" if measured
              else f"one in flight (concurrency not measured: {p.get('concurrency_error')})")
    unfitted = "".join(f" Not projected: {v} {why}." for v, why in p.get("not_fitted", {}).items())
    lines.append(f"**{p['hours']:.2f} hours** with variant {p['variant']}, {verdict}; packs of {p['pack_size']}, "
                 f"{flight}; one at a time {p['hours_one_at_a_time']:.2f} h. {fit_md(p['fitted'], p['fit'])}"
                 f"{unfitted} {p['note']}.")
    return lines


def fit_md(fitted: dict, fit: dict) -> str:
    """The fitted rates and, beside them, how far each measured point is from the fit."""
    each = ", ".join(f"{x['arch']} pack {x['pack']} {x['residual']:+.1%}" for x in fit["residuals"])
    exact = (" (as many points as parameters: none is left over to check the fit)"
             if fit["degrees_of_freedom"] <= 0 else "")
    return (f"Fitted: step overhead {fitted['step_overhead_s'] * 1e3:.3f} ms, {fitted['flops_per_s'] / 1e12:.2f} "
            f"TFLOP/s, to {fit['points']} (architecture, pack size) points; residuals (fitted / measured - 1) "
            f"{each}, largest {fit['largest_residual']:+.1%}{exact}.")


def verdict_md(verdict: dict, projected: bool) -> str:
    """What `--speed auto` trains with on this device after this check, on what grounds, and
    whether it was saved."""
    if not verdict.get("speed"):
        return (f"No verdict for `python -m harness.sweep --speed auto`: {verdict.get('not_saved', 'not run')}; "
                "it keeps this device's earlier verdict, if any, else fp32.")
    saved = (f"saved to {verdict['file']}" if verdict.get("file")
             else f"not saved: {verdict.get('not_saved', 'not run')}")
    if projected:
        return f"what `python -m harness.sweep --speed auto` trains with on this device (its verdict, {saved})"
    return (f"Verdict for `python -m harness.sweep --speed auto`: {verdict['speed']}, {verdict['basis']} "
            f"({saved}).")


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


def run_check(out: Path, device: torch.device, data_dir: str, quick: bool, budget: float, stop: threading.Event,
              speeds_file: Path = speeds.VERDICTS_FILE, tf32: dict | None = None) -> dict:
    """The phases, each with a share of what is left of the budget; the outputs written after
    each, and after each correctness variant. `tf32`: what clear_tf32_overrides found."""
    t0 = time.monotonic()
    end = t0 + budget
    variants = [v for v in VARIANTS if device.type == "cuda" or v in CPU_VARIANTS]
    if quick:
        variants = variants[:1]
    halt = stop.is_set
    result: dict = {"meta": {"device": device.type, "device_name": device_name(device.type), "torch": torch.__version__,
                             "quick": quick, "budget_s": budget, "variants": variants,
                             "tf32": {**(tf32 or {}), "at_start": tf32_state()}}}

    def correctness(deadline: float) -> dict:
        def progress(partial: dict) -> None:
            result["correctness"] = partial
            write_outputs(out, result)
        return check_correctness(device, data_dir, variants, quick, deadline, halt, progress)

    def throughput(deadline: float) -> dict:
        start = time.monotonic()
        t = measure_throughput(device.type, variants, quick, deadline - concurrency_reserve(deadline - start, quick),
                               halt)
        checked = result.get("correctness", {})
        fastest = verdict_variant(projection(t, checked, {}, device.type)) or "fp32"
        t["concurrency"] = measure_concurrency(device.type, fastest, quick, deadline, halt)
        p = projection(t, checked, t["concurrency"], device.type)
        p["verdict"] = device_verdict(p, checked, result["meta"]["device_name"], quick, stop.is_set(), speeds_file)
        result["projection"] = p
        return t

    def slice_(deadline: float) -> dict:
        verdict = result.get("projection", {}).get("verdict") or {}
        return run_slice(out, device.type, data_dir, quick, deadline, halt, verdict.get("speed"))
    for name, share, phase in [("correctness", 0.45, correctness), ("throughput", 0.6, throughput),
                               ("slice", 1.0, slice_)]:
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


def device_verdict(p: dict, checked: dict, name: str, quick: bool, stopped: bool, speeds_file: Path) -> dict:
    """The device's verdict for the sweep's `--speed auto`: the projection's variant (the fewest
    projected hours among those that passed correctness) or, with no projection, the fastest that
    passed by measured rate where that is well defined (throughput.fastest_measured), saved under
    the device's name in `speeds_file`; nothing where neither names a variant (`--speed auto`
    then keeps the device's earlier verdict, if any), and not by --quick (its checks are too few)
    nor by a check a signal stopped."""
    speed = verdict_variant(p)
    if speed is None:
        return {"speed": None, "not_saved": f"no variant to name ({p.get('fastest_basis') or p.get('error')})"}
    verdict = {"speed": speed, "passed": [v for v, x in checked.get("variants", {}).items() if x == "pass"],
               **({"hours": round(p["hours"], 2), "basis": "the fewest projected hours"} if p.get("ok")
                  else {"basis": f"no projection; {p['fastest_basis']}"}),
               "measured": f"python -m harness.gpucheck on {name}, {dt.date.today().isoformat()}"}
    why_not = "--quick" if quick else "stopped by a signal" if stopped else None
    if why_not is None:
        try:
            speeds.save_verdict(name, verdict, speeds_file)
        except OSError as e:
            why_not = f"{speeds_file} cannot be written ({e.strerror})"
    return {**verdict, **({"not_saved": why_not} if why_not else {"file": str(speeds_file)})}


def main(argv: list[str] | None = None) -> int:
    tf32 = clear_tf32_overrides()   # before anything reads them (its workers inherit the cleared environment)
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
    p.add_argument("--speeds-file", type=Path, default=speeds.VERDICTS_FILE,
                   help="where the device's verdict goes, what `python -m harness.sweep --speed auto` reads "
                        "(default harness/speeds.json)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        worker = (concurrency_worker if job.get("concurrent") else correctness_worker if job.get("correctness")
                  else throughput_worker)
        worker(job)
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
    if args.device == "cpu":
        torch.set_num_threads(1)   # tiny models: one thread is fastest, and immune to a busy core (as the trials)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return report(HarnessError(f"OUT_DIR {out}", f"cannot be created ({e.strerror})", "pass a writable folder"))
    if args.drift:
        rows = drift_table(torch.device(args.device), data_dir, args.quick)
        (out / "drift.json").write_text(dumps(rows, indent=1))
        return 0
    stop = threading.Event()
    install_stop(stop)
    t0 = time.monotonic()
    result = run_check(out, torch.device(args.device), data_dir, args.quick,
                       args.budget_s or DEFAULT_BUDGET_S[args.device], stop, args.speeds_file, tf32)
    files = [f for f in out.iterdir() if f.is_file()]
    print(markdown(result))
    print(f"gpucheck: {len(files)} files in {out} ({sum(f.stat().st_size for f in files) / 2**20:.1f} MB), "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    if stop.is_set():
        return 130
    return 0 if result.get("correctness", {}).get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
