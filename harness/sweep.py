"""The main job: run a grid file's configs as Ray Tune trials, resumably.

    python -m harness.sweep grids/mnist_table1.yaml [--results DIR] [--data-dir DIR]
        [--address ADDR] [--gpus-per-trial F] [--cpus-per-trial N] [--max-concurrent N]
        [--pack-size N] [--limit N] [--dry-run]

grid file -> configs still to run (the results table says which are done) -> packs of
same-shape configs -> one Ray Tune trial per pack -> each trial trains and scores its
configs and reports one row per config -> the driver writes the rows (and sample PNGs)
into RESULTS/<grid>/ atomically as trials finish. Running the same command again runs only
what is missing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from classifiers.convnet import ClassifierError, load_classifier
from harness.atomic import write_atomic
from harness.config import TrainConfig
from harness.data import DataError, gan_training_set, resolve_data_dir
from harness.grid import Grid, GridError, load_grid
from harness.metrics import Scorer, Scores
from harness.models import linear_weights
from harness.packed import pack_memory, train_pack
from harness.provenance import provenance
from harness.results import ResultsError, ResultsTable
from harness.train import pick_device, train

FAIL_ENV = "HARNESS_INJECT_FAILURE"  # test hook: a config id whose trial raises (to test retries/errors)
GPU_PACK_SIZE = 24  # default --pack-size with GPUs


def cpu_pack_size(cfg: TrainConfig) -> int:
    """Default --pack-size on CPU, per architecture, from `python -m harness.bench` (2-core CPU,
    1 thread per trial, three runs; model-steps/s over the reference trainer's):
        G2x400 D2x128   (0.6M weights): packs of 2 0.83-0.92x, 8 0.96-1.11x, 24 0.99-1.15x
        G3x1600 D3x512  (5.2M):         packs of 2 1.07-1.21x, 8 1.17-1.23x, 24 1.17-1.20x
        G5x3200 D5x1024 (38M):          packs of 2 1.44-1.45x, 8 1.20-1.38x (5 GB), 24 needs >20 GB
    so packs of 8, and 2 for models of more than 16M weights (G's and D's Linear layers)."""
    return 2 if sum(linear_weights(cfg)) > 16_000_000 else 8


TRIAL_OVERHEAD_BYTES = 1 << 30  # the data set, the classifier, scoring, the Python process


def trial_resources(pack: list[TrainConfig], cpus: float, gpus: float, gpu_memory: float | None) -> dict:
    """Ray resources of one trial, sized to its pack: CPUs as asked, host memory for the pack on
    CPU; on a GPU at least the fraction of the card the pack's memory needs (in 1/8 steps)."""
    need = pack_memory(pack[0], len(pack)) + TRIAL_OVERHEAD_BYTES
    if gpus > 0:
        if gpu_memory:
            gpus = min(1.0, max(gpus, math.ceil(8 * need / gpu_memory) / 8))
        return {"cpu": cpus, "gpu": gpus}
    return {"cpu": cpus, "gpu": 0, "memory": need}


# --- planning (no Ray needed) ---------------------------------------------------------------

def make_packs(configs: list[TrainConfig], pack_size: int | Callable[[TrainConfig], int]) -> list[list[TrainConfig]]:
    """Group configs of identical tensor shapes, at most `pack_size` per pack (a number, or one per
    shape: `pack_size(config)`), in grid order. Seeds and optimizers may mix in a pack."""
    groups: dict[tuple, list[TrainConfig]] = {}
    for cfg in configs:
        groups.setdefault(cfg.shape_key(), []).append(cfg)
    sizes = {key: pack_size(g[0]) if callable(pack_size) else pack_size for key, g in groups.items()}
    return [g[i:i + sizes[key]] for key, g in groups.items() for i in range(0, len(g), sizes[key])]


def pending_configs(grid: Grid, done: set[str], limit: int | None) -> list[TrainConfig]:
    todo = [c for c in grid.configs if c.config_id not in done]
    return todo[:limit] if limit is not None else todo


def row_for(cfg: TrainConfig, grid_name: str, result: dict) -> dict:
    """One results-table row: the paper's settings, identities, then the trainer's outputs."""
    return {**cfg.to_dict(), "model": cfg.model, "subgrid": cfg.subgrid, "configId": cfg.config_id,
            "settingsId": cfg.settings_id, "grid": grid_name, **result,
            "finishedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def pack_label(pack: list[TrainConfig]) -> str:
    """What a trial trains, for Ray's status table: 'GAN G5x1600 D2x1024 (24 configs)'."""
    c = pack[0]
    what = f"{c.model} G{c.nLayerG}x{c.sizeG} D{c.nLayerD}x{c.sizeD}"
    return what + (f" {c.subgrid} seed {c.seed}" if len(pack) == 1 else f" ({len(pack)} configs)")


def error_result(message: str) -> dict:
    return dict(status="error", error=message, IprimePerEpoch=[], lossD=math.nan, lossG=math.nan,
                wallTime=math.nan, stepsPerSec=math.nan, steps=0, device="", host="", samplesPath=None,
                **Scores.missing().to_dict())


def dry_run_report(grid: Grid, done: set[str]) -> str:
    ids = {c.config_id for c in grid.configs}
    lines = [f"{grid.name}: {len(grid.configs)} configs x seeds ({grid.path}); "
             f"{len(ids & done)} done, {len(ids - done)} to run"]

    def count(label: str, cfgs: list[TrainConfig]) -> str:
        n_done = sum(c.config_id in done for c in cfgs)
        return f"  {label:<28} {len(cfgs):>6}   done {n_done:>6}"

    for family in ("ebgan", "gan"):
        cfgs = [c for c in grid.configs if c.family == family]
        if cfgs:
            lines.append(count(family.upper(), cfgs))
    subgrids = grid.gan_subgrids()
    if subgrids:
        lines.append("GAN optimizer subgrids (optimD/optimG/lr):")
        for sub in subgrids:
            lines.append(count(sub, [c for c in grid.configs if c.family == "gan" and c.subgrid == sub]))
    return "\n".join(lines)


# --- one trial: runs on a Ray worker -------------------------------------------------------

def run_pack(spec: dict) -> None:
    """Ray Tune trainable: train and score the configs of one pack, report their rows."""
    import torch
    from ray import tune

    torch.set_num_threads(max(1, int(spec["cpus"])))
    configs = [TrainConfig.from_dict(d) for d in spec["configs"]]
    if spec.get("fail"):
        raise RuntimeError(f"injected failure ({FAIL_ENV}) for {spec['fail']}")
    device = pick_device("cuda" if spec["gpus"] > 0 and torch.cuda.is_available() else "cpu")
    data = gan_training_set(spec["data_dir"], configs[0].trainImages, device)
    scorer = Scorer(spec["classifier"], spec["data_dir"], device)
    with tempfile.TemporaryDirectory() as tmp:
        if len(configs) == 1:
            results = [train(configs[0], data, scorer, Path(tmp), device)]
        else:
            results = train_pack(configs, data, scorer, Path(tmp), device)
        rows = []
        for cfg, res in zip(configs, results):
            row = {**res.to_row(), "packSize": len(configs)}  # what the row's timings mean
            # provenance (issue 9): which classifier scored the row, code and library versions, device
            row.update(provenance(device, scorer.weights_sha))
            png = Path(row.pop("samplesPath")).read_bytes() if row["samplesPath"] else None
            rows.append({"configId": cfg.config_id, "result": row, "png": png})
    ok = [r["result"]["Iprime"] for r in rows if r["result"]["status"] == "ok"]
    tune.report({"configs": len(rows), "best_Iprime": max(ok, default=float("nan")), "rows": rows})


# --- the driver ------------------------------------------------------------------------------

@dataclass
class Progress:
    """'done / total, ETA' bookkeeping for the trials of this invocation."""
    total: int
    already: int
    started: float
    finished: int = 0

    def line(self) -> str:
        done = self.already + self.finished
        elapsed = time.monotonic() - self.started
        left = self.total - done
        if self.finished:
            eta = dt.timedelta(seconds=round(elapsed / self.finished * left))
            return f"[{done}/{self.total} done, {100 * done / self.total:.1f}%] elapsed {dt.timedelta(seconds=round(elapsed))}, ETA {eta}"
        return f"[{done}/{self.total} done]"


def make_callback(grid: Grid, table: ResultsTable, configs: dict[str, TrainConfig], progress: Progress):
    from ray.tune import Callback

    class WriteRows(Callback):
        """Writes each finished trial's rows and PNGs into the results folder, atomically."""

        def _write(self, rows: list[tuple[TrainConfig, dict]]) -> None:
            table.add([row_for(cfg, grid.name, res) for cfg, res in rows])
            progress.finished += len(rows)
            for cfg, res in rows:
                score = f"I'={res['Iprime']:.3f}" if res["status"] == "ok" else res["status"]
                if res["status"] == "error":
                    score += f" ({res['error']})"
                print(f"finished {cfg.config_id} {cfg.model} nLayerG={cfg.nLayerG} nLayerD={cfg.nLayerD} "
                      f"sizeG={cfg.sizeG} sizeD={cfg.sizeD} dropoutD={cfg.dropoutD} {cfg.subgrid} "
                      f"seed={cfg.seed}: {score}", flush=True)
            print(progress.line(), flush=True)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            rows = []
            for r in result.get("rows", []):
                res = r["result"]
                if r["png"] is not None:
                    rel = Path("samples") / f"{r['configId']}.png"
                    write_atomic(table.folder / rel, r["png"])
                    res["samplesPath"] = str(rel)
                rows.append((configs[r["configId"]], res))
            self._write(rows)

        def on_trial_error(self, iteration, trials, trial, **info):
            message = "trial failed"
            if trial.error_file and Path(trial.error_file).exists():
                lines = [l for l in Path(trial.error_file).read_text().strip().splitlines() if l.strip()]
                message = lines[-1] if lines else message
            ids = [TrainConfig.from_dict(d).config_id for d in trial.config["spec"]["configs"]]
            self._write([(configs[i], error_result(message[:500])) for i in ids])

    return WriteRows()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", "ray://...": left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port}: {e}") from None


def run_sweep(grid: Grid, args: argparse.Namespace) -> int:
    import torch

    address = args.address or os.environ.get("RAY_ADDRESS")
    if address and "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
        os.environ["RAY_AUTH_MODE"] = "token"  # `ray start`'s default, and its token is here (read at import)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic status table, with our columns
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the results table is the log
    # ...so Tune finds no per-trial result files at the end: that is expected, not worth a warning
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    import ray
    from ray import tune

    folder = Path(args.results).resolve() / grid.name
    table = ResultsTable(folder)
    done = table.done_ids()
    todo = pending_configs(grid, done, args.limit)
    write_atomic(folder / "grid.yaml", grid.text or Path(grid.path).read_text())
    write_atomic(folder / "grid.json", json.dumps(
        {"name": grid.name, "total": len(grid.configs),
         "configs": len({c.settings_id for c in grid.configs}),
         "by_family": grid.by_family(), "by_model": grid.by_model(),
         "gan_subgrids": grid.gan_subgrids()}, indent=2))
    if not todo:
        print(f"{grid.name}: all {len(grid.configs)} configs are done ({folder / 'trials.parquet'})")
        return 0

    t0 = time.monotonic()
    if address:
        try:
            check_reachable(address)
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as e:
            print(f"error: cannot connect to the Ray cluster at {address} ({str(e).splitlines()[0][:200]}); "
                  f"check the address (ray status on the head), and for token authentication put the "
                  f"cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN", file=sys.stderr)
            return 2
    else:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.monotonic() - t0
    gpus_available = ray.cluster_resources().get("GPU", 0)
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (0.25 if gpus_available else 0)
    pack_size = args.pack_size or (GPU_PACK_SIZE if gpus else cpu_pack_size)
    fail_id = os.environ.get(FAIL_ENV)
    # the injected failure is one config's: it trains alone, so that its pack-mates do not fail with it
    packs = make_packs([c for c in todo if c.config_id != fail_id], pack_size) + [[c] for c in todo if c.config_id == fail_id]
    print(f"Ray started in {ray_start:.1f}s ({'cluster ' + address if address else 'embedded, local'}; "
          f"{ray.cluster_resources().get('CPU', 0):g} CPUs, {gpus_available:g} GPUs). "
          f"{len(todo)} configs to run in {len(packs)} trials (pack size <= {max(map(len, packs))}), "
          f"{args.cpus_per_trial} CPU and {gpus:g} GPU each; {len(done)} already done.", flush=True)

    base = {"data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else os.environ.get("HARNESS_DATA_DIR"),
            "classifier": str(Path(args.classifier).resolve()) if args.classifier else None,
            "cpus": args.cpus_per_trial, "gpus": gpus}
    specs = [{**base, "label": pack_label(pack), "configs": [c.to_dict() for c in pack],
              "fail": fail_id if any(c.config_id == fail_id for c in pack) else None} for pack in packs]

    progress = Progress(total=len(grid.configs), already=len(done), started=time.monotonic())
    gpu_memory = torch.cuda.get_device_properties(0).total_memory if gpus and torch.cuda.is_available() else None
    trainable = tune.with_resources(run_pack_trial, lambda config: trial_resources(
        [TrainConfig.from_dict(d) for d in config["spec"]["configs"]], args.cpus_per_trial, gpus, gpu_memory))
    storage = Path(args.storage).resolve() if args.storage else folder / "ray"
    tuner = tune.Tuner(
        trainable,
        param_space={"spec": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent or None, num_samples=1),
        run_config=tune.RunConfig(
            name=f"{grid.name}-{dt.datetime.now():%Y%m%d-%H%M%S}", storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=args.retries),
            callbacks=[make_callback(grid, table, {c.config_id: c for c in todo}, progress)],
            progress_reporter=tune.CLIReporter(
                metric_columns={"configs": "configs", "best_Iprime": "best I'"},
                parameter_columns={"spec/label": "trial trains"}, max_report_frequency=30),
            verbose=1),
    )
    t1 = time.monotonic()
    tuner.fit()
    ray.shutdown()
    n_err = int((table.df["status"] == "error").sum()) if not table.df.empty else 0
    print(f"{grid.name}: {len(table.done_ids())}/{len(grid.configs)} done, {n_err} errors; "
          f"sweep {time.monotonic() - t1:.1f}s + Ray start {ray_start:.1f}s; results in {table.path}")
    return 0


def run_pack_trial(config: dict) -> None:
    run_pack(config["spec"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("grid", help="grid file, e.g. grids/mnist_table1.yaml")
    p.add_argument("--results", default="results", help="results folder (default: results/)")
    p.add_argument("--data-dir", help="MNIST folder (default: $HARNESS_DATA_DIR, else download to a cache)")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed classifiers/mnist_convnet.pt)")
    p.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--gpus-per-trial", type=float, help="GPU fraction per trial (default 0.25 where GPUs exist, else 0)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (default 1)")
    p.add_argument("--max-concurrent", type=int, default=0, help="at most N trials at once (default: as resources allow)")
    p.add_argument("--pack-size", type=int, default=0, help=f"configs of one shape trained together per trial (default on CPU: "
                   f"8, 2 for models of >16M weights; {GPU_PACK_SIZE} with GPUs; 1 = the reference trainer)")
    p.add_argument("--limit", type=int, help="run at most N not-yet-done configs")
    p.add_argument("--retries", type=int, default=1, help="retries of a failing trial before its rows are 'error'")
    p.add_argument("--storage", help="Ray Tune's experiment folder (default RESULTS/<grid>/ray; shared on a multi-node cluster)")
    p.add_argument("--dry-run", action="store_true", help="print counts (per family, per GAN subgrid, done) and exit")
    args = p.parse_args(argv)
    for name in ("limit", "pack_size", "max_concurrent", "retries"):
        v = getattr(args, name)
        if v is not None and v < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.cpus_per_trial <= 0 or (args.gpus_per_trial is not None and args.gpus_per_trial < 0):
        p.error("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        grid = load_grid(args.grid)
        done = ResultsTable(Path(args.results) / grid.name).done_ids()
        if not args.dry_run:  # fail here, once, rather than in every trial
            resolve_data_dir(args.data_dir)
            load_classifier(args.classifier)
    except (GridError, DataError, ClassifierError, ResultsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(dry_run_report(grid, done))
        return 0
    return run_sweep(grid, args)


if __name__ == "__main__":
    sys.exit(main())
