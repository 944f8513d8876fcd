"""The GPU check's correctness, run: each speed variant's packs trained on the device and held,
member by member, against their reference runs (harness.tools.correctness has the comparator).

- Reference runs: the reference trainer, fp32 with TF32 off whatever the process allows, each
  trained once, when a check first needs it (`References`).
- The eager variants (fp32, tf32, bf16) run in this process. A variant with a CUDA graph or
  torch.compile runs in a worker process of its own (`python -m harness.gpucheck --worker`), so
  that a sticky CUDA error or a crashed compiler stays there: the worker gets the reference runs
  so far in a file, and prints each check, and each reference run it had to train, as a JSON
  line as it finishes (harness.tools.measure.run_worker keeps every line).
- A graph pack is also held through its first replays against its eager twin: the same pack,
  eager, with torch's capturable Adam as the graph's (the same arithmetic).
- Time: each variant gets the time left over the variants left (and the phase's, until it has
  compared one pack), and its deadline is the stop hook of every training (`Watch`): a pack it
  cuts short is `skipped: out of time`, never a failure; a pack that the last ones' pace says
  cannot finish by then is not started (`Pace`).
  `progress` gets the summary after each variant (gpucheck writes its outputs then).
- A check ends as one of correctness.STATUSES: a variant that does not apply to a family (a CUDA
  graph for WGAN-GP's 5 D steps per G step, torch.compile for its double backward: Speed.applied)
  is `skipped` with the reason, never reported as run.
- TF32: every training notes the TF32 state it ran under (`Watch`), and the environment's
  overrides, which act below torch's switch, are cleared for the check (`clear_tf32_overrides`).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, MutableMapping
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path

import torch

from harness.config import TrainConfig
from harness.engine import Speed, SpeedUnsupported, Stopped, TrainResult, train, train_pack
from harness.engine.cuda import TF32_OVERRIDES, matmul_precision
from harness.tools.correctness import check_row, correctness_packs, held, one_line, summarize_checks
from harness.tools.measure import emit, run_worker

WORKER_GRACE_S = 20.0   # a worker's time past its deadline to report the pack it was in, and exit

Halt = Callable[[], bool]
Report = Callable[[dict], None]


# --- TF32 ------------------------------------------------------------------------------------------

def clear_tf32_overrides(environ: MutableMapping[str, str] = os.environ) -> dict:
    """Remove the TF32 overrides from this process's environment (and so its workers'), so that
    each variant's TF32 switch is what its matmuls do. Called before the first matmul: torch and
    cuBLAS read them once. Returns what was there, for gpucheck.json."""
    found = {name: environ.get(name) for name in TF32_OVERRIDES}
    for name, value in found.items():
        if value is not None:
            del environ[name]
    return {"environment": found, "cleared": [name for name, value in found.items() if value is not None]}


def tf32_state() -> dict:
    """TF32 as torch sees it now: its matmul switch and the float32 matmul precision."""
    try:
        return {"allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision()}
    except RuntimeError as e:   # torch refuses to read a state set through both its old and new switches
        return {"error": one_line(e)}


class Watch:
    """The stop hook of one training: True once `halt()` (a signal) or past `until` (time.time(),
    which a worker process shares). Its first call comes inside the engine's own precision
    setting, so it notes the TF32 state the training ran under (`tf32`)."""

    def __init__(self, until: float, halt: Halt):
        self.until, self.halt = until, halt
        self.tf32: dict | None = None

    def expired(self) -> bool:
        return self.halt() or time.time() > self.until

    def __call__(self) -> bool:
        if self.tf32 is None:
            self.tf32 = tf32_state()
        return self.expired()

    def reason(self) -> str:
        return "stopped" if self.halt() else "out of time"


# --- what the checks share ---------------------------------------------------------------------------

class Pace:
    """The seconds the last reference run and the last pack (per member) took, None before the
    first: what a pack would need, so that one that cannot finish by its deadline (its scoring
    does not stop at it) is not started, and its time goes to the next variant."""

    def __init__(self):
        self.ref_s: float | None = None
        self.member_s: float | None = None

    def need(self, pack: list[TrainConfig], refs: References) -> float:
        missing = sum(cfg not in refs.runs for cfg in pack)
        return missing * (self.ref_s or 0.0) + len(pack) * (self.member_s or 0.0)


class Bench:
    """The correctness packs on a device, and their data and scorer, loaded when first needed."""

    def __init__(self, device: torch.device, data_dir: str | None, quick: bool):
        self.device, self.data_dir, self.quick = device, data_dir, quick
        self.pace = Pace()
        self.packs = correctness_packs(device, quick)
        self.key = {cfg: f"{p}.{k}" for p, pack in enumerate(self.packs) for k, cfg in enumerate(pack)}
        self.config = {key: cfg for cfg, key in self.key.items()}

    @cached_property
    def data(self) -> torch.Tensor:
        from harness.data import gan_training_set
        return gan_training_set(self.data_dir, max(p[0].trainImages for p in self.packs), self.device)

    @cached_property
    def scorer(self):
        from harness.metrics import Scorer
        return Scorer(None, self.data_dir, self.device)


class References:
    """Each config's reference run: the reference trainer, fp32 with TF32 off whatever the process
    allows, trained once, when a check first needs it. `on_new(cfg, result, tf32)` hears of each
    one trained here (a worker prints it for its parent to keep)."""

    def __init__(self, runs: dict[TrainConfig, TrainResult] | None = None,
                 on_new: Callable[[TrainConfig, TrainResult, dict | None], None] | None = None):
        self.runs = dict(runs or {})
        self.on_new = on_new
        self.tf32: list[dict] = []   # the distinct TF32 states they trained under

    def of(self, cfg: TrainConfig, bench: Bench, until: float, halt: Halt) -> TrainResult:
        if cfg not in self.runs:
            watch = Watch(until, halt)
            t = time.monotonic()
            with matmul_precision(False):
                result = train(cfg, bench.data, bench.scorer, None, bench.device, record_losses=True, stop=watch)
            bench.pace.ref_s = time.monotonic() - t
            self.add(cfg, result, watch.tf32)
            if self.on_new is not None:
                self.on_new(cfg, result, watch.tf32)
        return self.runs[cfg]

    def add(self, cfg: TrainConfig, result: TrainResult, tf32: dict | None) -> None:
        self.runs[cfg] = result
        if tf32 is not None and tf32 not in self.tf32:
            self.tf32.append(tf32)


# --- one pack, one variant ---------------------------------------------------------------------------

def check_pack(variant: str, pack: list[TrainConfig], refs: References, bench: Bench, until: float,
               halt: Halt) -> list[dict]:
    """The check rows of one pack in one variant: each member held against its reference run."""
    speed, why = Speed.parse(variant).applied(pack[0].spec, pack[0].settings)
    if why:   # what would run is not this variant: not checked under its name
        return [check_row(cfg, variant, "skipped", "; ".join(why)) for cfg in pack]
    watch = Watch(until, halt)
    try:
        speed.check(bench.device, pack[0].spec)
        if watch.expired() or time.time() + bench.pace.need(pack, refs) * (2 if speed.graph else 1) > until:
            raise Stopped(watch.reason())
        wanted = [refs.of(cfg, bench, until, halt) for cfg in pack]
        t = time.monotonic()
        members = train_pack(pack, bench.data, bench.scorer, None, bench.device, record_losses=True, speed=speed,
                             stop=watch)
        pack_s = round(time.monotonic() - t, 1)
        bench.pace.member_s = pack_s / len(pack)
        twins = (train_pack(pack, bench.data, bench.scorer, None, bench.device, record_losses=True,
                            speed=replace(speed, graph=False), capturable=True, stop=Watch(until, halt))
                 if speed.graph else [None] * len(pack))
    except SpeedUnsupported as e:
        return [check_row(cfg, variant, "unavailable", str(e)) for cfg in pack]
    except Stopped:
        return [check_row(cfg, variant, "skipped", watch.reason()) for cfg in pack]
    except Exception as e:   # a setup or toolchain error, not a verdict on the engine's arithmetic
        return [check_row(cfg, variant, "error", one_line(e)) for cfg in pack]
    ran = (watch.tf32 or {}).get("allow_tf32")
    if ran is not None and ran != speed.tf32:
        return [check_row(cfg, variant, "error", f"trained with TF32 {'on' if ran else 'off'}, not as {variant} asks",
                          allow_tf32=ran) for cfg in pack]
    return [held(cfg, variant, m, r, twin, pack_s=pack_s, allow_tf32=ran)
            for cfg, m, r, twin in zip(pack, members, wanted, twins)]


def check_variant(variant: str, bench: Bench, refs: References, until: float, halt: Halt, report: Report,
                  last: float | None = None) -> None:
    """Every pack of the correctness grid in one variant, each check reported as it is made. The
    variant's deadline is `until`, but `last` (the phase's) until it has compared one pack: every
    variant the phase has time for gets a verdict, whatever its first pack costs (reference runs
    to train, minutes of compiling)."""
    compared = False
    for pack in bench.packs:
        rows = check_pack(variant, pack, refs, bench, until if compared or last is None else last, halt)
        compared = compared or any(r["status"] in ("pass", "fail") for r in rows)
        for row in rows:
            report(row)


def in_worker(variant: str) -> bool:
    """Variants whose failures can outlive them in a process (a sticky CUDA error after a graph's
    replay, a compiler's crash) run in a process of their own."""
    speed = Speed.parse(variant)
    return speed.graph or speed.compile


def worker_checks(variant: str, bench: Bench, refs: References, until: float, halt: Halt,
                  last: float | None = None) -> list[dict]:
    """One variant's checks in a worker process; the reference runs it trained join `refs`. A
    check it did not report is `skipped` if time ran out or a signal stopped it, else `error`
    with the worker's last words (a crash)."""
    last = until if last is None else last
    if halt() or time.time() >= last:   # no process started for nothing
        return [check_row(cfg, variant, "skipped", Watch(last, halt).reason()) for p in bench.packs for cfg in p]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "references.json"
        path.write_text(json.dumps({bench.key[cfg]: asdict(r) for cfg, r in refs.runs.items()}))
        job = {"correctness": True, "variant": variant, "device": bench.device.type, "data_dir": bench.data_dir,
               "quick": bench.quick, "references": str(path), "until": until, "last": last,
               "pace": [bench.pace.ref_s, bench.pace.member_s]}
        lines, error = run_worker("harness.gpucheck", job, max(until, last) - time.time() + WORKER_GRACE_S, halt)
    for line in lines:
        if "reference" in line:
            refs.add(bench.config[line["reference"]], TrainResult(**line["result"]), line.get("tf32"))
    rows = [line["check"] for line in lines if "check" in line]
    reported = {row["configId"] for row in rows}
    if halt() or (error or "").startswith("out of time"):
        status, reason = "skipped", "stopped" if halt() else "out of time"
    else:
        status, reason = "error", f"the worker process ended: {error or 'without reporting the check'}"
    return rows + [check_row(cfg, variant, status, reason) for pack in bench.packs for cfg in pack
                   if cfg.config_id not in reported]


def correctness_worker(job: dict) -> None:
    """In its own process (gpucheck --worker): one variant's checks, each printed as a JSON line
    as it is made, and each reference run it had to train, for its parent to keep."""
    bench = Bench(torch.device(job["device"]), job["data_dir"], job["quick"])
    if bench.device.type == "cpu":
        torch.set_num_threads(1)   # as its parent (gpucheck --device cpu)
    known = {bench.config[key]: TrainResult(**r) for key, r in json.loads(Path(job["references"]).read_text()).items()}
    refs = References(known, on_new=lambda cfg, result, tf32: emit(
        {"reference": bench.key[cfg], "result": asdict(result), "tf32": tf32}))
    bench.pace.ref_s, bench.pace.member_s = job["pace"]   # what its parent measured so far
    check_variant(job["variant"], bench, refs, job["until"], lambda: False, lambda row: emit({"check": row}),
                  job["last"])


# --- the phase -----------------------------------------------------------------------------------------

def check_correctness(device: torch.device, data_dir: str | None, variants: list[str], quick: bool,
                      deadline: float, stop: Halt, progress: Callable[[dict], None] | None = None) -> dict:
    """Every variant's checks by `deadline` (time.monotonic()): each variant gets the time left
    over the variants left (and the phase's, until it has compared one pack: `check_variant`);
    `progress(summary)` after each."""
    bench = Bench(device, data_dir, quick)
    refs = References()
    checks: list[dict] = []
    last = time.time() + max(0.0, deadline - time.monotonic())
    for i, variant in enumerate(variants):
        until = time.time() + (last - time.time()) / (len(variants) - i)
        if in_worker(variant):
            checks += worker_checks(variant, bench, refs, until, stop, last)
        else:
            check_variant(variant, bench, refs, until, stop, checks.append, last)
        if progress is not None:
            progress(summary(checks, variants, refs))
    return summary(checks, variants, refs)


def summary(checks: list[dict], variants: list[str], refs: References) -> dict:
    """summarize_checks, and the TF32 state each variant's packs and the reference runs trained under."""
    out = summarize_checks(checks, variants)
    seen = {v: sorted({c["allow_tf32"] for c in checks if c["variant"] == v and c.get("allow_tf32") is not None})
            for v in variants}
    out["tf32"] = {"reference runs": refs.tf32, "allow_tf32 by variant": seen}
    return out
