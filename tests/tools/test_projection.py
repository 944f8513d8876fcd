"""The GPU check's projection of Table 1 on synthetic throughput rows: a fit of two parameters
(step overhead, FLOP/s) to fewer points than that projects nothing and says why; with enough
points the projection shows how far each point is from the fit; and the device's verdict without
a projection is the fastest variant by measured rate, where that is well defined, or none."""
import json

import pytest

from harness.costmodel import flops_per_step
from harness.tools.gpucheck import device_verdict, projection_md
from harness.tools.measure import pack_configs
from harness.tools.throughput import FIT_PARAMETERS, projection

OVERHEAD_S, FLOPS_PER_S = 2e-3, 5e10          # the device the synthetic rows come from
PASSED = {"variants": {"fp32": "pass", "bf16": "pass"}}


def row(arch: str, K: int, variant: str = "fp32", slower: float = 1.0) -> dict:
    """A measured pack: its step takes overhead + K x FLOPs / FLOP/s, times `slower`."""
    seconds = slower * (OVERHEAD_S + K * flops_per_step(pack_configs(arch, 1, 1)[0]) / FLOPS_PER_S)
    return {"arch": arch, "variant": variant, "pack": K, "status": "ok", "model_steps_per_s": K / seconds}


def test_one_measured_point_projects_nothing_and_says_why():
    """The CPU check printed "2372.85 hours ... step overhead 0.000 ms" from one pack size."""
    rows = [row("small", 8), {**row("small", 24), "status": "skipped", "error": "out of time"}]
    p = projection({"rows": rows}, {"variants": {"fp32": "pass"}}, {}, "cpu")
    assert not p["ok"] and "hours" not in p and FIT_PARAMETERS == 2
    assert p["error"] == ("fp32 measured at 1 (architecture, pack size) point (small pack 8), fewer than the fit's "
                          "2 parameters (step overhead and FLOP/s)")
    assert p["fastest_measured"] == "fp32" and "only variant" in p["fastest_basis"]
    assert projection_md(p)[-1].startswith(f"cannot project: {p['error']}.")


def test_three_points_project_with_each_points_residual_beside_the_hours():
    rows = [row("small", 8), row("small", 24), row("middle", 8, slower=1.1)]   # one point 10% off the line
    p = projection({"rows": rows}, {"variants": {"fp32": "pass"}}, {}, "cpu")
    assert p["ok"] and p["variant"] == "fp32" and p["hours"] > 0
    fit = p["fit"]
    assert (fit["points"], fit["parameters"], fit["degrees_of_freedom"]) == (3, 2, 1)
    a, r = p["fitted"]["step_overhead_s"], p["fitted"]["flops_per_s"]
    for x, measured in zip(fit["residuals"], rows):
        seconds = measured["pack"] / measured["model_steps_per_s"]
        fitted = a + measured["pack"] * flops_per_step(pack_configs(measured["arch"], 1, 1)[0]) / r
        assert (x["arch"], x["pack"]) == (measured["arch"], measured["pack"])
        assert x["residual"] == pytest.approx(fitted / seconds - 1)
    assert 0.01 < abs(fit["largest_residual"]) < 0.2
    assert fit["largest_residual"] == max((x["residual"] for x in fit["residuals"]), key=abs)
    exact = projection({"rows": rows[:2] + [row("middle", 8)]}, {"variants": {"fp32": "pass"}}, {}, "cpu")
    assert abs(exact["fit"]["largest_residual"]) < 1e-6           # points on the line: the fit finds it
    assert exact["fitted"]["flops_per_s"] == pytest.approx(FLOPS_PER_S, rel=1e-6)
    md = projection_md(p)[-1]
    assert md.startswith(f"**{p['hours']:.2f} hours**") and "to 3 (architecture, pack size) points" in md
    assert f"largest {fit['largest_residual']:+.1%}" in md and "middle pack 8 " in md
    assert json.loads(json.dumps(p))["fit"] == fit


def test_a_variant_with_too_few_points_is_left_out_of_the_projection_and_said_so():
    rows = [row("small", 8), row("small", 24), row("small", 8, "bf16", slower=0.5)]
    p = projection({"rows": rows}, PASSED, {}, "cpu")
    assert p["ok"] and p["variant"] == "fp32" and list(p["hours_by_variant"]) == ["fp32"]
    assert p["fit"]["degrees_of_freedom"] == 0 and "none is left over to check the fit" in projection_md(p)[-1]
    assert p["not_fitted"] == {"bf16": "measured at 1 (architecture, pack size) point (small pack 8), fewer than "
                                       "the fit's 2 parameters (step overhead and FLOP/s)"}
    assert "Not projected: bf16 measured at 1" in projection_md(p)[-1]


def test_without_a_projection_the_verdict_is_the_fastest_by_measured_rate_where_that_is_defined(tmp_path):
    speeds_file = tmp_path / "speeds.json"
    same_point = projection({"rows": [row("small", 8), row("small", 8, "bf16", slower=0.5)]}, PASSED, {}, "cpu")
    assert not same_point["ok"] and same_point["fastest_measured"] == "bf16"
    v = device_verdict(same_point, PASSED, "a CPU", False, False, speeds_file)
    assert v["speed"] == "bf16" and "hours" not in v and v["file"] == str(speeds_file)
    assert v["basis"].startswith("no projection; the highest measured model-steps/s")
    assert v["basis"].endswith("(small pack 8: bf16)")
    assert json.loads(speeds_file.read_text())["a CPU"]["speed"] == "bf16"
    assert "Verdict for `python -m harness.sweep --speed auto`: bf16" in projection_md({**same_point, "verdict": v})[-1]

    apart = projection({"rows": [row("small", 8), row("middle", 8, "bf16")]}, PASSED, {}, "cpu")
    assert not apart["ok"] and apart["fastest_measured"] is None and "no common" in apart["fastest_basis"]
    v = device_verdict(apart, PASSED, "another CPU", False, False, speeds_file)
    assert v["speed"] is None and "no common" in v["not_saved"]
    assert "another CPU" not in json.loads(speeds_file.read_text())
    assert "No verdict for `python -m harness.sweep --speed auto`" in projection_md({**apart, "verdict": v})[-1]
