"""The GPU check's correctness runs (harness/tools/checks.py), tested on the CPU: what a CUDA
machine's first run would meet is played here with stand-ins for the device's training (a setup
error, a graph pack and its eager twin, a worker that crashes) and with real tiny trainings where
the CPU can run them (a deadline inside a pack, the TF32 state a training runs under)."""
import json
import math
import time
from dataclasses import asdict, replace
from types import SimpleNamespace

import pytest
import torch

from harness.engine import Speed, SpeedUnsupported, Stopped, TrainResult, train_pack
from harness.engine.cuda import GraphedSteps, fail_on_recompile_limit, matmul_precision
from harness.tools import checks
from harness.tools.correctness import correctness_packs, summarize_checks

CPU = torch.device("cpu")
pytestmark = pytest.mark.xdist_group("gpucheck")


def result(losses, status="ok", Iprime=1.0) -> TrainResult:
    return TrainResult(status=status, Iprime=Iprime, IprimePerEpoch=[], inceptionScore=1.0, fid=1.0, classHist=[],
                       IprimeSetA=1.0, IprimeSetB=1.0, lossD=0.0, lossG=0.0, wallTime=0.0, stepsPerSec=1.0,
                       steps=len(losses), gSteps=len(losses), device="cpu", lossHistory=losses)


@pytest.fixture(scope="module")
def packs():
    return {p[0].model: p for p in correctness_packs(CPU, quick=True)}


def known(pack, losses=None):
    """References whose runs are already there: nothing is trained for them."""
    return checks.References({cfg: result(losses or [(1.0, 1.0)] * 10) for cfg in pack})


def bench(device="cpu", data=None):
    return SimpleNamespace(device=torch.device(device), data=data, scorer=None, pace=checks.Pace())


def soon():
    return time.time() + 600


def never():
    return False


def test_a_setup_error_is_an_error_and_a_missing_switch_unavailable_never_a_failure(packs, monkeypatch):
    """No C compiler for compile, an attribute this torch lacks: the toolchain is broken, not the
    engine. Such a variant is not the sweep's `auto`, and correctness still passes."""
    gan = packs["GAN"]

    def broken(*args, **kwargs):
        raise AttributeError("module 'torch._dynamo.config' has no attribute 'fail_on_recompile_limit_hit'")
    monkeypatch.setattr(checks, "train_pack", broken)
    errors = checks.check_pack("compile", gan, known(gan), bench(), soon(), never)
    assert {r["status"] for r in errors} == {"error"} and "AttributeError: module" in errors[0]["reason"]

    def unsupported(*args, **kwargs):
        raise SpeedUnsupported("torch 2.5 cannot make dynamo's recompile limit an error")
    monkeypatch.setattr(checks, "train_pack", unsupported)
    missing = checks.check_pack("compile", gan, known(gan), bench(), soon(), never)
    assert {r["status"] for r in missing} == {"unavailable"} and "recompile limit" in missing[0]["reason"]

    monkeypatch.setattr(checks, "train_pack", lambda cfgs, *a, **k: [result([(1.0, 1.0)] * 10) for _ in cfgs])
    passed = checks.check_pack("fp32", gan[:4], known(gan), bench(), soon(), never)
    s = summarize_checks(passed + errors + [dict(r, variant="bf16") for r in missing], ["fp32", "compile", "bf16"])
    assert s["ok"] and s["variants"] == {"fp32": "pass", "compile": "error", "bf16": "unavailable"}
    assert s["counts"] == {"pass": 4, "fail": 0, "skipped": 0, "unavailable": 5, "error": 5}


def test_a_variant_that_does_not_apply_to_a_family_is_skipped_under_its_name_not_run(packs, monkeypatch):
    """WGAN-GP takes 5 D steps per G step (no CUDA graph) and differentiates twice (no compile):
    what would run is eager fp32, so it is not reported as a graph or compile pass."""
    calls = []
    monkeypatch.setattr(checks, "train_pack", lambda *a, **k: calls.append(k) or [])
    wgan = packs["WGAN-GP"]
    graph = checks.check_pack("graph", wgan, known(wgan), bench("cuda"), soon(), never)
    assert {r["status"] for r in graph} == {"skipped"} and "no CUDA graph for WGAN-GP" in graph[0]["reason"]
    compiled = checks.check_pack("compile", wgan, known(wgan), bench(), soon(), never)
    assert {r["status"] for r in compiled} == {"skipped"} and "no torch.compile for WGAN-GP" in compiled[0]["reason"]
    assert not calls


def test_a_graph_pack_is_held_against_its_capturable_eager_twin(packs, monkeypatch):
    """The twin is the same pack, eager, with capturable Adam (the graph's arithmetic); a replay
    that goes wrong after the tight window is caught against it and only against it."""
    gan = packs["GAN"][:2]
    calls = []
    right = [(1.0, 1.0)] * 10
    wrong = [(1.0, 1.0)] * (GraphedSteps.WARMUP + 1) + [(1.5, 1.0)] * 5   # its first replay goes wrong

    replayed = []

    def fake(cfgs, data, scorer, samples_dir, device, record_losses, speed, stop, capturable=False):
        calls.append((speed.graph, capturable))
        stop()
        return [result(right if capturable else replayed[0]) for _ in cfgs]
    monkeypatch.setattr(checks, "train_pack", fake)
    for graphed, verdict in ((right, "pass"), (wrong, "fail")):
        calls.clear()
        replayed[:] = [graphed]
        rows = checks.check_pack("graph", gan, known(gan, right), bench("cuda"), soon(), never)
        assert calls == [(True, False), (False, True)]
        assert {r["status"] for r in rows} == {verdict}, rows[0]["reason"]
    assert "vs its eager twin" in rows[0]["reason"]


def test_the_deadline_stops_training_inside_a_pack_as_out_of_time(packs, monkeypatch):
    """A real pack on the CPU: the deadline passes at its third step, and the check is skipped
    for time there, not after the pack (the old check looked only between packs)."""
    clock = iter([0.0] * 5 + [100.0] * 1000)
    asked = []

    def fake_time():
        asked.append(1)
        return next(clock)
    monkeypatch.setattr(checks, "time", SimpleNamespace(time=fake_time, monotonic=time.monotonic))
    gan = packs["GAN"]
    data = torch.rand(gan[0].trainImages, 1024) * 2 - 1
    rows = checks.check_pack("fp32", gan, known(gan), bench(data=data), 50.0, never)
    assert {r["status"] for r in rows} == {"skipped"} and rows[0]["reason"] == "out of time"
    assert len(asked) == 6   # before the pack (its deadline, its need), then steps 0, 1, 2 and the one it stopped at


def test_a_pack_that_cannot_finish_by_its_deadline_is_not_started(packs, monkeypatch):
    """Its final scoring does not stop at the deadline: started late, it would run past it."""
    calls = []
    monkeypatch.setattr(checks, "train_pack", lambda *a, **k: calls.append(1) or [])
    gan = packs["GAN"]
    b = bench()
    b.pace.member_s = 10.0   # the last pack took 10 s a member: this one needs 50 s
    rows = checks.check_pack("fp32", gan, known(gan), b, time.time() + 20, never)
    assert {r["status"] for r in rows} == {"skipped"} and rows[0]["reason"] == "out of time" and not calls
    b.pace.member_s = 1.0
    assert checks.Pace().need(gan, checks.References()) == 0.0   # nothing measured yet: the first pack starts
    b.pace.ref_s = 3.0
    assert b.pace.need(gan, checks.References({gan[0]: result([])})) == 4 * 3.0 + 5 * 1.0


def test_reference_runs_and_fp32_packs_train_with_tf32_off_whatever_the_process_allows(packs, data, monkeypatch):
    """TF32 is set exactly per variant (it was `tf32 or before`), and the reference runs force it
    off; a pack that trained under the wrong state is an error, not a pass."""
    gan = packs["GAN"][:2]
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        seen = []

        def halt():   # asked inside the training, after its first step's setup: note the state, then stop
            seen.append(torch.backends.cuda.matmul.allow_tf32)
            return True
        with pytest.raises(Stopped):
            checks.References().of(gan[0], bench(data=data), soon(), halt)
        with pytest.raises(Stopped):
            train_pack(gan, data, None, None, CPU, speed=Speed(), stop=halt)
        with matmul_precision(True):
            inside = torch.backends.cuda.matmul.allow_tf32
        assert seen == [False, False] and inside and torch.backends.cuda.matmul.allow_tf32   # restored after
        watch = checks.Watch(soon(), never)
        watch()
        assert watch.tf32 == {"allow_tf32": True, "float32_matmul_precision": "high"}

        def leaky(cfgs, *args, stop, **kwargs):   # an engine that trained fp32 with TF32 on
            stop()
            return [result([(1.0, 1.0)] * 10) for _ in cfgs]
        monkeypatch.setattr(checks, "train_pack", leaky)
        rows = checks.check_pack("fp32", gan, known(gan), bench(), soon(), never)
        assert {r["status"] for r in rows} == {"error"} and "TF32 on, not as fp32 asks" in rows[0]["reason"]
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def test_the_tf32_overrides_are_cleared_and_recorded():
    env = {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1", "PATH": "/bin"}
    record = checks.clear_tf32_overrides(env)
    assert env == {"PATH": "/bin"}
    assert record == {"environment": {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1", "NVIDIA_TF32_OVERRIDE": None},
                      "cleared": ["TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"]}


def test_checks_a_worker_did_not_report_are_errors_with_its_last_words_or_skipped_for_time(monkeypatch):
    """A sticky CUDA error ends a graph or compile worker: what it reported stays, the rest of its
    checks are errors (not failures), and the reference runs it trained are kept for later variants."""
    b = checks.Bench(CPU, None, quick=True)
    gan = b.packs[0]
    ref = result([(0.5, math.nan)] * 10, status="diverged", Iprime=math.nan)
    row = checks.check_row(gan[0], "graph", "pass", "")
    lines = json.loads(json.dumps([{"reference": b.key[gan[1]], "result": asdict(ref), "tf32": {"allow_tf32": False}},
                                   {"check": row}]))
    for error, status, why in (("RuntimeError: CUDA error: an illegal memory access was encountered", "error",
                                "illegal memory access"), ("out of time after 30 s", "skipped", "out of time")):
        monkeypatch.setattr(checks, "run_worker", lambda *a, error=error, **k: (lines, error))
        refs = checks.References()
        rows = checks.worker_checks("graph", b, refs, soon(), never)
        assert rows[0] == row and len(rows) == sum(len(p) for p in b.packs)
        assert {r["status"] for r in rows[1:]} == {status} and all(why in r["reason"] for r in rows[1:])
        kept = refs.runs[gan[1]]
        assert kept.status == "diverged" and math.isnan(kept.Iprime) and refs.tf32 == [{"allow_tf32": False}]


@pytest.mark.slow
def test_a_graph_or_compile_variant_runs_in_a_worker_process_that_reports_each_check(data_dir):
    """A real worker (python -m harness.gpucheck --worker) on the CPU: graph cannot run here, so
    each check comes back `unavailable` (WGAN-GP's `skipped`), one JSON line at a time."""
    b = checks.Bench(CPU, str(data_dir), quick=True)
    gan = b.packs[0]
    refs = checks.References({gan[0]: result([(1.0, 1.0)] * 10)})
    assert checks.in_worker("graph") and checks.in_worker("compile") and not checks.in_worker("bf16")
    rows = checks.worker_checks("graph", b, refs, time.time() + 120, never)
    assert len(rows) == sum(len(p) for p in b.packs) and {r["configId"] for r in rows} == {c.config_id for c in b.key}
    by_model = {r["model"]: r for r in rows}
    assert by_model["WGAN-GP"]["status"] == "skipped"
    assert {r["status"] for r in rows if r["model"] != "WGAN-GP"} == {"unavailable"}
    assert "need a CUDA device" in by_model["GAN"]["reason"]


def test_check_correctness_gives_each_variant_its_share_and_reports_after_each(monkeypatch):
    seen = []

    def fake_variant(variant, bench, refs, until, halt, report, last):
        seen.append((variant, round(until - time.time()), round(last - time.time())))
        report({"variant": variant, "status": "pass", "reason": "", "allow_tf32": False})
    monkeypatch.setattr(checks, "check_variant", fake_variant)
    progress = []
    out = checks.check_correctness(CPU, None, ["fp32", "bf16"], True, time.monotonic() + 100, never,
                                   lambda s: progress.append(s["variants"]))
    assert [v for v, _, _ in seen] == ["fp32", "bf16"] and 48 <= seen[0][1] <= 50 and seen[1][1] >= 97
    assert all(last >= 97 for _, _, last in seen)
    assert progress == [{"fp32": "pass", "bf16": "skipped"}, {"fp32": "pass", "bf16": "pass"}]
    assert out["ok"] and out["tf32"]["allow_tf32 by variant"] == {"fp32": [False], "bf16": [False]}


def test_a_variant_may_use_the_phases_time_until_it_has_compared_one_pack(monkeypatch):
    """A variant whose first pack is dear (reference runs to train, minutes of compiling) still
    gets a verdict when the phase has time: its own share binds only after its first comparison."""
    b = checks.Bench(CPU, None, quick=True)
    given = []

    def fake_pack(variant, pack, refs, bench, until, halt):
        given.append(until)
        status, reason = ("skipped", "no CUDA graph for GAN") if len(given) == 1 else ("pass", "")
        return [checks.check_row(cfg, variant, status, reason) for cfg in pack]
    monkeypatch.setattr(checks, "check_pack", fake_pack)
    rows = []
    checks.check_variant("graph", b, checks.References(), 10.0, never, rows.append, last=99.0)
    assert given == [99.0, 99.0, 10.0, 10.0, 10.0] and len(rows) == sum(len(p) for p in b.packs)


def test_compile_refuses_a_torch_that_cannot_make_its_recompile_limit_an_error():
    for name in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):   # torch >= 2.7, earlier
        config = SimpleNamespace(**{name: False})
        fail_on_recompile_limit(config)
        assert getattr(config, name) is True
    with pytest.raises(SpeedUnsupported, match="recompile limit"):
        fail_on_recompile_limit(SimpleNamespace(recompile_limit=8))     # neither: it would run eagerly, unsaid


def test_a_pack_built_capturable_without_a_graph_has_capturable_optimizers(packs):
    from harness.engine.pack import Pack
    gan = [replace(c, sizeG=8, sizeD=8) for c in packs["GAN"][:2]]
    assert Pack(gan, CPU, "reference", Speed(), capturable=True).opt_d.capturable
    assert not Pack(gan, CPU, "reference", Speed()).opt_g.capturable
