"""`--executor ray`: real Ray Tune runs (kill, resume, --limit, an injected failure, Ctrl-C), an
embedded Ray of the sweep's own, an existing cluster, a cluster the workers cannot join, a
cluster losing a node. (The driver's cost per trial, flat in the grid's size, is measured by
`python -m harness.bench --driver`.)"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from classifiers.convnet import DEFAULT_WEIGHTS, sha256_file
from harness.grid import load_grid
from harness.provenance import COLUMNS as PROVENANCE
from tests.helpers import REPO, free_port, ray_head, sweep, table, wait_for_rows

pytestmark = pytest.mark.xdist_group("ray")   # one worker runs them all, one after another, on one cluster


@pytest.fixture(scope="module")
def cluster():
    """One `ray start --head` for the tests that need a Ray but not an embedded one of their own."""
    with ray_head() as address:
        yield address


def test_the_searcher_hands_out_every_pack_once_with_its_label_and_resources():
    from ray.tune.experiment import Experiment
    from ray.tune.search import SearchGenerator

    from harness.executors.tune_parts import PackSearcher
    gen = SearchGenerator(PackSearcher([f"pack {i}" for i in range(5)], [{"cpu": 1, "i": i} for i in range(5)]))
    gen.add_configurations([Experiment("t", lambda config: None, num_samples=5)])
    configs = [gen.next_trial().config for _ in range(5)]
    assert [c["pack"] for c in configs] == list(range(5)) and configs[3]["trains"] == "pack 3"
    assert configs[4]["resources"] == {"cpu": 1, "i": 4} and gen.next_trial() is None


@pytest.mark.slow
def test_kill_resume_limit_and_injected_failure(tmp_path, data_dir, cluster):
    ids = [c.config_id for c in load_grid(REPO / "grids" / "smoke.yaml").configs]
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--address", cluster]

    # 1. On an existing cluster (`ray start --head`, --address), kill the driver as soon as the
    #    first trial's row is written.
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", *map(str, common), "--max-concurrent", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_rows(tmp_path / "smoke", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = table(tmp_path)
    assert 1 <= len(first) < 4 and set(first["status"]) == {"ok"}, "no finished row may be lost"

    # 2. Resume with --limit 1: exactly one more config is trained; earlier rows untouched. The
    #    dead driver's lock is taken over.
    out = sweep(*common, "--limit", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "took over the lock" in out.stdout and f"cluster {cluster}" in out.stdout   # the cluster did the work
    second = table(tmp_path)
    assert len(second) == len(first) + 1 and second["configId"].is_unique
    pd.testing.assert_frame_equal(second.iloc[: len(first)], first)

    # 3. The rest, with one trial failing on purpose: it is retried, then recorded as 'error' (exit 1).
    victim = next(i for i in ids if i not in set(second["configId"]))
    out = sweep(*common, "--retries", "1", "--inject-failure", victim)
    assert out.returncode == 1, out.stderr[-2000:]
    third = table(tmp_path).set_index("configId")
    assert len(third) == 4 and third.loc[victim, "status"] == "error"
    assert "injected failure" in third.loc[victim, "error"]
    assert third.loc[victim, list(PROVENANCE)].notna().all()     # where and with what it failed, from the worker
    assert (third.drop(victim)["status"] == "ok").all()
    assert "finished" in out.stdout and "4/4" in out.stdout  # per-trial lines and done/total
    assert "Trial task failed" not in out.stdout + out.stderr  # a failed trial is one line, not a traceback

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
    # Tune's state holds numbers, not rows or PNGs
    state = sum(f.stat().st_size for f in (tmp_path / "smoke" / "ray").rglob("experiment_state*.json"))
    assert 0 < state < 200_000


@pytest.mark.slow
def test_ctrl_c_ends_with_130_and_the_harness_resume_hint(tmp_path, data_dir, cluster):
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--max-concurrent", "1",
              "--address", cluster]
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", *map(str, common)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(tmp_path / "smoke", proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Resume with: python -m harness.sweep grids/smoke.yaml" in stdout
    assert "Tuner.restore" not in stdout + stderr
    assert 1 <= len(table(tmp_path)) <= 4


def test_the_embedded_ray_is_its_own_not_a_ray_start_recorded_on_the_machine(tmp_path, data_dir):
    """`ray start` records its address in <Ray's temp dir>/ray/ray_current_cluster, and a bare
    ray.init() joins it, even when that cluster is gone (it then waits for its GCS for minutes).
    Without --address the sweep starts a Ray of its own."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's sockets live below it
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")  # nobody there
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--limit", "1",
                    env={"RAY_TMPDIR": str(ray_tmp)}, timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "embedded, local" in out.stdout and len(table(tmp_path)) == 1
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_unreachable_cluster_is_one_line_and_exit_2(tmp_path, data_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--address", f"127.0.0.1:{port}",
                timeout=60)
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_preflight_names_the_auth_mismatch(tmp_path, data_dir):
    """A cluster started without token auth, a driver that uses a token: one line, exit 2, no rows."""
    with ray_head(env={"RAY_AUTH_MODE": "disabled"}) as address:
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--address", address,
                    "--preflight-timeout", "60", env={"RAY_AUTH_MODE": "token"}, timeout=300)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and "RAY_AUTH_MODE=disabled" in out.stderr
    assert not (tmp_path / "smoke" / "trials.parquet").exists() and not list((tmp_path / "smoke").glob("parts/*"))


LOSE_A_NODE = """
import subprocess, sys, time
from ray.cluster_utils import Cluster
from harness.results import ResultsTable
results, data_dir = sys.argv[1:]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
cluster.wait_for_nodes()
try:
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", "grids/smoke.yaml", "--results", results,
                             "--data-dir", data_dir, "--address", cluster.address, "--retries", "2"])
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and ResultsTable(results + "/smoke").df.empty:
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before its first row"
    cluster.remove_node(workers[0], allow_graceful=False)
    print("removed a worker node", flush=True)
    sys.exit(proc.wait(timeout=600))
finally:
    cluster.shutdown()
"""


@pytest.mark.slow
def test_a_worker_node_lost_mid_sweep_loses_no_row(tmp_path, data_dir):
    """A 0-CPU head and two 1-CPU worker nodes (ray.cluster_utils.Cluster); one worker node is
    removed after the first row: its trial is retried on the other node, and every row comes back
    ok. (In a process of its own, with one auth mode for the cluster and the driver.)"""
    out = subprocess.run([sys.executable, "-c", LOSE_A_NODE, str(tmp_path), str(data_dir)], cwd=REPO,
                         capture_output=True, text=True, timeout=900, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "removed a worker node" in out.stdout
    df = table(tmp_path)
    assert len(df) == 4 and set(df["status"]) == {"ok"}


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_sweep_is_one_line_and_exit_2_with_ray_too(small_disk, data_dir, cluster):
    from tests.test_sweep import disk_fills_up_mid_sweep
    disk_fills_up_mid_sweep(small_disk, data_dir, "--address", cluster)
