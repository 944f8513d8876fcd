"""The one-shot GPU check, run the way CI can: on the CPU. Its device-only variants (TF32, CUDA
graphs) are the same code paths with other switches; here the check itself is tested: the
comparator against rounding drift and planted bugs, a schedule that keeps what it measured, a
SIGTERM that stops it at the next step, every section written within the budget.
(`python -m harness.gpucheck OUT --device cpu`, every CPU variant, runs in .ci/run.)"""
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness.engine import train
from harness.provenance import cpu_kernels
from harness.tools import correctness as gpucheck
from tests.follows import on_recorded_machine

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
pytestmark = pytest.mark.xdist_group("gpucheck")


@pytest.fixture(scope="module")
def packs():
    return gpucheck.correctness_packs(CPU, quick=True)


def test_one_ulp_of_drift_passes_for_every_family_and_optimizer_where_a_50_step_band_did_not(packs, data, scorer):
    """A reference run whose initial weights are nudged by one ulp differs from the reference by
    rounding only: the comparator must pass it, for every family and optimizer. The old rule (every
    loss of 50 steps within 1%) failed some of them: Adam turns rounding into whole steps."""
    old_rule_failed = []
    for cfg in (c for p in packs for c in p):
        ref = train(cfg, data, scorer, None, CPU, record_losses=True)
        nudged = gpucheck.nudged_run(cfg, data, scorer, CPU)
        row = gpucheck.compare(nudged, ref, "fp32")
        assert row["status"] == "pass", (cpu_kernels(), cfg.model, cfg.optimD, cfg.optimG, cfg.lr, row["reason"])
        band = [abs(a - b) <= 1e-3 + 1e-2 * abs(b) for x, y in zip(nudged.lossHistory[:50], ref.lossHistory[:50])
                for a, b in zip(x, y) if a == a and b == b]
        if not all(band):
            old_rule_failed.append(f"{cfg.model} {cfg.optimD}/{cfg.optimG}")
    assert old_rule_failed, "the drift test lost its teeth: no config drifts past the old 50-step band"


def test_planted_bugs_fail_the_comparator(data, scorer):
    """A member computed with a wrong margin (one above the fakes' energies, ~38 at the start, so
    that it is in the loss), or without its dropout (GAN's and LSGAN's D), differs from the first step."""
    base = gpucheck.correctness_packs(CPU, quick=True)

    def adam(family):
        return next(c for p in base for c in p if c.family == family and c.optimD == c.optimG == "adam")
    ebgan, gan, lsgan = adam("ebgan"), adam("gan"), adam("lsgan")
    bugs = [(ebgan, replace(ebgan, margin=50.0)), (replace(gan, dropoutD=True), gan),
            (replace(lsgan, dropoutD=True), lsgan)]
    for right, wrong in bugs:
        ref = train(right, data, scorer, None, CPU, record_losses=True)
        member = train(wrong, data, scorer, None, CPU, record_losses=True)
        row = gpucheck.compare(member, ref, "fp32")
        assert row["status"] == "fail" and "loss at step 1" in row["reason"], (cpu_kernels(), row)


def test_skipped_checks_count_neither_for_nor_against():
    def row(variant, status):
        return {"variant": variant, "status": status, "reason": "" if status == "pass" else "out of time"}
    s = gpucheck.summarize_checks([row("fp32", "pass"), row("fp32", "skipped"), row("compile", "skipped")],
                                  ["fp32", "compile"])
    assert s["ok"] and s["variants"] == {"fp32": "pass", "compile": "skipped"}
    assert s["counts"] == {"pass": 1, "fail": 0, "skipped": 2, "unavailable": 0, "error": 0}
    assert not gpucheck.summarize_checks([row("fp32", "pass"), row("bf16", "fail")], ["fp32", "bf16"])["ok"]
    assert not gpucheck.summarize_checks([row("fp32", "skipped")], ["fp32"])["ok"]   # nothing checked


def test_concurrency_reads_as_processes_and_rates_before_and_after_its_json_round_trip():
    from harness.tools.gpucheck import throughput_md
    t = {"rows": [], "concurrency": {1: 180.55, "error_2": "out of time after 14 s"}}
    for view in (t, json.loads(json.dumps(t))):
        assert throughput_md(view)[-1].endswith("by processes): 1: 180.6; 2: out of time after 14 s")


def test_a_graph_pack_is_also_held_against_the_eager_pack_through_its_first_replays():
    from harness.engine import TrainResult
    from harness.engine.cuda import GraphedSteps

    def result(losses):
        return TrainResult(status="ok", Iprime=1.0, IprimePerEpoch=[], inceptionScore=1.0, fid=1.0, classHist=[],
                           IprimeSetA=1.0, IprimeSetB=1.0, lossD=0.0, lossG=0.0, wallTime=0.0, stepsPerSec=1.0,
                           steps=len(losses), gSteps=len(losses), device="cpu", lossHistory=losses)
    eager = result([(1.0, 1.0)] * 10)
    stale = result([(1.0, 1.0)] * (GraphedSteps.WARMUP + 1) + [(1.5, 1.0)] * 5)  # the first replay goes wrong
    assert gpucheck.compare(stale, eager, "graph")["status"] == "pass"   # beyond the tight window
    row = gpucheck.compare_replays(stale, eager, "graph")
    assert row["status"] == "fail" and f"step {GraphedSteps.WARMUP + 2}" in row["reason"]


def test_a_worker_stopped_at_its_time_limit_keeps_every_line_it_printed():
    from harness.tools.measure import run_worker
    t = time.monotonic()
    # 15 s: a loaded 2-core machine can take seconds to start the worker's interpreter
    lines, error = run_worker("tests.tools.slow_worker", {"lines": 3, "then_sleep": 60}, timeout=15)
    assert [r["i"] for r in lines] == [0, 1, 2] and "out of time" in error and time.monotonic() - t < 25
    lines, error = run_worker("tests.tools.slow_worker", {"lines": 2, "then_sleep": 0}, timeout=30)
    assert len(lines) == 2 and error is None
    lines, error = run_worker("tests.tools.slow_worker", {"lines": 1, "then_fail": True}, timeout=30)
    assert len(lines) == 1 and "RuntimeError: planted" in error


@pytest.mark.slow
def test_a_budget_rehearsal_ends_within_it_with_every_section_and_no_row_lost(tmp_path, data_dir):
    budget = 50
    out = subprocess.run([sys.executable, "-m", "harness.gpucheck", str(tmp_path), "--device", "cpu", "--quick",
                          "--budget-s", str(budget), "--data-dir", str(data_dir),
                          "--speeds-file", str(tmp_path / "speeds.json")], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    r = json.loads((tmp_path / "gpucheck.json").read_text())
    # the check's own clock, less the interpreter's start and exit: within the budget, but for the
    # slice's report, which it cannot cut short and which a loaded machine stretches (up to REPORT_S)
    from harness.tools.gpucheck import REPORT_S
    assert r["meta"]["wall_s"] < budget + REPORT_S, r["meta"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpucheck.json", "gpucheck.md", "report.html"]
    assert {"correctness", "throughput", "projection", "slice"} <= r.keys()
    c = r["correctness"]
    assert c["ok"] and c["variants"] == {"fp32": "pass"} and c["counts"]["fail"] == 0
    assert {"GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"} <= {x["model"] for x in c["checks"]}
    assert any(x.get("huge_lr") and x["member_status"] == "diverged" for x in c["checks"])
    passed = [x for x in c["checks"] if x["status"] == "pass"]      # the rest skipped for time, if any
    assert passed
    if on_recorded_machine():   # where a batched matmul rounds as K plain ones: a member is its reference run
        assert max(x["max_rel_loss_diff"] for x in passed) == 0.0
    rows = r["throughput"]["rows"]
    # nothing failed, nothing lost: each row measured, or skipped because its share of the budget ran
    # out (on a loaded machine 50 s may not reach a worker's first measurement; the measurements
    # themselves: test_throughput_measures_the_reference_and_a_pack_per_variant)
    assert {(x["variant"], x["pack"]) for x in rows} == {("reference", 1), ("fp32", 8)}, rows
    assert all(x["status"] == "ok" or x["status"] == "skipped" and "out of time" in x["error"] for x in rows), rows
    p = r["projection"]   # --quick measures one pack size of one architecture: too few points to fit two rates
    assert not p["ok"] and "hours" not in p, p
    if all(x["status"] == "ok" for x in rows):
        assert "fewer than the fit's 2 parameters" in p["error"], p
        assert p["verdict"]["speed"] == "fp32" and p["verdict"]["not_saved"] == "--quick"   # the fastest measured
    else:                 # no rate to compare: no variant named, and the slice trains with the sweep's default
        assert p["verdict"]["speed"] is None and "no variant to name" in p["verdict"]["not_saved"], p
    md = (tmp_path / "gpucheck.md").read_text()
    assert f"cannot project: {p['error']}." in md and "hours**" not in md
    assert r["slice"]["rows"] > 0 and r["slice"]["speed"] == p["verdict"]["speed"] and "Correctness: PASS" in md


def test_throughput_measures_the_reference_and_a_pack_per_variant():
    """--quick's throughput phase given the time it needs: the reference trainer and a pack of 8,
    each a model-steps/s rate, the pack's also as a multiple of the reference's."""
    from harness.tools.throughput import measure_throughput
    t = measure_throughput("cpu", ["fp32"], quick=True, deadline=time.monotonic() + 240, stop=lambda: False)
    rows = {(x["variant"], x["pack"]): x for x in t["rows"]}
    assert set(rows) == {("reference", 1), ("fp32", 8)} and all(x["status"] == "ok" for x in rows.values()), rows
    assert all(x["model_steps_per_s"] > 0 for x in rows.values()) and rows["fp32", 8]["x_ref"] > 0


@pytest.mark.slow
def test_one_sigterm_stops_the_check_at_the_next_step_and_it_still_writes_its_outputs(tmp_path, data_dir):
    proc = subprocess.Popen([sys.executable, "-m", "harness.gpucheck", str(tmp_path), "--device", "cpu", "--quick",
                             "--data-dir", str(data_dir), "--speeds-file", str(tmp_path / "speeds.json")],
                            cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("gpucheck: correctness"):
            break
    time.sleep(8)                        # inside the correctness phase's training
    proc.send_signal(signal.SIGTERM)
    t = time.monotonic()
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, rest[-3000:]
    # 5 s on an idle 2-core machine, 15 s beside a sweep and the suite: writing the outputs, not training
    assert time.monotonic() - t < 30, "it went on after the signal"
    r = json.loads((tmp_path / "gpucheck.json").read_text())
    assert r["meta"]["stopped"] and {"correctness", "throughput", "slice"} <= r.keys()
    # nothing trained or measured after the signal: the correctness jobs left, every throughput row, the slice
    assert any(x["reason"] == "stopped" for x in r["correctness"]["checks"] if x["status"] == "skipped")
    assert not any(x["status"] == "ok" for x in r["throughput"]["rows"]), r["throughput"]["rows"]
    assert r["slice"]["rows"] == 0 and r["slice"]["stopped"] == "stopped", r["slice"]
    assert "STOPPED by a signal" in (tmp_path / "gpucheck.md").read_text()


def test_gpucheck_without_a_gpu_says_so_in_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = subprocess.run([sys.executable, "-m", "harness.gpucheck", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "--device cpu" in out.stderr


# --- the phases' plumbing, each with stand-ins for what a GPU would measure ------------------------

def fake_phases(monkeypatch, slice_speeds: list) -> None:
    """Stand-ins for the measurements: fp32 and bf16 pass, bf16 is twice as fast."""
    from harness.tools import gpucheck as tool

    def check(device, data_dir, variants, quick, deadline, stop, progress):
        rows = [{"variant": v, "status": "pass", "reason": ""} for v in ("fp32", "bf16")]
        progress(gpucheck.summarize_checks(rows[:1], ["fp32", "bf16"]))
        written = json.loads((tmp / "gpucheck.json").read_text())   # after the first variant, before the second
        assert written["correctness"]["variants"] == {"fp32": "pass", "bf16": "skipped"}
        return gpucheck.summarize_checks(rows, ["fp32", "bf16"])

    def throughput(device, variants, quick, deadline, stop):
        rows = [{"arch": "small", "variant": v, "pack": K, "status": "ok", "model_steps_per_s": K * x / (1 + K / 8)}
                for v, x in (("fp32", 100.0), ("bf16", 200.0)) for K in (8, 24)]
        return {"rows": rows + [{"arch": "small", "variant": "reference", "pack": 1, "status": "ok",
                                 "model_steps_per_s": 50.0}]}
    tmp = None

    def remember(out, *args, **kwargs):
        nonlocal tmp
        tmp = out
        return real_run_check(out, *args, **kwargs)
    real_run_check = tool.run_check
    monkeypatch.setattr(tool, "check_correctness", check)
    monkeypatch.setattr(tool, "measure_throughput", throughput)
    monkeypatch.setattr(tool, "measure_concurrency", lambda *a: {1: 100.0, "error_2": "skipped: out of time"})
    monkeypatch.setattr(tool, "run_slice", lambda *a: slice_speeds.append(a[-1]) or {"ok": True, "rows": 1})
    monkeypatch.setattr(tool, "run_check", remember)


def test_the_verdict_names_the_headline_variant_and_goes_to_the_speeds_file_not_the_checkout(tmp_path, monkeypatch):
    """Correctness is written after each variant; the projection's variant (the fastest that
    passed) is the device's verdict, what `--speed auto` trains with, and the slice runs it."""
    import threading

    from harness import speeds
    from harness.provenance import device_name
    from harness.tools import gpucheck as tool
    checkout = speeds.VERDICTS_FILE.read_text() if speeds.VERDICTS_FILE.exists() else None
    slice_speeds: list = []
    fake_phases(monkeypatch, slice_speeds)
    for quick in (False, True):
        out = tmp_path / f"quick{quick}"
        out.mkdir()
        r = tool.run_check(out, CPU, "", quick, 60, threading.Event(), tmp_path / "speeds.json", {"cleared": []})
        p = r["projection"]
        assert p["ok"] and p["variant"] == "bf16" and p["verdict"]["speed"] == "bf16"
        assert "what `python -m harness.sweep --speed auto` trains with" in (out / "gpucheck.md").read_text()
    saved = json.loads((tmp_path / "speeds.json").read_text())[device_name("cpu")]   # by the full run only
    assert saved["speed"] == "bf16" and saved["passed"] == ["fp32", "bf16"] and saved["hours"] > 0
    assert saved["measured"].startswith(f"python -m harness.gpucheck on {device_name('cpu')}, 20")
    assert p["verdict"]["not_saved"] == "--quick" and slice_speeds == ["bf16", "bf16"]
    assert r["meta"]["tf32"]["at_start"]["allow_tf32"] is False
    assert (speeds.VERDICTS_FILE.read_text() if speeds.VERDICTS_FILE.exists() else None) == checkout


def test_the_concurrency_base_keeps_its_minimum_and_a_missing_base_is_said(monkeypatch):
    """A ~22 s tail gave the 1-process base a third (under its 10 s minimum): projected as
    "1 in flight (1.00x)". Now the base comes first with its minimum, and without it the
    projection says concurrency was not measured."""
    from harness.tools import throughput
    from harness.tools.gpucheck import projection_md
    caps = []

    def workers(module, jobs, cap, stop):
        caps.append((len(jobs), cap))
        return [([{"model_steps_per_s": 100.0}], None)] * len(jobs)
    monkeypatch.setattr(throughput, "run_workers", workers)
    got = throughput.measure_concurrency("cpu", "fp32", False, time.monotonic() + 22, lambda: False)
    assert caps[0][0] == 1 and caps[0][1] >= throughput.CONCURRENCY_MIN_S and 1 in got
    assert throughput.concurrency_reserve(150, quick=False) == 37.5
    assert throughput.concurrency_reserve(20, quick=True) == 10.0     # at most half the phase
    assert throughput.concurrency_reserve(15, quick=True) == 0.0      # not even the base's minimum: none
    rows = [{"arch": "small", "variant": "fp32", "pack": K, "status": "ok", "model_steps_per_s": 10.0 * K}
            for K in (8, 24)]
    p = throughput.projection({"rows": rows}, {"variants": {"fp32": "pass"}}, {"error_1": "skipped: out of time"},
                              "cpu")
    assert not p["concurrency_measured"] and p["concurrency_error"] == "skipped: out of time"
    assert "concurrency not measured: skipped: out of time" in projection_md(p)[-1]


def test_out_of_memory_ends_every_larger_pack_of_every_architecture(monkeypatch):
    """It used to break the architectures' loop only: the next, larger size was tried again."""
    from harness.tools import throughput
    lines, timed = [], []

    def steps(configs, n, device, speed):
        timed.append((configs[0].sizeG, len(configs)))
        if len(configs) == 24 and configs[0].sizeG == 1600:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 0.01
    monkeypatch.setattr(throughput, "time_steps", steps)
    monkeypatch.setattr(throughput, "emit", lines.append)
    monkeypatch.setattr(throughput, "pack_memory_estimate", lambda arch, K: 0)
    throughput.throughput_worker({"device": "cpu", "variant": "fp32", "archs": ["small", "middle"],
                                  "sizes": [8, 24, 48]})
    assert [(x["arch"], x["pack"], x["status"]) for x in lines] == [
        ("small", 8, "ok"), ("middle", 8, "ok"), ("small", 24, "ok"), ("middle", 24, "failed"),
        ("small", 48, "skipped"), ("middle", 48, "skipped")]
    assert len(timed) == 4 and lines[-1]["error"] == "not tried: out of memory at middle pack 24"


@pytest.mark.slow
def test_a_sigterm_during_the_slice_reaches_the_check_not_the_sweeps_handler(tmp_path, data_dir):
    """The sweep installs its own SIGTERM handler on the main thread: the check never heard of the
    signal, recorded no stop and exited 0. The signal is sent while the sweep runs (from its
    stop hook, asked before each trial and step)."""
    import os
    import threading

    from harness.tools.gpucheck import install_stop, run_slice
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    install_stop(stop)
    sent = []

    def halt():
        if not sent:
            sent.append(signal.getsignal(signal.SIGTERM))
            os.kill(os.getpid(), signal.SIGTERM)
        return stop.is_set()
    try:
        s = run_slice(tmp_path, "cpu", str(data_dir), True, time.monotonic() + 120, halt)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    assert sent and stop.is_set() and s["stopped"] == "stopped" and s["exit"] == 130, s
