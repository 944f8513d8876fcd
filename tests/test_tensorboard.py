"""The TensorBoard view of a sweep (harness/tensorboard.py): what a row's run holds, read back
with TensorBoard's own reader; written once; by the sweep as rows land and by the command from a
table; and served by a real `tensorboard` on localhost."""
import errno
import io
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from harness.engine import TrainResult
from harness.grid import load_grid
from harness.lock import FolderLock
from harness.results import ResultsTable
from harness.rows import Progress, RowWriter, row_for
from harness.tensorboard import LOGDIR, RunLogs, event_file_name, main, run_name, write_table
from tests.helpers import REPO, free_port, sweep, table

SMOKE_IDS = {"74e7e1dd2603d26c", "a10fa5561f799433", "f46e147e2e3903e9", "4345156275d0bb8c"}


def png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 8), shade).save(buf, format="PNG")
    return buf.getvalue()


def result(status: str = "ok", iprime: float = 5.0, per_epoch=(1.0, 2.0, 3.0), **extra) -> dict:
    """A trainer's result as the sink receives it: a TrainResult's row."""
    ok = status == "ok"
    nan = float("nan")
    return TrainResult(status=status, Iprime=iprime if ok else nan, IprimePerEpoch=list(per_epoch),
                       inceptionScore=4.0 if ok else nan, fid=30.0 if ok else nan, classHist=[0] * 10,
                       IprimeSetA=nan, IprimeSetB=nan, lossD=0.5 if ok else nan, lossG=1.5 if ok else nan,
                       wallTime=12.0, stepsPerSec=100.0, steps=90, gSteps=90, device="cpu", **extra).to_row()


@pytest.fixture
def grid_rows(tmp_path):
    """Rows of a GAN, an EBGAN-PT and a BEGAN config (its M per epoch) and a ring8 one (its own
    measures), as row_for writes them, with their pictures in samples/."""
    smoke = load_grid(REPO / "grids" / "smoke.yaml").configs      # GAN adam/sgd, GAN sgd/adam, EBGAN, EBGAN-PT
    fam = {c.family: c for c in load_grid(REPO / "grids" / "smoke_families.yaml").configs}
    ring = load_grid(REPO / "grids" / "smoke_ring8.yaml").configs[0]
    cfgs = [smoke[0], smoke[3], fam["began"], ring]
    results = [result(), result(iprime=7.0), result(epochMetrics={"M": [0.3, 0.2, 0.1]}),
               result(extraScores={"modesCaptured": 6.0, "highQualityFrac": 0.5, "modeKL": 0.1})]
    rows = []
    for i, (cfg, res) in enumerate(zip(cfgs, results)):
        (tmp_path / "samples").mkdir(exist_ok=True)
        (tmp_path / "samples" / f"{cfg.config_id}.png").write_bytes(png(40 * i))
        rows.append(row_for(cfg, "g", {**res, "samplesPath": f"samples/{cfg.config_id}.png"}))
    return rows


def read_run(run) -> dict:
    """A run as TensorBoard's own reader sees it: scalars, hyperparameters, status, picture, text."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    start = metadata.parse_session_start_info_plugin_data(
        acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
    end = metadata.parse_session_end_info_plugin_data(
        acc.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content)
    hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    return {"scalars": {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]},
            "hparams": hparams, "end": api_pb2.Status.Name(end.status),
            "images": {t: [i.encoded_image_string for i in acc.Images(t)] for t in tags["images"]},
            "text": acc.Tensors("row")[0].tensor_proto.string_val[0].decode()}


def snapshot(folder) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def test_a_row_becomes_a_run_with_its_settings_scores_curves_and_picture(tmp_path, grid_rows):
    logs = RunLogs(tmp_path / LOGDIR, tmp_path)
    assert all(logs.write(row) for row in grid_rows)
    gan, ebgan_pt, began, ring = (read_run(tmp_path / LOGDIR / run_name(r)) for r in grid_rows)

    assert gan["hparams"] == {"family": "gan", "model": "GAN", "subgrid": "adam/sgd/lr=0.001", "dataset": "mnist",
                              "nLayerG": 2, "nLayerD": 2, "sizeG": 32, "sizeD": 16, "dropoutD": True,
                              "optimD": "adam", "optimG": "sgd", "lr": 0.001, "seed": 0, "status": "ok"}
    assert ebgan_pt["hparams"]["margin"] == 10 and ebgan_pt["hparams"]["wPT"] == pytest.approx(0.1)
    assert began["hparams"]["gamma"] == 0.5 and "margin" not in began["hparams"]
    assert gan["scalars"]["IprimePerEpoch"] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert gan["scalars"]["Iprime"] == [(3, 5.0)] and ebgan_pt["scalars"]["Iprime"] == [(3, 7.0)]
    assert gan["scalars"]["fid"] == [(3, 30.0)] and gan["scalars"]["lossG"] == [(3, 1.5)]
    assert began["scalars"]["MPerEpoch"] == [(1, pytest.approx(0.3)), (2, pytest.approx(0.2)), (3, pytest.approx(0.1))]
    assert ring["scalars"]["modesCaptured"] == [(3, 6.0)] and "modesCaptured" not in gan["scalars"]
    assert gan["images"]["samples"] == [(tmp_path / grid_rows[0]["samplesPath"]).read_bytes()]
    assert gan["end"] == "STATUS_SUCCESS" and "| epochs | 1.0 |" in gan["text"]


def test_diverged_and_error_runs_carry_their_status_and_a_retry_replaces_the_error(tmp_path, grid_rows):
    logs = RunLogs(tmp_path / LOGDIR, tmp_path)
    gan_cfg = load_grid(REPO / "grids" / "smoke.yaml").configs[0]
    diverged = {**grid_rows[1], **result("diverged", per_epoch=[1.0, float("nan")]), "samplesPath": None}
    error = row_for(gan_cfg, "g", TrainResult.failed("RuntimeError: out of memory"))
    assert logs.write(diverged) and logs.write(error)
    run = read_run(tmp_path / LOGDIR / run_name(diverged))
    assert run["hparams"]["status"] == "diverged" and run["end"] == "STATUS_SUCCESS"
    assert run["scalars"] == {"IprimePerEpoch": [(1, 1.0)]} and run["images"] == {}   # nothing final, no picture
    run = read_run(tmp_path / LOGDIR / run_name(error))
    assert run["hparams"]["status"] == "error" and run["end"] == "STATUS_FAILURE"
    assert run["scalars"] == {} and "RuntimeError: out of memory" in run["text"]

    before = snapshot(tmp_path / LOGDIR)
    assert not logs.write(diverged) and not logs.write(error)       # the same rows: nothing rewritten
    assert snapshot(tmp_path / LOGDIR) == before
    retried = {**grid_rows[0], "finishedAt": "2099-01-01T00:00:00+00:00"}   # the error config, trained since
    assert retried["configId"] == error["configId"] and logs.write(retried)
    folder = tmp_path / LOGDIR / run_name(error)
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert read_run(folder)["hparams"]["status"] == "ok"


def test_a_run_left_incomplete_is_written_again(tmp_path, grid_rows):
    logs = RunLogs(tmp_path / LOGDIR, tmp_path)
    run = tmp_path / LOGDIR / run_name(grid_rows[0])
    run.mkdir(parents=True)
    (run / ".pending").write_bytes(b"\x00" * 7)      # a writer killed before its rename
    assert not logs.has(grid_rows[0]) and logs.write(grid_rows[0]) and logs.has(grid_rows[0])
    assert [p.name for p in run.iterdir()] == [event_file_name(grid_rows[0])]
    assert read_run(run)["scalars"]["Iprime"] == [(3, 5.0)]


def test_the_command_writes_a_table_once_and_not_under_a_running_sweep(tmp_path, grid_rows, capsys):
    folder = tmp_path / "g"
    ResultsTable(folder).add(grid_rows[:2])
    ResultsTable(folder).add(grid_rows[2:])          # a second part: a table not compacted yet
    (folder / "samples").mkdir()
    for row in grid_rows:
        (folder / row["samplesPath"]).write_bytes((tmp_path / row["samplesPath"]).read_bytes())
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"g: 4 runs written, 0 already there; view them: tensorboard --logdir {folder / LOGDIR}" in out
    before = snapshot(folder / LOGDIR)
    assert main([str(folder)]) == 0 and "g: 0 runs written, 4 already there" in capsys.readouterr().out
    assert snapshot(folder / LOGDIR) == before
    assert write_table(folder, tmp_path / "elsewhere") == (4, 0)

    with FolderLock(folder):                          # a sweep is writing this folder
        assert main([str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: ") and "\n" not in err and "pass --logdir" in err
    assert main([str(tmp_path / "nothing")]) == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("error", [ValueError("a bad value"), PermissionError(errno.EACCES, "Permission denied"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_a_failing_tensorboard_writer_leaves_the_rows(tmp_path, monkeypatch, capsys, error):
    """The rows are what counts: a run that cannot be written turns the logs off with a line
    saying how to write them later; a full disk stops the sweep, as it does for rows."""
    grid = load_grid(REPO / "grids" / "smoke.yaml")
    cfg = grid.configs[0]
    writer = RowWriter(grid, ResultsTable(tmp_path / "smoke"), [[cfg]],
                       Progress(total=1, already=0, costs=[1.0], projected=None), tensorboard=True)

    def broken(self, row):
        raise error
    monkeypatch.setattr(RunLogs, "write", broken)
    writer.finished(0, [{"configId": cfg.config_id, "result": result(), "png": None}])
    assert len(table(tmp_path)) == 1
    out = capsys.readouterr().out
    if getattr(error, "errno", None) == errno.ENOSPC:
        assert writer.stop_reason is not None and "no space left" in str(writer.stop_reason)
        assert "warning" not in out
        return
    assert writer.stop_reason is None and writer.board is None
    assert f"warning: TensorBoard logs turned off: {type(error).__name__}: {error}" in out
    assert f"python -m harness.tensorboard {tmp_path / 'smoke'}" in out


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(LOCAL.open(request, timeout=10).read())


LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # localhost only: no proxy


def served_runs(base: str, server: subprocess.Popen, n: int, timeout: float = 120) -> list[str]:
    """The server's runs once it lists n of them (it loads the log folder in the background)."""
    deadline, runs = time.monotonic() + timeout, []
    while time.monotonic() < deadline and server.poll() is None:
        try:
            runs = json.loads(LOCAL.open(f"{base}/data/runs", timeout=5).read())
            if len(runs) >= n:
                return runs
        except OSError:
            pass  # not listening yet
        time.sleep(1)
    raise AssertionError(f"tensorboard served {runs} (exit {server.poll()})")


@pytest.mark.slow
def test_a_smoke_sweep_is_served_by_a_real_tensorboard(tmp_path, data_dir):
    """--no-tensorboard writes none; a resumed sweep writes its new configs' runs; the command
    writes the rest from the table; a real tensorboard on localhost serves the 4 configs with
    their settings as HParams and their scores as metrics."""
    common = ["grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local"]
    out = sweep(*common, "--limit", "2", "--no-tensorboard", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (tmp_path / "smoke" / LOGDIR).exists() and "TensorBoard" not in out.stdout
    first = set(table(tmp_path)["configId"])
    out = sweep(*common, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    logdir = tmp_path / "smoke" / LOGDIR
    assert f"TensorBoard: tensorboard --logdir {logdir}" in out.stdout
    rows = table(tmp_path).set_index("configId")
    swept = {p.parent.name for p in logdir.rglob("events.out.tfevents.*")}
    assert swept == set(rows.index) - first and len(swept) == 2      # the resumed sweep's configs only
    for config in swept:
        run = read_run(next(logdir.rglob(config)))
        assert run["hparams"]["nLayerG"] == rows.loc[config, "nLayerG"] and run["hparams"]["status"] == "ok"
        assert run["scalars"]["IprimePerEpoch"] and run["scalars"]["Iprime"][0][1] == pytest.approx(
            rows.loc[config, "Iprime"])

    cli = subprocess.run([sys.executable, "-m", "harness.tensorboard", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "smoke: 2 runs written, 2 already there" in cli.stdout

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port",
                               str(port), "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        runs = served_runs(base, server, 4)
        assert {r.rsplit("/", 1)[1] for r in runs} == set(rows.index) == SMOKE_IDS
        experiment = post(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        served = {h["name"] for h in experiment["hparamInfos"]}
        assert {"nLayerG", "nLayerD", "sizeG", "sizeD", "optimD", "optimG", "lr", "dropoutD", "family", "subgrid",
                "margin", "wPT", "status"} <= served
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"Iprime", "fid", "IprimePerEpoch", "lossD"} <= metrics
        groups = post(f"{base}/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100, "aggregationType": "AGGREGATION_AVG",
            "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"]})
        sessions = {g["name"].rsplit("/", 1)[1]: g for g in groups["sessionGroups"]}
        assert set(sessions) == SMOKE_IDS
        for config, group in sessions.items():
            row = rows.loc[config]
            for name in ("nLayerG", "nLayerD", "sizeG", "sizeD", "lr", "optimD", "optimG", "model", "subgrid"):
                assert group["hparams"][name] == row[name], (config, name)
            iprime = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}["Iprime"]
            assert iprime == pytest.approx(row["Iprime"], rel=1e-6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        log.close()
