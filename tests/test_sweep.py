"""The sweep's driver and command line: dry-run counts, bad input (one line, exit 2), the resume
command, a results folder too small or filling up mid-sweep, a grid of a generated dataset on a
machine without MNIST."""
import json
import os
import subprocess
import sys
import time

import pytest

from harness.grid import GridError, load_grid
from harness.sweep import resume_command
from tests.helpers import REPO, sweep, table, wait_for_rows


def test_dry_run_reports_table1_counts():
    out = sweep("grids/mnist_table1.yaml", "--dry-run", "--results", "/nonexistent-results")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.split()[:2] == ["EBGAN", "512"] for l in lines)
    assert any(l.split()[:2] == ["GAN", "6144"] for l in lines)
    subgrids = [l.split() for l in lines if l.strip().split("/")[0] in ("adam", "sgd") and "lr=" in l]
    assert len(subgrids) == 12 and all(s[1] == "512" for s in subgrids)


def test_oversized_grid_is_refused_before_it_is_expanded(tmp_path):
    """6.2e11 runs: refused at once, in one line, with the count and --max-configs."""
    grid = (REPO / "grids" / "mnist_table1.yaml").read_text().replace(
        "sizeG: [400, 800, 1600, 3200]", "sizeG: [" + ", ".join(str(i) for i in range(1, 2001)) + "]").replace(
        "sizeD: [128, 256, 512, 1024]", "sizeD: [" + ", ".join(str(i) for i in range(1, 2001)) + "]").replace(
        "seeds: [0]", "seeds: [" + ", ".join(str(i) for i in range(3000)) + "]")
    (tmp_path / "huge.yaml").write_text(grid)
    t = time.monotonic()
    out = sweep(tmp_path / "huge.yaml", "--dry-run", timeout=60)
    assert out.returncode == 2 and time.monotonic() - t < 30
    assert len(out.stderr.strip().splitlines()) == 1
    assert "more than 1,000,000 runs" in out.stderr and "--max-configs" in out.stderr
    with pytest.raises(GridError, match="more than 3 runs"):
        load_grid(REPO / "grids" / "smoke.yaml", max_configs=3)
    assert len(load_grid(REPO / "grids" / "smoke.yaml", max_configs=4).configs) == 4


@pytest.mark.parametrize("args, message", [
    (["grids/nope.yaml"], "nope.yaml"),
    (["grids/smoke.yaml", "--data-dir", "/nonexistent"], "/nonexistent"),
    (["grids/smoke.yaml", "--classifier", "/nonexistent.pt"], "/nonexistent.pt"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, data_dir):
    out = sweep(*args, "--results", tmp_path, *([] if "--data-dir" in args else ["--data-dir", data_dir]))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def test_corrupt_results_table_is_not_overwritten(tmp_path, data_dir):
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "trials.parquet").write_bytes(b"not parquet")
    out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir)
    assert out.returncode == 2 and "trials.parquet" in out.stderr
    assert (tmp_path / "smoke" / "trials.parquet").read_bytes() == b"not parquet"


def test_resume_command_drops_one_off_options():
    argv = ["grids/smoke.yaml", "--limit", "3", "--inject-failure=abc", "--results", "my results"]
    assert resume_command(argv) == "python -m harness.sweep grids/smoke.yaml --results 'my results'"


@pytest.mark.parametrize("size", ["60k", "1m"])
def test_a_results_disk_too_small_is_refused_at_the_start(small_disk, size, data_dir):
    small_disk.size(size)
    out = sweep("grids/smoke.yaml", "--results", small_disk.path, "--data-dir", data_dir, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and str(small_disk.path) in out.stderr and "MB free" in out.stderr


def disk_fills_up_mid_sweep(small_disk, data_dir, *options: str) -> None:
    """A sweep whose results disk fills after its first rows: one line, exit 2, every row kept."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", "grids/smoke.yaml",
                             "--results", str(small_disk.path), "--data-dir", str(data_dir), "--max-concurrent", "1",
                             *options], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(small_disk.path / "smoke", proc)
    small_disk.fill()
    before = table(small_disk.path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stdout[-2000:] + stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert str(small_disk.path / "smoke") in last and "no space left" in last
    assert "Traceback" not in stderr
    (small_disk.path / "filler").unlink()
    after = table(small_disk.path)          # what was written stays readable
    assert set(before["configId"]) <= set(after["configId"]) and set(after["status"]) == {"ok"}


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_sweep_is_one_line_and_exit_2(small_disk, data_dir):
    disk_fills_up_mid_sweep(small_disk, data_dir, "--executor", "local")   # Ray's: tests/executors/test_raytune.py


def test_a_grid_that_takes_days_is_offered_random_samples_and_its_mini_twin(tmp_path, data_dir):
    """Table 1 on this CPU: the projection says days, then what --sample N would take for a few N,
    and names the mini grid; the sweep is stopped before its first trial ends."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", "grids/mnist_table1.yaml", "--results",
                             str(tmp_path), "--data-dir", str(data_dir), "--executor", "local"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("That is over a day here"):
            break
    proc.kill()
    proc.wait()
    text = "".join(lines)
    assert "Projected wall time: " in text and "d " in text.split("Projected wall time: ")[1].split("(")[0]
    offer = lines[-1]
    assert "--sample 100:" in offer and "--sample 1600:" in offer and "grids/mnist_table1_mini.yaml" in offer


def test_samples_are_nested_stratified_and_recorded_in_the_rows(tmp_path, data_dir):
    """--sample 2 then --sample 4 with the same seed: the first two are kept and two are added;
    every row says it was sampled (its seed), grid.json says of how many."""
    import json
    common = ["grids/smoke_families.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local"]
    assert sweep(*common, "--sample", "2").returncode == 0
    first = set(table(tmp_path, "smoke_families")["configId"])
    assert len(first) == 2
    out = sweep(*common, "--sample", "3")
    assert out.returncode == 0 and "1 configs to run" in out.stdout       # only the new one is trained
    rows = table(tmp_path, "smoke_families")
    assert first < set(rows["configId"]) and len(rows) == 3 and (rows["sampleSeed"] == 0).all()
    meta = json.loads((tmp_path / "smoke_families" / "grid.json").read_text())
    assert meta["sample"] == {"configs": 3, "runs": 3, "seed": 0, "of": 3} and meta["total"] == 3


# Run a module as `python -m` would, with downloads and MNIST's ConvNet refused: any attempt
# ends the process with a traceback naming it, instead of being caught as a failed mirror.
WITHOUT_MNIST = """
import runpy, sys, urllib.request
import classifiers.convnet

def refused(what):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a ring8 command asked for {what}")
    return refuse

urllib.request.urlopen = refused("a download")
classifiers.convnet.load_classifier = refused("MNIST's ConvNet")   # before harness imports it
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_a_ring8_grid_sweeps_and_reports_with_no_mnist_anywhere(tmp_path):
    """A generated dataset asks for no MNIST: no --data-dir, no HARNESS_DATA_DIR, an empty cache,
    downloads and the ConvNet refused. The sweep and the report run, nothing lands in the cache,
    and grid.json is strict JSON."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env["HARNESS_CACHE_DIR"] = str(tmp_path / "cache")

    def run(*args):
        return subprocess.run([sys.executable, "-c", WITHOUT_MNIST, *map(str, args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)

    out = run("harness.sweep", "grids/smoke_ring8.yaml", "--results", tmp_path, "--executor", "local")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    rows = table(tmp_path, "smoke_ring8")
    assert len(rows) == 3 and set(rows["status"]) == {"ok"} and set(rows["dataset"]) == {"ring8"}
    out = run("harness.report", tmp_path / "smoke_ring8")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert (tmp_path / "smoke_ring8" / "report" / "index.html").is_file()
    assert not (tmp_path / "cache").exists(), "something was fetched into the cache"
    meta = json.loads((tmp_path / "smoke_ring8" / "grid.json").read_text(), parse_constant=not_json)
    assert meta["dataset"] == "ring8" and meta["total"] == 3


def not_json(word: str):
    """json.loads's parse_constant: NaN and Infinity are refused, as JSON.parse and jq do."""
    raise ValueError(f"{word} is not JSON")


def test_an_mnist_grid_still_asks_for_mnist(tmp_path):
    """Without MNIST anywhere and no mirror that answers, an MNIST grid stops before any trial
    (one line naming the fix), as before: the dataset's own check runs for MNIST grids."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env.update(HARNESS_CACHE_DIR=str(tmp_path / "cache"), HARNESS_MNIST_MIRRORS="http://127.0.0.1:9/")
    out = subprocess.run([sys.executable, "-m", "harness.sweep", "grids/smoke.yaml", "--results", str(tmp_path),
                          "--executor", "local"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-3000:]
    assert len(out.stderr.strip().splitlines()) == 1 and "no mirror could serve it" in out.stderr
    assert "trial 1/" not in out.stdout


def test_the_eta_counts_neither_a_resumed_packs_earlier_epochs_as_speed_nor_as_work_left(monkeypatch):
    """Two packs of equal cost, 10 epochs each: pack 0 resumed after 8 (its first report is epoch 9),
    pack 1 fresh, at epoch 1. When pack 0 ends, 100 s in, this invocation has trained 0.2 + 0.1 of a
    pack in 100 s and 0.9 is left: 300 s (counting pack 0's earlier epochs as this run's, it would
    say 0.9 / 1.1 * 100 s = 82 s)."""
    from harness import rows
    monkeypatch.setattr(rows.time, "monotonic", lambda: 100.0)
    progress = rows.Progress(total=2, already=0, costs=[1.0, 1.0], projected=None, started=0.0)
    for pack, first_report in ((0, 0.9), (1, 0.1)):
        progress.epoch(pack, 0.0)                # started
        progress.epoch(pack, first_report, 0.1)
    assert progress.before == {0: pytest.approx(0.8)}
    progress.pack_finished(0, 1)
    assert progress.eta_seconds() == pytest.approx(300.0)
