"""`--executor local`: the sweep without Ray, in this process or in worker processes; its exit
codes, one SIGTERM that stops training at the next step, and the provenance of an error row."""
import signal
import subprocess
import sys
import time

import pytest
import yaml

from harness.grid import load_grid
from harness.provenance import COLUMNS as PROVENANCE
from tests.helpers import REPO, sweep, table, wait_for_rows


@pytest.mark.slow
def test_local_executor_runs_the_smoke_grid_without_ray(tmp_path, data_dir):
    code = ("import sys; sys.modules['ray'] = None  # any import of Ray fails\n"
            "from harness.sweep import main; rc = main(sys.argv[1:])\n"
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules if sys.modules[m]), "
            "'Ray imported'\n"
            "sys.exit(rc)")
    args = ["grids/smoke.yaml", "--results", str(tmp_path), "--data-dir", str(data_dir), "--executor", "local"]
    out = subprocess.run([sys.executable, "-c", code, *args, "--limit", "2"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epoch 1/1" in out.stdout and "[2/4 done" in out.stdout
    first = table(tmp_path)
    assert len(first) == 2 and set(first["status"]) == {"ok"}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    final = table(tmp_path).set_index("configId")
    assert len(final) == 4 and set(final["status"]) == {"ok"}
    assert (final.loc[first["configId"], "finishedAt"].to_numpy() == first["finishedAt"].to_numpy()).all()
    assert all((tmp_path / "smoke" / p).is_file() for p in final["samplesPath"])


@pytest.mark.slow
def test_local_executor_with_worker_processes(tmp_path, data_dir):
    """--local-workers 2: two packs in flight, each in a spawned process; the same rows and PNGs."""
    out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local",
                "--local-workers", "2", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 worker processes" in out.stdout and "epoch 1/1" in out.stdout
    df = table(tmp_path)
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    assert all((tmp_path / "smoke" / p).is_file() for p in df["samplesPath"])


@pytest.mark.slow
def test_exit_codes_of_the_local_executor(tmp_path, data_dir):
    """1 while error rows remain (with the retry command), 0 once all are done, 130 on SIGINT."""
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local"]
    victim = load_grid(REPO / "grids" / "smoke.yaml").configs[0].config_id
    out = sweep(*common, "--limit", "1", "--inject-failure", victim, "--retries", "0")
    assert out.returncode == 1, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert "1 configs have error rows" in last and "python -m harness.sweep grids/smoke.yaml" in last
    assert "--inject-failure" not in last and "--limit" not in last
    assert table(tmp_path).set_index("configId").loc[victim, "status"] == "error"

    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", *map(str, common)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(tmp_path / "smoke", proc, n=2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Resume with: python -m harness.sweep grids/smoke.yaml" in stdout and "Tuner.restore" not in stdout + stderr

    out = sweep(*common)
    assert out.returncode == 0, out.stderr[-2000:]
    assert set(table(tmp_path)["status"]) == {"ok"} and len(table(tmp_path)) == 4


@pytest.mark.slow
def test_one_sigterm_stops_the_local_executor_mid_pack_within_seconds(tmp_path, data_dir):
    """The pack in flight stops at its next step (its rows were never written; resume retrains it),
    the sweep ends with 130 and the resume command, without a second signal."""
    grid = yaml.safe_load((REPO / "grids" / "smoke.yaml").read_text())
    grid["settings"]["epochs"] = 200                      # minutes of training: only a stop ends it soon
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump({**grid, "name": "long"}))
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", str(path), "--results", str(tmp_path),
                             "--data-dir", str(data_dir), "--executor", "local"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "epoch 2/200" in line:                          # mid-pack
            break
    proc.send_signal(signal.SIGTERM)
    t = time.monotonic()
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, rest[-2000:]
    assert time.monotonic() - t < 5, "training went on after the signal"
    assert "Resume with: python -m harness.sweep" in rest


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_injected_failure_row_carries_the_provenance_columns(tmp_path, workers):
    """Where and with what a config failed: its error row has the provenance columns of the trial
    that raised, as an ok row has them, whether the trial ran in this process or in a worker
    process (the exception carries them back). The ring of 8: nothing to load, seconds to train."""
    grid = load_grid(REPO / "grids" / "smoke_ring8.yaml")
    victim = grid.configs[0].config_id
    out = sweep("grids/smoke_ring8.yaml", "--results", tmp_path, "--executor", "local", "--local-workers", workers,
                "--inject-failure", victim, "--retries", "0", timeout=600)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    rows = table(tmp_path, "smoke_ring8").set_index("configId")
    assert rows.loc[victim, "status"] == "error" and "injected failure" in rows.loc[victim, "error"]
    assert (rows.drop(victim)["status"] == "ok").all()
    assert rows[list(PROVENANCE)].notna().all().all(), rows[list(PROVENANCE)]
    ok = rows.drop(victim).iloc[0]
    assert (rows.loc[victim, list(PROVENANCE)] == ok[list(PROVENANCE)]).all()   # the same machine, code, scorer


@pytest.mark.slow
def test_a_sweep_killed_mid_pack_goes_on_from_the_pack_s_last_saved_epoch(tmp_path):
    """--checkpoint-every 0: the trial saves at every epoch end; SIGTERM after its third epoch;
    the same command then trains only the epochs left (the row says where it resumed) and
    removes the checkpoint once the row is written."""
    grid = yaml.safe_load((REPO / "grids" / "smoke_ring8.yaml").read_text())
    grid["settings"]["epochs"] = 8
    grid["families"] = {"gan": grid["families"]["gan"]}
    path = tmp_path / "resumed.yaml"
    path.write_text(yaml.safe_dump({**grid, "name": "resumed"}))
    command = [sys.executable, "-m", "harness.sweep", str(path), "--results", str(tmp_path), "--executor", "local",
               "--checkpoint-every", "0"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = []
    for line in proc.stdout:
        first.append(line)
        if "epoch 3/8" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    assert len(list((tmp_path / "resumed" / "checkpoints").glob("*.pt"))) == 1
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    row = table(tmp_path, "resumed").iloc[0]
    assert row["status"] == "ok" and 3 <= row["resumedAtEpoch"] < 8 and len(row["IprimePerEpoch"]) == 8
    assert "epoch 1/8" not in out.stdout and "epoch 8/8" in out.stdout      # only the epochs left were trained
    # the projection leaves out the saved epochs, and says so
    projected = [next(x for x in lines if x.startswith("Projected wall time"))
                 for lines in (first, out.stdout.splitlines())]
    assert "go on from saved" not in projected[0] and "1 pack goes on from saved epochs" in projected[1], projected
    assert not (tmp_path / "resumed" / "checkpoints").exists()
