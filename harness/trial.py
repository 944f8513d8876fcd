"""One trial: train and score one pack of configs, wherever it runs (a Ray worker process, or the
sweep's own process with `--executor local`). No Ray here.

    rows = run_trial(configs, env, on_epoch)   # one {"configId", "result", "png"} per config

A worker process runs many trials (Ray Tune reuses its actors), so what every trial needs and
no trial changes (its dataset's training set on the device, the scorer: MNIST's classifier and
its test set's feature statistics for FID) is loaded once per process and kept in `_CACHE`.

The rows travel back to the driver as data (the row's fields and the 8 x 8 sample PNG as bytes),
never as paths: on a multi-node cluster only the driver's machine holds the results folder.
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness import datasets, speeds
from harness.config import TrainConfig
from harness.engine import Checkpoint, EpochHook, Speed, StopHook, pick_device, train, train_pack
from harness.provenance import device_name, provenance


class InjectedFailure(RuntimeError):
    """Raised for the configs of `--inject-failure` (see TrialEnv.fail)."""


@dataclass(frozen=True)
class TrialEnv:
    """What every trial of one sweep shares."""
    data_dir: str | None
    classifier: str | None
    threads: int = 1               # torch threads of the trial (its CPUs)
    gpu: bool = False              # train on the process's CUDA device, if it has one
    # Fault injection, a documented sweep option (--inject-failure): a trial holding one of these
    # config ids raises instead of training, so retries and error rows can be checked on a real
    # cluster. The sweep gives each such config a trial of its own.
    fail: frozenset[str] = field(default_factory=frozenset)
    # The engine's speed variant (harness.speeds: "fp32", "bf16", "graph+tf32", ... or "auto",
    # resolved on the trial's own device); a row records the switches that applied to it.
    speed: str = "fp32"
    # A folder where each trial saves its run at epoch ends (harness.engine.resume), so that a
    # trial killed mid-run continues there; None: no saves, a killed trial starts over.
    checkpoints: str | None = None
    checkpoint_every: float | None = None   # seconds between saves (None: harness.engine.resume's default)


def pack_label(pack: list[TrainConfig]) -> str:
    """What a trial trains, for status lines: 'GAN G5x1600 D2x1024 (24 configs)'."""
    c = pack[0]
    what = f"{c.model} G{c.nLayerG}x{c.sizeG} D{c.nLayerD}x{c.sizeD}"
    return what + (f" {c.subgrid} seed {c.seed}" if len(pack) == 1 else f" ({len(pack)} configs)")


_CACHE: dict[tuple, object] = {}


def _cached(key: tuple, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def device_for(env: TrialEnv) -> torch.device:
    return pick_device("cuda" if env.gpu and torch.cuda.is_available() else "cpu")


def trial_speed(cfg: TrainConfig, env: TrialEnv, device: torch.device) -> Speed:
    """The speed a trial trains with: `env.speed` (`auto` resolved for this device), less the
    switches that cannot apply to its family (Speed.applied)."""
    name, _ = speeds.resolve(env.speed, device_name(str(device)))
    speed, _ = Speed.parse(name).applied(cfg.spec, cfg.settings)
    return speed


def _scorer(dataset: datasets.Dataset, env: TrialEnv, device: torch.device):
    return _cached(("scorer", dataset.name, env.classifier, env.data_dir, str(device)),
                   lambda: dataset.scorer(env.data_dir, env.classifier, device))


def trial_provenance(cfg: TrainConfig, env: TrialEnv) -> dict[str, str | None]:
    """The provenance columns of a failed trial's rows: where and with what it ran (the scorer's
    hash is None when the scorer itself cannot be loaded, which may be why the trial failed)."""
    device = device_for(env)
    try:
        sha = _scorer(datasets.of(cfg), env, device).weights_sha
    except Exception:
        sha = None
    return provenance(device, sha)


def run_trial(configs: list[TrainConfig], env: TrialEnv, on_epoch: EpochHook | None = None,
              stop: StopHook | None = None) -> list[dict]:
    """Train and score `configs` (one shape; one config = the reference trainer); their rows.
    `stop` is asked before every step (harness.engine.Stopped ends the trial there). What it
    raises carries `provenance` (trial_provenance), for the error rows its executor writes; it
    travels with the exception through a worker process or Ray."""
    try:
        return _train_and_score(configs, env, on_epoch, stop)
    except Exception as e:
        with contextlib.suppress(AttributeError):   # an exception that takes no attributes goes without
            e.provenance = trial_provenance(configs[0], env)
        raise


def _train_and_score(configs: list[TrainConfig], env: TrialEnv, on_epoch: EpochHook | None,
                     stop: StopHook | None) -> list[dict]:
    torch.set_num_threads(max(1, env.threads))
    hit = sorted(c.config_id for c in configs if c.config_id in env.fail)
    if hit:
        raise InjectedFailure(f"injected failure (--inject-failure) for {', '.join(hit)}")
    device = device_for(env)
    dataset, n = datasets.of(configs[0]), configs[0].trainImages
    data = _cached(("data", dataset.name, env.data_dir, n, str(device)),
                   lambda: dataset.training_set(env.data_dir, n, device))
    scorer = _scorer(dataset, env, device)
    speed = trial_speed(configs[0], env, device)
    ckpt = None
    if env.checkpoints:   # where this run saves at epoch ends, and continues from if it was killed
        ckpt = Checkpoint.of(env.checkpoints, configs, speed.name, device, env.checkpoint_every)
    with tempfile.TemporaryDirectory() as tmp:
        hooks = dict(on_epoch=on_epoch, stop=stop, checkpoint=ckpt)
        if len(configs) == 1 and speed.name == "fp32":
            results = [train(configs[0], data, scorer, Path(tmp), device, **hooks)]
        else:
            results = train_pack(configs, data, scorer, Path(tmp), device, speed=speed, **hooks)
        rows = []
        for cfg, res in zip(configs, results):
            row = {**res.to_row(), "packSize": len(configs), "speed": speed.name}  # what the row's timings mean
            row.update(provenance(device, scorer.weights_sha))  # which classifier scored it; versions; device
            png = Path(row.pop("samplesPath")).read_bytes() if row["samplesPath"] else None
            rows.append({"configId": cfg.config_id, "result": row, "png": png})
    if ckpt is not None:
        ckpt.remove()   # the rows hold the run now (were they lost on their way, it would run again)
    return rows
