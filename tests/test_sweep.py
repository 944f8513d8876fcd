"""The sweep: dry-run counts, bad input, and real Ray Tune runs (resume, kill, injected failure)."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from classifiers.convnet import DEFAULT_WEIGHTS, sha256_file
from harness.grid import load_grid
from harness.provenance import COLUMNS as PROVENANCE
from harness.sweep import FAIL_ENV, make_packs, pending_configs, run_pack

REPO = Path(__file__).resolve().parents[1]


def sweep(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.sweep", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def table(results: Path) -> pd.DataFrame:
    return pd.read_parquet(results / "smoke" / "trials.parquet")


# --- no Ray needed ----------------------------------------------------------------------------

def test_dry_run_reports_table1_counts():
    out = sweep("grids/mnist_table1.yaml", "--dry-run", "--results", "/nonexistent-results")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.split()[:2] == ["EBGAN", "512"] for l in lines)
    assert any(l.split()[:2] == ["GAN", "6144"] for l in lines)
    subgrids = [l.split() for l in lines if l.strip().split("/")[0] in ("adam", "sgd") and "lr=" in l]
    assert len(subgrids) == 12 and all(s[1] == "512" for s in subgrids)


def test_packs_group_same_shapes_only():
    grid = load_grid(REPO / "grids" / "mnist_table1.yaml")
    packs = make_packs(pending_configs(grid, set(), None), pack_size=24)
    assert sum(len(p) for p in packs) == 6656
    assert all(len({c.shape_key() for c in p}) == 1 for p in packs)
    assert max(len(p) for p in packs) == 24
    gan_packs = [p for p in packs if p[0].family == "gan"]
    assert len(gan_packs) == 256  # 256 GAN architectures x 24 (dropoutD x optimD x optimG x lr)


def test_a_trials_rows_carry_provenance(data_dir, monkeypatch):
    """A real trial (one pack of the smoke grid, trained and scored), run without a Ray cluster:
    what it reports for the driver to write carries the provenance columns."""
    from ray import tune

    reported = []
    monkeypatch.setattr(tune, "report", reported.append)
    pack = make_packs(load_grid(REPO / "grids" / "smoke.yaml").configs, pack_size=8)[0]
    run_pack({"data_dir": str(data_dir), "classifier": None, "cpus": 1, "gpus": 0,
              "configs": [c.to_dict() for c in pack], "fail": None})
    rows = [r["result"] for r in reported[0]["rows"]]
    assert len(rows) == len(pack) and all(r["status"] in ("ok", "diverged") for r in rows)
    for row in rows:
        assert set(PROVENANCE) <= row.keys() and all(isinstance(row[c], str) and row[c] for c in PROVENANCE)
        assert row["classifierSha256"] == sha256_file(DEFAULT_WEIGHTS)


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


# --- real Ray Tune ------------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_resume_limit_and_injected_failure(tmp_path, data_dir):
    ids = [c.config_id for c in load_grid(REPO / "grids" / "smoke.yaml").configs]
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir]

    # 1. Kill the driver (and its embedded Ray) as soon as the first trial's row is written.
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", *map(str, common), "--max-concurrent", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = tmp_path / "smoke" / "trials.parquet"
    deadline = time.monotonic() + 240
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = table(tmp_path)
    assert 1 <= len(first) < 4 and set(first["status"]) == {"ok"}, "no finished row may be lost"

    # 2. Resume with --limit 1: exactly one more config is trained; earlier rows untouched.
    out = sweep(*common, "--limit", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    second = table(tmp_path)
    assert len(second) == len(first) + 1 and second["configId"].is_unique
    pd.testing.assert_frame_equal(second.iloc[: len(first)], first)

    # 3. The rest, with one trial failing on purpose: it is retried, then recorded as 'error'.
    victim = next(i for i in ids if i not in set(second["configId"]))
    out = sweep(*common, "--retries", "1", env={FAIL_ENV: victim})
    assert out.returncode == 0, out.stderr[-2000:]
    third = table(tmp_path).set_index("configId")
    assert len(third) == 4 and third.loc[victim, "status"] == "error"
    assert "injected failure" in third.loc[victim, "error"]
    assert (third.drop(victim)["status"] == "ok").all()
    assert "finished" in out.stdout and "4/4" in out.stdout  # per-trial lines and done/total

    # 4. Without the failure, only the errored config is run again.
    out = sweep(*common)
    final = table(tmp_path).set_index("configId")
    assert out.returncode == 0 and len(final) == 4 and (final["status"] == "ok").all()
    others = [i for i in ids if i != victim]
    assert (final.loc[others, "finishedAt"] == third.loc[others, "finishedAt"]).all()
    for col in ("nLayerG", "sizeD", "optimD", "optimG", "lr", "Iprime", "IprimePerEpoch", "fid", "samplesPath",
                *PROVENANCE):
        assert col in final.columns
    assert (final["classifierSha256"] == sha256_file(DEFAULT_WEIGHTS)).all()
    assert final[list(PROVENANCE)].notna().all().all()
    assert all((tmp_path / "smoke" / p).is_file() for p in final["samplesPath"])
    assert "4 done, 0 to run" in sweep(*common, "--dry-run").stdout


def test_trial_resources_are_sized_to_the_pack():
    from harness.config import TrainConfig
    from harness.sweep import trial_resources

    small = [TrainConfig(nLayerG=2, nLayerD=2, sizeG=400, sizeD=128)] * 8
    large = [TrainConfig(nLayerG=5, nLayerD=5, sizeG=3200, sizeD=1024)]
    # CPU: host memory grows with the pack's size and width; the CPUs are as asked
    r_small, r_large = trial_resources(small, 1, 0, None), trial_resources(large * 2, 1, 0, None)
    assert r_small["cpu"] == 1 and r_small["gpu"] == 0
    assert r_small["memory"] < r_large["memory"] < trial_resources(large * 8, 1, 0, None)["memory"]
    # GPU: small packs share a card at the asked fraction; a pack too big for that takes more
    assert trial_resources(small, 1, 0.25, 80e9) == {"cpu": 1, "gpu": 0.25}
    big = trial_resources(large * 24, 1, 0.25, 80e9)["gpu"]
    assert 0.25 < big <= 1 and (big * 8).is_integer()
    assert trial_resources(large * 24, 1, 0.25, None)["gpu"] == 0.25  # card size unknown: as asked


def test_unreachable_cluster_is_one_line_and_exit_2(tmp_path, data_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--address", f"127.0.0.1:{port}",
                timeout=60)
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_runs_on_an_existing_ray_cluster(tmp_path, data_dir):
    """`ray start --head`, then the sweep with --address: the cluster does the work."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run([*ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=120)
    try:
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir,
                    "--address", f"127.0.0.1:{port}", timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"cluster 127.0.0.1:{port}" in out.stdout
        assert len(table(tmp_path)) == 4 and set(table(tmp_path)["status"]) == {"ok"}
    finally:
        subprocess.run([*ray_bin, "stop", "--force"], capture_output=True, timeout=120)
