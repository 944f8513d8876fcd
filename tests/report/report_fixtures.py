"""Synthetic sweep results in the shape the sweep writes (trials.parquet + grid.json/.yaml), and
the report's CLI as the tests call it.

`make_trials` builds one row per (config, seed) with every column of the results table; `small`
is 16 architecture points of EBGAN, GAN's 12 subgrids and EBGAN-PT, `family_configs` the
families beyond the paper's; `status_configs` and `importance_grid` are config tables for the
estimators. `write_grid` lays them out as a grid's results folder, tiny sample
PNGs included; `run_cli` runs `python -m harness.report` in-process and `check_outputs` checks
the files it wrote.

Plain functions, imported by name (`from report_fixtures import ...`); the pytest fixtures built
on them are in conftest.py.
"""
from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.image import imsave

from harness.config import TrainConfig
from harness.report import main

# Table 1: the 512 architecture points shared by both families, and the 12 GAN subgrids.
ARCH = {"nLayerG": (2, 3, 4, 5), "nLayerD": (2, 3, 4, 5), "sizeG": (400, 800, 1600, 3200),
        "sizeD": (128, 256, 512, 1024), "dropoutD": (True, False)}
SMALL_ARCH = {"nLayerG": (2, 3, 4, 5), "nLayerD": (2, 3, 4, 5), "sizeG": (400,), "sizeD": (128,),
              "dropoutD": (False,)}
GAN_OPTIM = [(d, g, lr) for d in ("adam", "sgd") for g in ("adam", "sgd") for lr in (0.01, 0.001, 0.0001)]
# The files every report of these tables writes (noise.png and margin.png depend on the table).
OUTPUTS = ("fig2_histograms.png", "fig2_histograms.pdf", "fig3_optimizer_subgrids.png",
           "fig3_optimizer_subgrids.pdf", "fig4_best_samples.png", "curves.png", "summary.csv",
           "summary.md", "index.html", "robustness.png", "ecdf.png", "importance.csv",
           "importance.png", "budget.csv", "budget.png", "iprime_vs_fid.png")
COMMON = {"epochs": 5, "trainImages": 640, "scoreSamples": 100, "epochScoreSamples": 50}


def table1_configs(arch: dict[str, tuple] = ARCH, seeds: tuple[int, ...] = (0,),
                   pt_points: int = 0, epochs: int = 5) -> list[TrainConfig]:
    """EBGAN's grid (adam/adam, lr 0.001, m=10), then the 12 GAN subgrids, then `pt_points`
    EBGAN-PT configs (wPT=0.1), each for every seed."""
    points = [dict(zip(arch, v)) for v in itertools.product(*arch.values())]
    common = {"epochs": epochs, "trainImages": 640, "scoreSamples": 100, "epochScoreSamples": 50}
    settings = [dict(family="ebgan", optimD="adam", optimG="adam", lr=0.001, **p) for p in points]
    settings += [dict(family="gan", optimD=d, optimG=g, lr=lr, **p)
                 for d, g, lr in GAN_OPTIM for p in points]
    settings += [dict(family="ebgan", wPT=0.1, **p) for p in points[:pt_points]]
    return [TrainConfig(**s, **common, seed=seed) for s in settings for seed in seeds]


def make_trials(configs: list[TrainConfig], rng_seed: int = 0, n_diverged: int = 5,
                n_error: int = 3, grid: str = "table1") -> pd.DataFrame:
    """Every results column; I' ~ N(6, 1) for EBGAN(-PT), N(5, 1.5) for GAN; the last
    n_diverged + n_error rows of a random order are made diverged / error."""
    rng = np.random.default_rng(rng_seed)
    rows: list[dict[str, Any]] = []
    for c in configs:
        ip = rng.normal(6.0, 1.0) if c.family == "ebgan" else rng.normal(5.0, 1.5)
        curve = list(ip * (1 - np.exp(-np.arange(1, int(c.epochs) + 1))) + rng.normal(0, 0.1, int(c.epochs)))
        rows.append({**c.to_dict(), "model": c.model, "subgrid": c.subgrid, "configId": c.config_id,
                     "settingsId": c.settings_id, "grid": grid, "status": "ok", "error": None,
                     "Iprime": ip, "IprimePerEpoch": curve, "inceptionScore": np.exp(ip / 3),
                     "fid": 10.0 / ip, "classHist": list(rng.multinomial(100, [0.1] * 10)),
                     "lossD": 0.5, "lossG": 1.0, "wallTime": 60.0, "stepsPerSec": 100.0,
                     "steps": 50, "device": "cpu", "host": "test",
                     "samplesPath": f"samples/{c.config_id}.png",
                     "finishedAt": "2026-01-01T00:00:00"})
    df = pd.DataFrame(rows)
    picked = rng.permutation(len(df))[: n_diverged + n_error]
    div, err = picked[:n_diverged], picked[n_diverged:]
    df.loc[div, "status"] = "diverged"
    df.loc[div[::2], "Iprime"] = np.nan          # diverged rows: NaN or finite I'
    df.loc[err, ["status", "error"]] = ["error", "RuntimeError: CUDA out of memory"]
    df.loc[err, ["Iprime", "samplesPath"]] = [np.nan, None]
    df["IprimePerEpoch"] = [[] if s == "error" else c for s, c in zip(df["status"], df["IprimePerEpoch"])]
    return df


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    imsave(buf, np.random.default_rng(0).random((16, 16)), cmap="gray", format="png")
    return buf.getvalue()


def write_grid(folder: Path, trials: pd.DataFrame, total: int | None = None,
               configs: int | None = None, pngs: bool = True) -> Path:
    """A grid's results folder: trials.parquet, grid.yaml, grid.json (unless total and configs
    are both None, then no grid.json) and one sample PNG per non-error run."""
    folder.mkdir(parents=True, exist_ok=True)
    trials.to_parquet(folder / "trials.parquet")
    (folder / "grid.yaml").write_text("name: table1\nseeds: [0]\nepochs: 5\n")
    if total is not None or configs is not None:
        (folder / "grid.json").write_text(json.dumps({
            "name": folder.name, "total": total, "configs": configs,
            "by_family": trials["family"].value_counts().to_dict(),
            "gan_subgrids": trials.loc[trials["family"] == "gan", "subgrid"].value_counts().to_dict()}))
    if pngs:
        (folder / "samples").mkdir(exist_ok=True)
        png = _tiny_png()
        for p in trials["samplesPath"].dropna():
            (folder / p).write_bytes(png)
    return folder


def small(seeds=(0,), pt_points=2, **kw) -> pd.DataFrame:
    """16 architecture points x (EBGAN + 12 GAN subgrids) + a few EBGAN-PT configs."""
    return make_trials(table1_configs(SMALL_ARCH, seeds=seeds, pt_points=pt_points), **kw)


def family_configs() -> list[TrainConfig]:
    """16 architecture points for LSGAN (2 subgrids), WGAN-GP (1) and BEGAN (2 gammas)."""
    points = [dict(zip(SMALL_ARCH, v)) for v in itertools.product(*SMALL_ARCH.values())]
    out = [TrainConfig(family="lsgan", lr=lr, **p, **COMMON) for lr in (0.001, 0.0002) for p in points]
    out += [TrainConfig(family="wgan_gp", **p, **COMMON) for p in points]
    out += [TrainConfig(family="began", gamma=g, **p, **COMMON) for g in (0.3, 0.7) for p in points]
    return out


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """`python -m harness.report ARGS` in-process: exit status, stdout, stderr."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def check_outputs(out: Path) -> str:
    """Every file in OUTPUTS written (atomically) and every figure embedded in the page; the page."""
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert (out / "fig2_histograms.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "fig4_best_samples.png").read_bytes().startswith(b"\x89PNG")
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # atomic writes left no temp
    page = (out / "index.html").read_text()
    pngs = len(list(out.glob("*.png")))
    assert page.count('src="data:image/png;base64,') == pngs  # every figure on the page
    assert len(re.findall(r"<img ", page)) == pngs  # every image embedded, none linked
    return page


def status_configs(models: dict[str, list[float]]) -> pd.DataFrame:
    """Configs by model from their scores: a number is ok, -inf diverged, NaN an error; subgrids
    s0, s1 alternate; FID = 100 / I' (diverged: inf)."""
    rows = []
    for model, values in models.items():
        for i, v in enumerate(values):
            status = "diverged" if np.isneginf(v) else "error" if np.isnan(v) else "ok"
            rows.append({"model": model, "subgrid": f"s{i % 2}", "status": status,
                         "Iprime": v if status == "ok" else np.nan,
                         "fid": 100.0 / v if status == "ok" else np.inf if status == "diverged" else np.nan})
    return pd.DataFrame(rows)


def importance_grid(effect: float, seed: int, model: str = "WGAN-GP") -> pd.DataFrame:
    """A 2 x 192-config grid of one family; I' = 5 + effect * [optimD == sgd] + N(0, 1)."""
    grid = {"nLayerG": (2, 3, 4, 5), "sizeG": (400, 800, 1600, 3200), "dropoutD": (True, False),
            "optimD": ("adam", "sgd"), "lr": (0.01, 0.001, 0.0001)}
    df = pd.DataFrame([dict(zip(grid, v)) for v in itertools.product(*grid.values())] * 2)
    rng = np.random.default_rng(seed)
    return df.assign(model=model, subgrid="x", status="ok", margin=np.nan, wPT=0.0, sizeD=256,
                     Iprime=5 + rng.normal(0, 1, len(df)) + effect * (df["optimD"] == "sgd"))


def diverging_family_runs(diverged_share: float = 0.6, seed: int = 7) -> pd.DataFrame:
    """EBGAN on Table 1's 512 points (I' ~ N(6, 1)) and WGAN-GP on the same points, of which
    `diverged_share` diverge while the rest beat EBGAN (I' ~ N(8, 1)): better survivors, a
    worse family."""
    points = [dict(zip(ARCH, v)) for v in itertools.product(*ARCH.values())]
    configs = [TrainConfig(family="ebgan", **p, **COMMON) for p in points]
    configs += [TrainConfig(family="wgan_gp", **p, **COMMON) for p in points]
    runs = make_trials(configs, rng_seed=seed, n_diverged=0, n_error=0)
    wgan = runs.index[runs["model"] == "WGAN-GP"]
    rng = np.random.default_rng(seed)
    runs.loc[wgan, "Iprime"] = rng.normal(8.0, 1.0, len(wgan))
    diverged = rng.choice(wgan, round(diverged_share * len(wgan)), replace=False)
    runs.loc[diverged, ["status", "Iprime"]] = ["diverged", np.nan]
    return runs
