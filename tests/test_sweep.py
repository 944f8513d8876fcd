"""The sweep: dry-run counts, bad input, planning at Table 1's scale, the lock, the exit codes,
the local executor, and real Ray Tune runs (resume, kill, injected failure, a cluster losing a
node, a cluster the workers cannot join, a full disk)."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from classifiers.convnet import DEFAULT_WEIGHTS, sha256_file
from harness.config import TrainConfig
from harness.grid import GridError, load_grid
from harness.results import ResultsTable
from harness.sweep import make_packs, pending_configs, plan_packs, resume_command
from harness.provenance import COLUMNS as PROVENANCE

REPO = Path(__file__).resolve().parents[1]


def sweep(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.sweep", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def table(results: Path, grid: str = "smoke") -> pd.DataFrame:
    return ResultsTable(results / grid).df


def wait_for_rows(folder: Path, proc: subprocess.Popen, n: int = 1, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.exists() and len(ResultsTable(folder).df) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {n} rows in {folder} (driver exit {proc.poll()})")


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


def test_plan_puts_the_costliest_packs_first_and_injected_failures_alone():
    from harness.costmodel import Rates
    grid = load_grid(REPO / "grids" / "mnist_table1.yaml")
    rates = Rates("cpu", step_overhead_s=1e-4, flops_per_s=4e10, score_s_per_sample=1e-4, trial_overhead_s=1)
    victim = grid.configs[5].config_id
    packs = plan_packs(grid.configs, 8, rates, alone=frozenset({victim}))
    costs = [rates.pack_seconds(p) for p in packs]
    assert costs == sorted(costs, reverse=True)
    assert [[c] for c in grid.configs if c.config_id == victim][0] in packs
    assert sum(map(len, packs)) == 6656


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


def test_a_trials_rows_carry_provenance(data_dir):
    """A real trial (one pack of the smoke grid, trained and scored), run in this process: the rows
    it sends the driver carry the provenance columns."""
    from harness.trial import TrialEnv, run_trial

    pack = make_packs(load_grid(REPO / "grids" / "smoke.yaml").configs, pack_size=8)[0]
    rows = [r["result"] for r in run_trial(pack, TrialEnv(str(data_dir), None))]
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


def test_resume_command_drops_one_off_options():
    argv = ["grids/smoke.yaml", "--limit", "3", "--inject-failure=abc", "--results", "my results"]
    assert resume_command(argv) == "python -m harness.sweep grids/smoke.yaml --results 'my results'"


# --- the driver's cost per trial does not grow with the grid ------------------------------------

def _driver_seconds_per_trial(n_packs: int, folder: Path) -> float:
    """What the driver does per trial, through Ray Tune's own trial generation (no Ray started):
    plan the packs, let Tune's SearchGenerator create every trial from PackSearcher's
    suggestions (this is where a grid_search over specs deep-copied every spec per trial), and
    write each trial's row with the sweep's RowWriter (a part of the results table each)."""
    import contextlib
    import io

    from ray.tune.experiment import Experiment
    from ray.tune.search import SearchGenerator

    from harness.executors.raytune import _tune_classes
    from harness.grid import Grid
    from harness.sweep import Progress, RowWriter, error_result
    configs = [TrainConfig(sizeG=8 + i, sizeD=8, trainImages=64, epochs=1) for i in range(n_packs)]
    grid = Grid(name="g", path=folder / "g.yaml", description="", configs=configs, settings={})
    t = time.perf_counter()
    packs = plan_packs(configs, 8, None)
    gen = SearchGenerator(_tune_classes().PackSearcher([str(i) for i in range(len(packs))], [{"cpu": 1}] * len(packs)))
    gen.add_configurations([Experiment("bench", lambda config: None, num_samples=len(packs))])
    writer = RowWriter(grid, ResultsTable(folder / f"t{n_packs}"), packs,
                       Progress(total=n_packs, already=0, costs=[1.0] * n_packs, projected=None))
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in packs:
            trial = gen.next_trial()
            i = trial.config["pack"]
            writer.finished(i, [{"configId": c.config_id, "result": error_result("x"), "png": None} for c in packs[i]])
    assert len(ResultsTable(folder / f"t{n_packs}").df) == n_packs
    return (time.perf_counter() - t) / n_packs


def test_driver_time_per_trial_does_not_grow_with_the_grid(tmp_path):
    small = min(_driver_seconds_per_trial(133, tmp_path / f"s{r}") for r in range(3))
    large = min(_driver_seconds_per_trial(1330, tmp_path / f"l{r}") for r in range(2))
    # linear total work keeps the per-trial time flat; the old quadratic planning was ~10x slower per trial here
    assert large < 3 * small, (small, large)


# --- the lock -----------------------------------------------------------------------------------

def test_second_driver_on_a_folder_exits_2_naming_the_holder(tmp_path, data_dir):
    from harness.lock import FolderLock
    with FolderLock(tmp_path / "smoke"):
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert f"pid {os.getpid()}" in out.stderr and socket.gethostname() in out.stderr and "since" in out.stderr
    assert not (tmp_path / "smoke" / "trials.parquet").exists()


def test_a_dead_drivers_lock_is_taken_over_with_a_note(tmp_path):
    from harness.lock import LOCK_FILE, FolderLock
    code = f"from harness.lock import FolderLock; FolderLock({str(tmp_path)!r}).acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)  # dies holding it
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    with FolderLock(tmp_path) as lock:
        assert lock.note and f"pid {record['pid']}" in lock.note
    with FolderLock(tmp_path) as lock:  # released properly: no note
        assert lock.note is None


def test_rows_written_concurrently_are_all_kept(tmp_path):
    """Two writers add parts while each compacts: every row survives the merges."""
    code = """
import sys
from harness.results import ResultsTable
t = ResultsTable(sys.argv[1])
for i in range(40):
    t.add([{"configId": f"{sys.argv[2]}{i}", "status": "ok", "Iprime": float(i)}])
    if i % 7 == 0:
        t.compact()
t.compact()
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), w], cwd=REPO) for w in "ab"]
    reads = 0
    while any(p.poll() is None for p in procs):   # a reader meanwhile sees whole tables only
        ResultsTable(tmp_path)
        reads += 1
    assert all(p.wait() == 0 for p in procs) and reads
    df = ResultsTable(tmp_path).df
    assert sorted(df["configId"]) == sorted(f"{w}{i}" for w in "ab" for i in range(40))
    assert not list((tmp_path / "parts").glob("*.parquet"))


def test_a_part_left_by_a_killed_compaction_is_not_replayed(tmp_path):
    t = ResultsTable(tmp_path)
    t.add([{"configId": "x", "status": "error", "Iprime": float("nan")}])
    old_part = next((tmp_path / "parts").glob("*.parquet")).read_bytes()
    t.add([{"configId": "x", "status": "ok", "Iprime": 1.0}])
    names = sorted(p.name for p in (tmp_path / "parts").glob("*.parquet"))
    t.compact()
    # a compaction killed before its deletes would leave merged parts behind
    (tmp_path / "parts" / names[0]).write_bytes(old_part)
    assert ResultsTable(tmp_path).df.set_index("configId").loc["x", "status"] == "ok"
    t.add([{"configId": "y", "status": "ok", "Iprime": 2.0}])
    t.compact()   # the next compaction deletes the leftover, and the row stays right
    assert [p.name for p in (tmp_path / "parts").glob("*.parquet")] == []
    assert ResultsTable(tmp_path).df.set_index("configId").loc["x", "status"] == "ok"


# --- the local executor (no Ray) -----------------------------------------------------------------

@pytest.mark.slow
def test_local_executor_runs_the_smoke_grid_without_ray(tmp_path, data_dir):
    code = ("import sys; sys.modules['ray'] = None  # any import of Ray fails\n"
            "from harness.sweep import main; rc = main(sys.argv[1:])\n"
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules if sys.modules[m]), 'Ray imported'\n"
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


def test_gpu_pack_size_fills_the_trials_share_of_the_card():
    from harness.packed import pack_memory
    from harness.sweep import TRIAL_OVERHEAD_BYTES, gpu_pack_size
    small = TrainConfig(nLayerG=2, nLayerD=2, sizeG=400, sizeD=128)
    large = TrainConfig(nLayerG=5, nLayerD=5, sizeG=3200, sizeD=1024)
    h200 = 139 * 2**30
    assert gpu_pack_size(h200, 0.25)(small) == 96                     # the largest measured pack
    k = gpu_pack_size(h200, 0.25)(large)
    assert 1 <= k < 96 and pack_memory(large, k) <= 0.8 * h200 / 4 - TRIAL_OVERHEAD_BYTES < pack_memory(large, k + 1)
    assert gpu_pack_size(h200, 1.0)(large) > k                         # a whole card holds more
    assert gpu_pack_size(None, 0.25)(large) == 24                      # card unknown: Table 1's group


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


# --- real Ray Tune ------------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_resume_limit_and_injected_failure(tmp_path, data_dir):
    ids = [c.config_id for c in load_grid(REPO / "grids" / "smoke.yaml").configs]
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir]

    # 1. Kill the driver (and its embedded Ray) as soon as the first trial's row is written.
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
    assert "took over the lock" in out.stdout
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
def test_ctrl_c_ends_with_130_and_the_harness_resume_hint(tmp_path, data_dir):
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--max-concurrent", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", *map(str, common)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(tmp_path / "smoke", proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Resume with: python -m harness.sweep grids/smoke.yaml" in stdout
    assert "Tuner.restore" not in stdout + stderr
    assert 1 <= len(table(tmp_path)) <= 4


def test_trial_resources_are_sized_to_the_pack():
    from harness.sweep import trial_resources

    small = [TrainConfig(nLayerG=2, nLayerD=2, sizeG=400, sizeD=128)] * 8
    large = [TrainConfig(nLayerG=5, nLayerD=5, sizeG=3200, sizeD=1024)]
    # CPU: host memory grows with the pack's size and width; the CPUs are as asked
    r_small, r_large = trial_resources(small, 1, 0, None), trial_resources(large * 2, 1, 0, None)
    assert r_small["cpu"] == 1 and r_small["gpu"] == 0
    assert r_small["memory"] < r_large["memory"] < trial_resources(large * 8, 1, 0, None)["memory"]
    # ... in a few sizes (powers of sqrt 2 GiB), so that a worker process can serve many packs
    sizes = {trial_resources([TrainConfig(sizeG=g, sizeD=d)] * 8, 1, 0, None)["memory"]
             for g in (400, 800, 1600) for d in (128, 256, 512)}
    assert len(sizes) <= 3
    # GPU: small packs share a card at the asked fraction; a pack too big for that takes more
    assert trial_resources(small, 1, 0.25, 80e9) == {"cpu": 1, "gpu": 0.25}
    big = trial_resources(large * 24, 1, 0.25, 80e9)["gpu"]
    assert 0.25 < big <= 1 and (big * 8).is_integer()
    assert trial_resources(large * 24, 1, 0.25, None)["gpu"] == 0.25  # card size unknown: as asked


def test_the_embedded_ray_is_its_own_not_a_ray_start_recorded_on_the_machine(tmp_path, data_dir):
    """`ray start` records its address in <Ray's temp dir>/ray/ray_current_cluster, and a bare
    ray.init() joins it, even when that cluster is gone (it then waits for its GCS for minutes).
    Without --address the sweep starts a Ray of its own."""
    import shutil
    import tempfile
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's sockets live below it
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{_free_port()}")  # nobody there
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(env: dict | None = None):
    """A `ray start --head --block` cluster of our own on a free port: stopping it (SIGTERM) ends
    its processes only, not every Ray on the machine as `ray stop` would."""
    from harness.executors.raytune import check_reachable
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_reachable(f"127.0.0.1:{port}", timeout=1)
                break
            except ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        time.sleep(3)  # the head's raylet registers after the GCS answers
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=120)


@pytest.mark.slow
def test_runs_on_an_existing_ray_cluster(tmp_path, data_dir):
    """`ray start --head`, then the sweep with --address: the cluster does the work."""
    with ray_head() as address:
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--address", address,
                    timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"cluster {address}" in out.stdout
    assert len(table(tmp_path)) == 4 and set(table(tmp_path)["status"]) == {"ok"}


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


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of its own (root only): remount it with `small_disk.size(...)`."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)],
                                           capture_output=True).returncode:
        pytest.skip("mounting a small file system needs root")

    class Disk:
        path = folder

        @staticmethod
        def size(size: str) -> None:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

        @staticmethod
        def fill() -> None:
            subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=16k"], capture_output=True)
    yield Disk
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("size", ["60k", "1m"])
def test_a_results_disk_too_small_is_refused_at_the_start(small_disk, size, data_dir):
    small_disk.size(size)
    out = sweep("grids/smoke.yaml", "--results", small_disk.path, "--data-dir", data_dir, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and str(small_disk.path) in out.stderr and "MB free" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_disk_that_fills_up_mid_sweep_is_one_line_and_exit_2(small_disk, executor, data_dir):
    proc = subprocess.Popen([sys.executable, "-m", "harness.sweep", "grids/smoke.yaml", "--results", str(small_disk.path),
                             "--data-dir", str(data_dir), "--executor", executor, "--max-concurrent", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
