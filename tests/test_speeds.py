"""The sweep's --speed: variants by name, what applies to each family, `auto` from the GPU check's
saved verdict per device, and a sweep whose rows record the speed they trained with."""
import json

import pandas as pd
import pytest

from harness import speeds
from harness.config import TrainConfig
from harness.engine import Speed, SpeedUnsupported
from harness.errors import HarnessError
from harness.grid import load_grid
from harness.report.tables import speed_note
from tests.helpers import REPO, sweep, table


@pytest.mark.parametrize("name, canonical", [("fp32", "fp32"), ("tf32+graph", "graph+tf32"), ("BF16", "bf16"),
                                             ("compile+bf16", "bf16+compile"), ("auto", "auto")])
def test_a_speed_name_parses_to_its_switches_and_back(name, canonical):
    assert speeds.check_name(name) == canonical
    if name != "auto":
        assert Speed.parse(canonical) == Speed.parse(name) and Speed.parse(canonical).name == canonical


@pytest.mark.parametrize("bad", ["fp16", "graph+", "", "tf32+fast"])
def test_an_unknown_speed_is_refused_with_the_names(bad):
    with pytest.raises(SpeedUnsupported, match="fp32, or switches graph, tf32, bf16, compile"):
        Speed.parse(bad)
    with pytest.raises(HarnessError, match=r"fix: pass e.g. --speed fp32, bf16, graph\+tf32, or auto"):
        speeds.check_name(bad)


def test_switches_that_cannot_apply_to_a_family_are_dropped_with_the_reason():
    wgan, gan = TrainConfig(family="wgan_gp"), TrainConfig(family="gan")
    applied, why = Speed(graph=True, compile=True, bf16=True).applied(wgan.spec, wgan.settings)
    assert applied == Speed(bf16=True) and len(why) == 2
    assert any("5 D steps per G step" in w for w in why) and any("differentiates twice" in w for w in why)
    assert Speed(graph=True, tf32=True).applied(gan.spec, gan.settings) == (Speed(graph=True, tf32=True), [])


def test_auto_is_the_devices_saved_verdict_else_fp32_with_its_reason(tmp_path):
    path = tmp_path / "speeds.json"
    name, why = speeds.resolve("auto", "NVIDIA H100 80GB HBM3", path)
    assert name == "fp32" and "no GPU check verdict for NVIDIA H100 80GB HBM3" in why
    speeds.save_verdict("NVIDIA H100 80GB HBM3", {"speed": "graph+tf32", "passed": ["fp32", "graph+tf32"],
                                                  "measured": "harness.gpucheck, 2026-12-06"}, path)
    speeds.save_verdict("NVIDIA H200", {"speed": "bf16", "passed": ["bf16"]}, path)   # the other is kept
    assert speeds.resolve("auto", "NVIDIA H100 80GB HBM3", path)[0] == "graph+tf32"
    assert speeds.resolve("auto", "NVIDIA H200", path)[0] == "bf16"
    assert speeds.resolve("auto", "AMD EPYC", path)[0] == "fp32"
    assert speeds.resolve("compile", "NVIDIA H200", path) == ("compile", "--speed compile")
    assert set(json.loads(path.read_text())) == {"NVIDIA H100 80GB HBM3", "NVIDIA H200"}


def test_the_report_says_which_speeds_trained_its_runs():
    runs = pd.DataFrame({"status": ["ok", "ok", "error"], "speed": ["fp32", None, "bf16"]})
    assert speed_note(runs).startswith("Every scored run trained at fp32")   # None: before it was recorded
    runs.loc[1, "speed"] = "bf16"
    assert "2 speed variants (1 runs at fp32, 1 runs at bf16)" in speed_note(runs)


@pytest.mark.slow
def test_a_sweep_records_its_speed_and_a_config_keeps_its_id_across_speeds(tmp_path, data_dir):
    """--speed bf16 on one config, then the rest at the default: one table, the same ids as
    without --speed, each row with its own speed; grid.json says what was asked for."""
    common = ["--executor", "local", "--results", tmp_path, "--data-dir", data_dir, "--no-tensorboard"]
    out = sweep("grids/smoke.yaml", *common, "--limit", "1", "--speed", "bf16", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Speed: bf16." in out.stdout
    assert json.loads((tmp_path / "smoke" / "grid.json").read_text())["speed"] == "bf16"
    out = sweep("grids/smoke.yaml", *common, "--speed", "auto", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Speed: fp32 (--speed auto: fp32, no GPU check verdict for" in out.stdout
    df = table(tmp_path)
    assert len(df) == 4 and sorted(df["speed"]) == ["bf16", "fp32", "fp32", "fp32"]
    assert set(df["configId"]) == {c.config_id for c in load_grid(REPO / "grids" / "smoke.yaml").configs}


def test_a_cuda_only_speed_on_cpu_trials_is_one_line_and_exit_2(tmp_path, data_dir):
    out = sweep("grids/smoke.yaml", "--executor", "local", "--results", tmp_path, "--data-dir", data_dir,
                "--speed", "graph+tf32", "--no-tensorboard", timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "--speed graph+tf32" in out.stderr and "fix: pass --speed fp32" in out.stderr
    assert not (tmp_path / "smoke" / "trials.parquet").exists() or table(tmp_path).empty
