"""The GPU check's correctness: the comparator that tells a pack member's rounding drift from a
bug, the checks' rows and their summary, and the drift itself, measured (`drift_table`).
harness.tools.checks runs the checks."""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from harness.config import TrainConfig
from harness.engine import TrainResult
from harness.tools.measure import REPO

# Speed variants of the packed engine (harness.engine.Speed.parse names them), in the order they
# are checked and measured: what the projection most likely rests on first, each graph variant
# after the eager variant it replays, torch.compile (minutes of compiling) last.
VARIANTS = ("fp32", "graph", "tf32", "graph+tf32", "bf16", "compile")
CPU_VARIANTS = ("fp32", "bf16", "compile")      # TF32 and CUDA graphs are CUDA's
# What a check can end as. pass and fail are the comparator's; skipped: not checked (the variant
# does not apply to the family, out of time, stopped); unavailable: this device or torch cannot
# run the variant (SpeedUnsupported); error: building or training it raised (no C compiler, an
# attribute this torch lacks, a crashed worker). Only `fail` says the engine is wrong.
STATUSES = ("pass", "fail", "skipped", "unavailable", "error")

# The comparator. A pack member is held against its reference run (same config, same seed, the
# reference trainer, this device). Two errors must be told apart:
# - rounding drift: a CUDA pack's batched matmuls round unlike the reference's plain ones, and
#   Adam turns a rounding difference into whole steps of lr x sign(g) for gradients near 0, so
#   the difference grows within a few steps, and a run's final I' moves with it;
# - a bug (a wrong setting, a member's loss without its dropout): visible from the first steps.
# `python -m harness.gpucheck OUT --drift` measures the drift on a device: how far a one-ulp
# nudge of the initial weights moves each reference run. docs/benchmarks.md, section "Rounding
# drift: what the GPU check's comparator allows", has what `--device cpu --drift --quick`
# printed on a CPU, and what each tolerance below takes from it.
# So losses are compared step by step over the first TIGHT_STEPS steps only: at the first step
# (no update yet: the forward passes' rounding alone) within FIRST_RTOL, then within LOSS_RTOL
# (TF32 and bf16 round matmul inputs to 10 and 7 mantissa bits: looser); after that a member
# must end as its reference run ended (ok or diverged), with its final I' within IPRIME_TOL: a
# coarse bound, above the drift, that catches a run that finished but learned something else.
# A CUDA graph replays from step GraphedSteps.WARMUP + 1 on, past the tight window: a graph pack
# is also held against its eager twin (the same pack run eagerly, with the same capturable Adam:
# the same arithmetic) through its first replays.
TIGHT_STEPS = 3
FIRST_RTOL = {"fp32": 1e-5, "graph": 1e-5, "compile": 1e-5, "tf32": 5e-3, "graph+tf32": 5e-3, "bf16": 5e-2}
FIRST_ATOL = 1e-7
LOSS_RTOL = {"fp32": 1e-2, "graph": 1e-2, "compile": 1e-2, "tf32": 5e-2, "graph+tf32": 5e-2, "bf16": 1e-1}
LOSS_ATOL = 1e-3
IPRIME_TOL = 2.0
CHECK_GRID = REPO / "grids" / "gpucheck.yaml"
HUGE_LR = 1e5   # a member of grids/gpucheck.yaml with a learning rate above this must diverge


def correctness_packs(device: torch.device, quick: bool, full: bool = False) -> list[list[TrainConfig]]:
    """grids/gpucheck.yaml's configs, one pack per shape (per family). On a CPU the widths and
    runs shrink (32/16 units, 30 steps) unless `full`; --quick keeps one seed."""
    from harness.grid import load_grid
    from harness.plan import make_packs
    configs = load_grid(CHECK_GRID).configs
    if device.type == "cpu" and not full:
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


def compare_replays(member: TrainResult, twin: TrainResult, variant: str) -> dict:
    """A CUDA graph pack's member against the same member of its eager twin (the pack run
    eagerly with the same capturable Adam), through the graph's first TIGHT_STEPS replays."""
    from harness.engine.cuda import GraphedSteps
    row = compare(member, twin, variant, GraphedSteps.WARMUP + TIGHT_STEPS, final=False)
    if row["status"] == "fail":
        row["reason"] = f"graph replay vs its eager twin: {row['reason']}"
    return row


def check_row(cfg: TrainConfig, variant: str, status: str, reason: str, **extra) -> dict:
    return {"family": cfg.family, "model": cfg.model, "optimizer": f"{cfg.optimD}/{cfg.optimG}", "lr": cfg.lr,
            "seed": cfg.seed, "configId": cfg.config_id, "variant": variant, "status": status, "reason": reason,
            **extra}


def held(cfg: TrainConfig, variant: str, member: TrainResult, ref: TrainResult, twin: TrainResult | None,
         **extra) -> dict:
    """The check row of one pack member: held against its reference run, and a graph pack's
    member against its eager twin through the first replays; the huge-lr member must diverge."""
    row = compare(member, ref, variant)
    if row["status"] == "pass" and twin is not None:
        replays = compare_replays(member, twin, variant)
        row.update(status=replays["status"], reason=replays["reason"],
                   replay_rel_loss_diff=replays["max_rel_loss_diff"])
    if cfg.lr >= HUGE_LR:  # diverged and frozen, its pack-mates the other rows
        ok = member.status == "diverged" and ref.status == "diverged"
        row.update(status="pass" if ok else "fail", huge_lr=True,
                   reason="" if ok else f"the huge-lr member ended {member.status}, not diverged")
    return check_row(cfg, variant, row.pop("status"), row.pop("reason"), **extra, **row)


def summarize_checks(checks: list[dict], variants: list[str]) -> dict:
    """correctness.ok: some check passed and none failed. A variant's verdict: fail, error or
    unavailable if any of its checks is (the sweep's `--speed auto` takes only a variant whose
    every check that ran passed), else pass if one passed, else skipped."""
    def verdict(rows: list[dict]) -> str:
        for status in ("fail", "error", "unavailable"):
            if any(r["status"] == status for r in rows):
                return status
        return "pass" if any(r["status"] == "pass" for r in rows) else "skipped"
    by_variant = {v: verdict([c for c in checks if c["variant"] == v]) for v in variants}
    passed = any(c["status"] == "pass" for c in checks) and not any(c["status"] == "fail" for c in checks)
    return {"ok": passed, "variants": by_variant,
            "counts": {s: sum(c["status"] == s for c in checks) for s in STATUSES},
            "tolerances": {"tight_steps": TIGHT_STEPS, "first_rtol": FIRST_RTOL, "first_atol": FIRST_ATOL,
                           "loss_rtol": LOSS_RTOL, "loss_atol": LOSS_ATOL,
                           "Iprime_abs": IPRIME_TOL}, "checks": checks}


# --- rounding drift: how far a one-ulp nudge takes a reference run (--drift) -------------------------

def nudged_reference(cfg: TrainConfig, device: torch.device, direction: int = 1):
    """The reference trainer's backend with every initial weight moved by one ulp (towards +inf,
    or -inf with direction -1): a run that differs from the reference by rounding only."""
    from harness.engine.reference import Reference
    backend = Reference(cfg, device)
    with torch.no_grad():
        for p in [*backend.G.parameters(), *backend.D.parameters()]:
            p.copy_(torch.nextafter(p, torch.full_like(p, direction * math.inf)))
    return backend


def nudged_run(cfg: TrainConfig, data: torch.Tensor, scorer, device: torch.device, direction: int = 1) -> TrainResult:
    from harness.engine.loop import run
    return run(lambda: nudged_reference(cfg, device, direction), [cfg], data, scorer, None, device,
               record_losses=True)[0]


def drift_table(device: torch.device, data_dir: str | None, quick: bool) -> list[dict]:
    """For every config of the correctness packs (seed 0), at the GPU check's full size also on a
    CPU (--quick: the CPU's small one): its reference run against two runs nudged by one ulp, up
    and down: the largest relative loss difference at each of the first 6 steps, and the final
    I' of each. What FIRST_RTOL, LOSS_RTOL, TIGHT_STEPS and IPRIME_TOL are set from."""
    from harness.data import gan_training_set
    from harness.engine import train
    from harness.engine.cuda import matmul_precision
    from harness.metrics import Scorer
    configs = [c for p in correctness_packs(device, quick, full=not quick) for c in p if c.seed == 0]
    data = gan_training_set(data_dir, configs[0].trainImages, device)
    scorer = Scorer(None, data_dir, device)
    rows = []
    for cfg in configs:
        with matmul_precision(False):   # fp32, as the checks' reference runs
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


def one_line(e: BaseException) -> str:
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"
