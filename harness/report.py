"""The grid study's report: Fig. 2, Fig. 3, Fig. 4, training curves, a summary table, one page,
and what the paper's histograms cannot show (robustness curves, ECDFs, hyperparameter
importance, best score against budget, sampling vs seed noise, I' against FID, the margin).

Models are the report labels of the results' `model` column (GAN, EBGAN, EBGAN-PT, LSGAN,
WGAN-GP, BEGAN, ...), ordered and coloured by the family registry (`harness.families`): a
model has one colour in every figure. Fig. 2 is the paper's (EBGAN against GAN); every other
family present gets a Fig. 2-style figure of its own against EBGAN and GAN
(fig2_<family>.png). Fig. 3 is the paper's GAN optimizer subgrids against EBGAN.

    python -m harness.report RESULTS_DIR [--out DIR] [--seed-agg mean|median|max] [--grid NAME]
                             [--data-dir MNIST] [--classifier WEIGHTS]
                             [--allow-mixed-classifiers]

RESULTS_DIR is either one grid's results folder (it holds `trials.parquet`, one row per
(config, seed), plus `grid.json` and `grid.yaml` from the sweep) or a folder of such folders.
Each grid's report goes to `<grid folder>/report/` (or `--out`; `--out/<grid>/` when several).

How results are counted (the same rules in every figure and table):
  * A run's outcome is "ok" (a finite final I'), "diverged" (status diverged, or an ok row
    without a finite I'; any I' it carries is ignored) or "error" (the run itself failed: no
    information about the model).
  * Seeds: a config (settingsId) is counted once. Its I' is the mean (or median, max) over its
    seeds, where a diverged seed scores -inf and error seeds are left out. So with the mean a
    config is diverged when any seed diverged, with the median when at least half did, with the
    max only when all did. A config whose every seed errored is an "error" config.
  * Histograms: percentages are over the family's ok + diverged configs, diverged drawn as its
    own hatched bar at the left, so each family's bars sum to 100. Error configs are not in the
    percentages (they say nothing about the model); their count is in the legend.
  * Summary: median, IQR, Mann-Whitney U, Kolmogorov-Smirnov and the bootstrap CI are over ok
    configs; diverged and errors are counted beside them. "pctAbove_pXX" is the percentage of
    ok + diverged configs whose I' exceeds the XXth percentile of the pooled ok I' of the grid
    (all models together), so a diverged config is below every threshold.
  * Classifier: I' depends on the classifier's weights, so a grid whose scored runs carry
    different `classifierSha256` values is refused (exit 2) unless --allow-mixed-classifiers;
    a table written before that column existed counts as one, unknown, classifier.

The data selection (load, aggregate, panels, percentages, statistics) is pure and separate
from the drawing; `main` ties them together.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib
matplotlib.use("Agg")  # a report is drawn headless, also where a display exists
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy import stats  # noqa: E402

from harness import analysis, families  # noqa: E402
from harness.atomic import write_atomic  # noqa: E402
from harness.config import TABLE1_SETTINGS, setting_names  # noqa: E402
from harness.provenance import COLUMNS as PROVENANCE_COLUMNS  # noqa: E402
from harness.results import ResultsError, ResultsTable  # noqa: E402

REFERENCE = "EBGAN"            # what every other family's rows are compared against
BASELINE = "GAN"               # the paper's other model: Fig. 3's subgrids, the second reference of Fig. 2-style figures
SEED_AGGS = ("mean", "median", "max")
THRESHOLD_QUANTILES = (0.5, 0.75, 0.9)
N_BINS = 30
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
REQUIRED_COLUMNS = (*TABLE1_SETTINGS, "family", "model", "subgrid", "settingsId", "configId",
                    "seed", "status", "Iprime", "IprimePerEpoch", "samplesPath")
FALLBACK_COLOR = "#949494"     # a model no registered family names (results of an unloaded plugin)


def config_columns() -> tuple[str, ...]:
    """A config's settings (common and every family's; null where they do not apply) and labels."""
    return ("family", *setting_names(), "model", "subgrid", "grid")


def _models(present: Any = ()) -> list[str]:
    """Every registered model label in registry order, then labels only the results have."""
    known = list(families.colors())
    return known + sorted(set(present) - set(known))


def _reference_family(label: str) -> str | None:
    family = families.family_of_model(label)
    return family.name if family else None
PANELS_FIG2 = {"(a) all configs": None, "(b) nLayerG ≤ 4, nLayerD ≤ 4": 4,
               "(c) nLayerG ≤ 3, nLayerD ≤ 3": 3}


class ReportError(Exception):
    """A problem with the input the user can fix: the message names it and the fix."""


# --- loading ---------------------------------------------------------------------------------

def find_grid_folders(results_dir: Path, grid: str | None = None) -> list[Path]:
    """RESULTS_DIR itself if it is one grid's folder, else its sub-folders with a trials.parquet."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results folder {results_dir} does not exist; "
                          "fix: pass the folder the sweep wrote (RESULTS or RESULTS/<grid name>)")
    if has_results(results_dir):
        folders = [results_dir]
    else:
        folders = sorted(p for p in results_dir.iterdir() if p.is_dir() and has_results(p))
    if grid is not None:
        folders = [f for f in folders if f.name == grid or _grid_json(f).get("name") == grid]
        if not folders:
            raise ReportError(f"no grid named {grid!r} with a trials.parquet under {results_dir}; "
                              "fix: check --grid against the folder names")
    if not folders:
        raise ReportError(f"no trials.parquet in {results_dir} or its sub-folders; "
                          "fix: run the sweep first, or pass the folder that holds trials.parquet")
    return folders


def has_results(folder: Path) -> bool:
    """A grid's results folder: trials.parquet, or parts of it a running sweep has not merged yet."""
    return (folder / "trials.parquet").exists() or any((folder / "parts").glob("*.parquet"))


def _grid_json(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "grid.json").read_text())
    except (OSError, ValueError):
        return {}


def load_results(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One grid's runs (one row per (config, seed)) and its meta data from grid.json/grid.yaml.

    meta: name, folder, total (runs in the grid) and configs (without seeds), None when grid.json
    is missing, by_family, gan_subgrids, grid_yaml (the grid file's text or None).
    """
    folder = Path(folder)
    path = folder / "trials.parquet"
    if not has_results(folder):
        raise ReportError(f"{path} does not exist; fix: run the sweep on this grid first")
    try:
        runs = ResultsTable(folder).df  # the table and the parts a running sweep added since
    except ResultsError as e:
        raise ReportError(f"{e}; fix: rerun the sweep, which rewrites it, or restore the file") from None
    if runs.empty:
        raise ReportError(f"{path} has no rows; fix: wait for the sweep to finish some runs")
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing:
        raise ReportError(f"{path} lacks column(s) {', '.join(missing)}; "
                          "fix: regenerate it with the current sweep")
    runs = runs.drop_duplicates("configId", keep="last").reset_index(drop=True)
    runs["Iprime"] = pd.to_numeric(runs["Iprime"], errors="coerce").astype(float)
    gj = _grid_json(folder)
    yaml_path = folder / "grid.yaml"
    meta = {
        "name": gj.get("name") or folder.name,
        "folder": folder,
        "total": gj.get("total"),
        "configs": gj.get("configs"),
        "by_family": gj.get("by_family"),
        "gan_subgrids": gj.get("gan_subgrids"),
        "grid_yaml": yaml_path.read_text() if yaml_path.exists() else None,
    }
    return runs, meta


def progress_text(runs: pd.DataFrame, meta: dict[str, Any]) -> str:
    """'N of M configs done', the words every figure and the page carry."""
    done = runs["settingsId"].nunique()
    configs, total = meta.get("configs"), meta.get("total")
    if configs is None and total is None:
        return f"{done} configs done, total unknown (no grid.json)"
    if configs is None:
        text = f"{len(runs)} of {total} runs done"
        return text + (" (partial results)" if len(runs) < total else "")
    text = f"{done} of {configs} configs done"
    if total is not None and total != configs:
        text += f" ({len(runs)} of {total} runs)"
    return text + (" (partial results)" if done < configs else "")


def progress_table(runs: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """Done runs and configs per family and per GAN subgrid, beside grid.json's expected counts."""
    total, configs = meta.get("total"), meta.get("configs")
    rows = [("all", "all", runs, f"{total} runs, {configs} configs"
             if total is not None or configs is not None else None)]
    by_family, by_subgrid = (meta.get(k) if isinstance(meta.get(k), dict) else {}
                             for k in ("by_family", "gan_subgrids"))
    for fam in sorted(set(runs["family"]) | set(by_family)):
        rows.append(("family", fam, runs[runs["family"] == fam], by_family.get(fam)))
    gan = runs[runs["model"] == BASELINE]
    for sub in sorted(set(gan["subgrid"]) | set(by_subgrid)):
        rows.append(("GAN subgrid", sub, gan[gan["subgrid"] == sub], by_subgrid.get(sub)))
    return pd.DataFrame([{"group": g, "name": n, "runs done": len(r),
                          "configs done": r["settingsId"].nunique(),
                          "expected (grid.json)": "unknown" if exp is None else str(exp)}
                         for g, n, r, exp in rows])


# --- selection -------------------------------------------------------------------------------

def run_scores(runs: pd.DataFrame) -> pd.Series:
    """Per run: its I' if ok, -inf if diverged (or ok without a finite I'), NaN if error."""
    ip = runs["Iprime"].to_numpy(dtype=float)
    ok = (runs["status"] == "ok").to_numpy() & np.isfinite(ip)
    diverged = ((runs["status"] == "diverged") | (runs["status"] == "ok")).to_numpy() & ~ok
    return pd.Series(np.where(ok, ip, np.where(diverged, -np.inf, np.nan)), index=runs.index)


def aggregate_seeds(runs: pd.DataFrame, how: str = "mean") -> pd.DataFrame:
    """One row per config (settingsId): I' aggregated over seeds, status, seed counts, spread.

    Columns: the config's settings, Iprime (finite or NaN), status ok|diverged|error, runs,
    seeds (non-error runs), seedsDiverged, seedsError, IprimeStd (std over ok seeds, ddof=1),
    bestConfigId (the best ok seed's run), and where the table has IprimeSetA/IprimeSetB,
    samplingVar (mean over ok seeds of analysis.sampling_variance).
    """
    if how not in SEED_AGGS:
        raise ValueError(f"seed aggregation {how!r} is not one of {SEED_AGGS}")
    score = run_scores(runs)
    ok_ip = score.where(np.isfinite(score))
    g = runs.assign(_score=score, _ok=ok_ip,
                    _div=np.isneginf(score), _err=score.isna()).groupby("settingsId", sort=False)
    cols = [c for c in config_columns() if c in runs.columns]
    out = g[cols].first()
    agg = g["_score"].agg(how)
    out["Iprime"] = agg.where(np.isfinite(agg))
    out["status"] = np.where(agg.isna(), "error", np.where(np.isneginf(agg), "diverged", "ok"))
    out["runs"] = g.size()
    out["seedsDiverged"] = g["_div"].sum()
    out["seedsError"] = g["_err"].sum()
    out["seeds"] = out["runs"] - out["seedsError"]
    out["IprimeStd"] = g["_ok"].std(ddof=1)
    if {"IprimeSetA", "IprimeSetB"} <= set(runs.columns):
        var = analysis.sampling_variance(runs["IprimeSetA"], runs["IprimeSetB"])
        out["samplingVar"] = pd.Series(np.where(np.isfinite(score), var, np.nan),
                                       index=runs.index).groupby(runs["settingsId"], sort=False).mean()
    best = runs.assign(_ok=ok_ip).dropna(subset=["_ok"]).sort_values("_ok")
    out["bestConfigId"] = best.groupby("settingsId")["configId"].last()
    return out.reset_index()


def fig2_panels(configs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Fig. 2's panels: (a) all, (b) nLayerG <= 4 and nLayerD <= 4, (c) both <= 3."""
    return {name: configs if depth is None else
            configs[(configs["nLayerG"] <= depth) & (configs["nLayerD"] <= depth)]
            for name, depth in PANELS_FIG2.items()}


def subgrid_panels(configs: pd.DataFrame, model: str = BASELINE) -> dict[str, pd.DataFrame]:
    """Fig. 3's panels: the GAN rows (or `model`'s) of each optimizer subgrid, ordered optimD, optimG, lr down."""
    rows = configs[configs["model"] == model]
    return {s: rows[rows["subgrid"] == s] for s in analysis.ordered_subgrids(rows)}


def histogram_percentages(values: np.ndarray, bins: np.ndarray,
                          n_diverged: int = 0) -> tuple[np.ndarray, float]:
    """Percent of (values + diverged) per bin, and the diverged percent; together they sum to 100.

    Values outside the bins are clipped into the end bins, so none is lost.
    """
    values = np.asarray(values, dtype=float)
    n = values.size + n_diverged
    if n == 0:
        return np.zeros(len(bins) - 1), 0.0
    counts, _ = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)
    return 100.0 * counts / n, 100.0 * n_diverged / n


def common_bins(values: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bins over all finite values, shared by every panel of every figure."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = values.min(), values.max()
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def ok_values(configs: pd.DataFrame) -> np.ndarray:
    return configs.loc[configs["status"] == "ok", "Iprime"].to_numpy(dtype=float)


def best_runs(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """The run with the highest final I' of each model present (Fig. 4)."""
    ok = runs[run_scores(runs).pipe(np.isfinite)]
    return {m: ok.loc[ok.loc[ok["model"] == m, "Iprime"].idxmax()]
            for m in _models(runs["model"]) if (ok["model"] == m).any()}


def quartile_runs(runs: pd.DataFrame) -> dict[str, dict[str, pd.Series]]:
    """Per model, the ok runs whose final I' sits at the 25th, 50th and 75th percentile."""
    has_curve = runs["IprimePerEpoch"].map(lambda c: c is not None and len(c) > 0)
    ok = runs[run_scores(runs).pipe(np.isfinite) & has_curve].sort_values(["Iprime", "configId"])
    out = {}
    for m in _models(runs["model"]):
        rows = ok[ok["model"] == m]
        if len(rows):
            out[m] = {label: rows.iloc[int(round(q * (len(rows) - 1)))]
                      for label, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))}
    return out


# --- statistics ------------------------------------------------------------------------------

def _median_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis) - np.median(y, axis=axis)


def compare(ebgan: np.ndarray, gan: np.ndarray, n_resamples: int = BOOTSTRAP_RESAMPLES,
            seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> dict[str, float]:
    """EBGAN against GAN: two-sided Mann-Whitney U and KS, and a percentile-bootstrap CI of
    median(EBGAN) - median(GAN), seeded so that it is deterministic."""
    x, y = np.asarray(ebgan, dtype=float), np.asarray(gan, dtype=float)
    out = dict.fromkeys(("mwuU", "mwuP", "ksD", "ksP", "medianDiff", "ciLow", "ciHigh"), np.nan)
    if x.size == 0 or y.size == 0:
        return out
    mwu = stats.mannwhitneyu(x, y, alternative="two-sided")
    ks = stats.ks_2samp(x, y, alternative="two-sided")
    out.update(mwuU=float(mwu.statistic), mwuP=float(mwu.pvalue), ksD=float(ks.statistic),
               ksP=float(ks.pvalue), medianDiff=float(_median_diff(x, y)))
    if x.size > 1 and y.size > 1:
        ci = stats.bootstrap((x, y), _median_diff, vectorized=True, paired=False,
                             n_resamples=n_resamples, batch=200, method="percentile",
                             confidence_level=confidence,
                             random_state=np.random.default_rng(seed)).confidence_interval
        out.update(ciLow=float(ci.low), ciHigh=float(ci.high))
    return out


def pooled_thresholds(configs: pd.DataFrame,
                      quantiles: tuple[float, ...] = THRESHOLD_QUANTILES) -> dict[str, float]:
    """The I' thresholds of the summary: percentiles of all ok configs' I', models pooled."""
    vals = ok_values(configs)
    return {f"p{round(100 * q)}": float(np.quantile(vals, q)) if vals.size else np.nan
            for q in quantiles}


def describe(configs: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, Any]:
    """Counts, median/IQR of ok I', percent above each threshold, seed-to-seed spread."""
    vals = ok_values(configs)
    diverged = int((configs["status"] == "diverged").sum())
    errors = int((configs["status"] == "error").sum())
    scored = vals.size + diverged
    q25, med, q75 = np.quantile(vals, [0.25, 0.5, 0.75]) if vals.size else (np.nan,) * 3
    row = {"n": len(configs), "ok": vals.size, "diverged": diverged, "errors": errors,
           "runs": int(configs["runs"].sum()), "median": med, "q25": q25, "q75": q75,
           "iqr": q75 - q25}
    for name, t in thresholds.items():
        row[f"pctAbove_{name}"] = 100.0 * (vals > t).sum() / scored if scored else np.nan
    row["seedsPerConfig"] = float(configs["seeds"].median())
    row["seedStdMedian"] = float(configs["IprimeStd"].median())  # NaN with one seed
    row.update(analysis.spread_summary(configs))  # samplingStd beside the seed spread (item 6)
    return row


def summary_table(configs: pd.DataFrame, thresholds: dict[str, float] | None = None,
                  n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Rows per model, per GAN subgrid (Fig. 3's, named by the subgrid) and per optimizer subgrid
    of every other model that has several (named '<model> <subgrid>'). Rows of a family other
    than EBGAN's carry EBGAN-vs-that-row statistics: medianDiff, ciLow, ciHigh are EBGAN minus
    the row. The thresholds used are in .attrs.
    """
    thresholds = pooled_thresholds(configs) if thresholds is None else thresholds
    present = _models(configs["model"])
    groups = [("model", m, g) for m, g in _by_model(configs, present).items()]
    groups += [("subgrid", s, g) for s, g in subgrid_panels(configs).items()]
    for m in present:
        if m != BASELINE and m != REFERENCE:
            panels = subgrid_panels(configs, m)
            groups += [("subgrid", f"{m} {s}", g) for s, g in panels.items()] if len(panels) > 1 else []
    ref = ok_values(configs[configs["model"] == REFERENCE])
    reference_family = _reference_family(REFERENCE)
    rows = []
    for kind, name, g in groups:
        row = {"group": kind, "name": name, **describe(g, thresholds)}
        if ref.size and not g["model"].map(_reference_family).eq(reference_family).any():
            row.update(compare(ref, ok_values(g), n_resamples=n_resamples, seed=seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["thresholds"] = thresholds
    return table


# --- provenance: which classifier, code, libraries and device produced the rows ---------------

NOT_RECORDED = "(not recorded)"


def check_classifiers(runs: pd.DataFrame, where: Path, allow_mixed: bool = False) -> tuple[str, bool]:
    """The page's sentence on which classifier scored the runs, and whether several did. Raises ReportError when the scored
    (non-error) runs carry more than one classifierSha256, since their I' do not compare in one
    figure, unless `allow_mixed`. Runs without the value (written before it was recorded, or a
    whole table from before the column existed) count as one more classifier, an unknown one."""
    recorded = runs.get("classifierSha256", pd.Series(np.nan, index=runs.index, dtype=object))
    shas = recorded[runs["status"] != "error"].astype(object).fillna(NOT_RECORDED).value_counts()
    if len(shas) > 1:
        listing = ", ".join(f"{n} runs by {sha if sha == NOT_RECORDED else sha[:12] + '...'}"
                            for sha, n in shas.items())
        if not allow_mixed:
            raise ReportError(f"{where}: its runs were scored by {len(shas)} different classifiers "
                              f"({listing}), whose I' do not compare; fix: rerun the runs of the other "
                              "classifier(s) (delete their rows and resume the sweep), or pass "
                              "--allow-mixed-classifiers")
        return (f"WARNING: runs scored by {len(shas)} different classifiers are mixed in every figure "
                f"and table (--allow-mixed-classifiers): {listing}."), True
    if not len(shas) or shas.index[0] == NOT_RECORDED:
        return ("No run records its classifier (the table predates the provenance columns): the runs "
                "are taken as scored by one classifier, which is unknown."), False
    return f"Every scored run was scored by the classifier with SHA-256 {shas.index[0]}.", False


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each provenance column's distinct values with their run counts; rows without a value
    (error rows, rows written before provenance was recorded) are counted as NOT_RECORDED."""
    rows = []
    for col in PROVENANCE_COLUMNS:
        values = runs[col] if col in runs.columns else pd.Series(np.nan, index=runs.index, dtype=object)
        for value, n in values.astype(object).where(values.notna(), NOT_RECORDED).value_counts().items():
            rows.append({"column": col, "value": str(value), "runs": int(n)})
    return pd.DataFrame(rows, columns=["column", "value", "runs"])


def provenance_html(runs: pd.DataFrame, classifier_note: str) -> str:
    """The page's Provenance section: the classifier sentence and the table of distinct values."""
    return ("<h2>Provenance</h2>" + f"<p>{html.escape(classifier_note)}</p>"
            + "<p>Distinct values of each provenance column, with their runs. "
            + f"{html.escape(NOT_RECORDED)}: error runs (nothing was scored) and runs written "
            + "before provenance was recorded.</p>" + provenance_table(runs).to_html(index=False))


# --- drawing ---------------------------------------------------------------------------------

def _palette(extra: Any = ()) -> dict[str, Any]:
    """{model label: colour}: each family's declared colours (harness/families), the same in every
    figure; labels in `extra` that no registered family names get a neutral grey."""
    return {**{m: FALLBACK_COLOR for m in extra}, **families.colors()}


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _render(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def _write_figure(fig: Figure | None, out: Path, stem: str, written: list[Path], pdf: bool = False) -> bytes | None:
    """`stem`.png (and .pdf) of a figure into `out`, atomically, their paths added to `written`;
    returns the PNG's bytes (None, and nothing written, for no figure)."""
    if fig is None:
        return None
    import matplotlib.pyplot as plt
    data = _render(fig, "png")
    write_atomic(out / f"{stem}.png", data)
    written.append(out / f"{stem}.png")
    if pdf:
        write_atomic(out / f"{stem}.pdf", _render(fig, "pdf"))
        written.append(out / f"{stem}.pdf")
    plt.close(fig)  # a no-op for figures not made by pyplot
    return data


def _draw_histograms(ax, groups: dict[str, pd.DataFrame], bins: np.ndarray,
                     colors: dict[str, Any]) -> None:
    """Overlaid percent histograms, one per group, with the diverged bar at the left."""
    span = bins[-1] - bins[0]
    slot, slot_width = bins[0] - 0.14 * span, 0.07 * span  # the diverged bar's place
    bar = slot_width / max(len(groups), 1)
    for i, (label, g) in enumerate(groups.items()):
        color = colors[g["model"].iloc[0]] if len(g) else "gray"
        diverged = int((g["status"] == "diverged").sum())
        errors = int((g["status"] == "error").sum())
        pct, div_pct = histogram_percentages(ok_values(g), bins, diverged)
        text = f"{label} (n={len(g) - errors}, {diverged} diverged"
        text += f"; {errors} error(s), not in %)" if errors else ")"
        ax.stairs(pct, bins, fill=True, alpha=0.35, color=color)
        ax.stairs(pct, bins, color=color, linewidth=1.2, label=text)
        ax.bar(slot - slot_width / 2 + (i + 0.5) * bar, div_pct, width=bar, color=color,
               alpha=0.6, hatch="//", edgecolor=color)
    ax.axvline(bins[0] - 0.06 * span, color="0.6", linestyle=":", linewidth=1)
    ticks = [t for t in MaxNLocator(5).tick_values(bins[0], bins[-1]) if bins[0] <= t <= bins[-1]]
    ax.set_xticks([slot, *ticks], ["diverged", *(f"{t:g}" for t in ticks)])
    ax.set_xlim(slot - 0.06 * span, bins[-1] + 0.02 * span)
    ax.set_xlabel("I' (final, modified inception score)")
    ax.set_ylabel("% of models")
    if groups:
        ax.legend(fontsize="small", loc="upper left")


def _by_model(configs: pd.DataFrame, models: Any = None) -> dict[str, pd.DataFrame]:
    order = _models(configs["model"]) if models is None else models
    return {m: configs[configs["model"] == m] for m in order if (configs["model"] == m).any()}


def paper_models(configs: pd.DataFrame) -> list[str]:
    """Fig. 2's models: those of EBGAN's and GAN's families (EBGAN, EBGAN-PT, GAN)."""
    paper = {_reference_family(REFERENCE), _reference_family(BASELINE)}
    return [m for m in _models(configs["model"]) if _reference_family(m) in paper]


def other_families(configs: pd.DataFrame) -> dict[str, list[str]]:
    """{family title: its models present} for every family beyond the paper's, in report order."""
    paper = {_reference_family(REFERENCE), _reference_family(BASELINE)}
    out: dict[str, list[str]] = {}
    for m in _models(configs["model"]):
        family = families.family_of_model(m)
        if (configs["model"] == m).any() and _reference_family(m) not in paper:
            out.setdefault(family.name if family else m, []).append(m)
    return out


def draw_fig2(configs: pd.DataFrame, bins: np.ndarray, title: str, models: list[str] | None = None,
              what: str = "EBGAN against GAN", label: str = "Fig. 2") -> Figure:
    """Fig. 2's three depth panels for `models` (default: the paper's)."""
    models = paper_models(configs) if models is None else models
    fig = _new_figure((16, 4.8))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, len(PANELS_FIG2), sharex=True, sharey=True)
    for ax, (name, panel) in zip(axes, fig2_panels(configs).items()):
        _draw_histograms(ax, _by_model(panel, models), bins, _palette(configs["model"]))
        ax.set_title(name)
    fig.suptitle(f"{label}: I' histograms, {what} — {title}")
    return fig


def draw_family_fig2(configs: pd.DataFrame, bins: np.ndarray, title: str, models: list[str]) -> Figure:
    """A Fig. 2-style figure of one more family's models against EBGAN and GAN."""
    return draw_fig2(configs, bins, title, [*models, REFERENCE, BASELINE],
                     f"{', '.join(models)} against {REFERENCE} and {BASELINE}", "Fig. 2-style")


def _grid_shape(panels: dict[str, pd.DataFrame]) -> tuple[int, int]:
    n = len(panels)
    lrs = {g["lr"].iloc[0] for g in panels.values()}
    if 1 < len(lrs) <= 4 and n % len(lrs) == 0:
        return n // len(lrs), len(lrs)
    cols = min(4, n)
    return -(-n // cols), cols


def draw_fig3(configs: pd.DataFrame, bins: np.ndarray, title: str) -> Figure | None:
    panels = subgrid_panels(configs)
    if not panels:
        return None
    rows, cols = _grid_shape(panels)
    fig = _new_figure((4.6 * cols, 3.3 * rows + 0.6))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    ref = configs[configs["model"] == REFERENCE]
    for ax, (name, gan) in zip(axes, panels.items()):
        groups = {BASELINE: gan, **({REFERENCE: ref} if len(ref) else {})}
        _draw_histograms(ax, groups, bins, _palette())
        ax.set_title(f"{name} (n={len(gan)})", fontsize="medium")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes:
        ax.label_outer()
    fig.suptitle(f"Fig. 3: GAN optimizer subgrids against EBGAN — {title}")
    return fig


def config_caption(row: pd.Series) -> str:
    """A run's settings under the paper's names, as in Fig. 4's caption."""
    def fmt(v: Any) -> str:
        return str(v).lower() if isinstance(v, (bool, np.bool_)) else f"{v:g}" if isinstance(
            v, (float, np.floating)) else str(v)
    parts = [f"{k}={fmt(row[k])}" for k in TABLE1_SETTINGS]
    family = families.find(row["family"])
    parts += [f"{k}={fmt(row[k])}" for k in (family.settings if family else ()) if k in row.index]
    lines = [", ".join(parts[i:i + 3]) for i in range(0, len(parts), 3)]
    return "\n".join(lines + [f"seed={row['seed']}"])


def draw_fig4(runs: pd.DataFrame, folder: Path, title: str) -> Figure | None:
    best = best_runs(runs)
    if not best:
        return None
    cols = min(3, len(best))
    rows = -(-len(best) // cols)
    fig = _new_figure((4.3 * cols, 6.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(best):]:
        ax.set_visible(False)
    for ax, (label, (model, row)) in zip(axes, zip("abcdefghijklmnopqrstuvwxyz", best.items())):
        path = folder / str(row["samplesPath"])
        if row["samplesPath"] and path.exists():
            img = imread(path)
            ax.imshow(img, **({"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}))
        else:
            ax.text(0.5, 0.5, f"samples missing:\n{row['samplesPath']}", ha="center",
                    va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"({label}) {model}, I' = {row['Iprime']:.3g}")
        ax.set_xlabel(config_caption(row), fontsize="small")
    fig.suptitle(f"Fig. 4: best runs by I' — {title}")
    return fig


def draw_curves(runs: pd.DataFrame, title: str) -> Figure | None:
    picked = quartile_runs(runs)
    if not picked:
        return None
    cols = min(3, len(picked))
    rows = -(-len(picked) // cols)
    fig = _new_figure((5 * cols, 4 * rows))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, sharey=True, squeeze=False).ravel()
    for ax in axes[len(picked):]:
        ax.set_visible(False)
    color = _palette(runs["model"])
    for ax, (model, rows) in zip(axes, picked.items()):
        for (label, row), style in zip(rows.items(), (":", "-", "--")):
            curve = np.asarray(row["IprimePerEpoch"], dtype=float)
            ax.plot(np.arange(1, curve.size + 1), curve, style, color=color[model],
                    marker="o", ms=3,  # a marker: a one-epoch run's curve is a single point
                    label=f"{label} run (final I' = {row['Iprime']:.3g})")
        ax.set_title(f"{model}: runs at the quartiles of final I'")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("I'")
        ax.legend(fontsize="small")
    fig.suptitle(f"I' over training — {title}")
    return fig


# --- beyond the paper's histograms (issue 12): robustness, ECDF, importance, budget, noise,
# --- I' against FID, the margin. Numbers from harness.analysis; here only drawing and page.

GUIDES = {
    "robustness": "Read a curve at any score x: the share of that family's (or subgrid's) grid "
                  "reaching at least x, diverged configs never do; the higher and further right a "
                  "curve stays, the more of its grid trains well, and the dashed line is where real "
                  "MNIST scores.",
    "ecdf": "Every family and subgrid on one axis: a curve further right is better throughout, a "
            "step at the left edge is the share that diverged, and where two curves cross neither "
            "family dominates.",
    "importance": "Long bars are the settings whose shuffling costs the model most held-out R² "
                  "(an interval across 0: the setting does not matter), and the curves beside them "
                  "show which of their values the model predicts to train well; read the bars only "
                  "when the cross-validated R² in the title is well above 0.",
    "budget": "Follow a family's line to your budget n: it is the best score you can expect from n "
              "configs drawn at random from its grid, the light band is where 90% of such draws "
              "land and the dark band the uncertainty of the expectation; where lines cross, the "
              "ranking of families depends on the budget.",
    "noise": "Read a difference between two families against both numbers: samplingStd is how "
             "much one run's I' moves with a fresh sample set, seedStdPooled how much it moves with "
             "a fresh training seed (sample set included).",
    "iprime_vs_fid": "Good runs sit top left (high I', low FID); the crosses are runs the "
                     "classifier scores high although their feature statistics are far from real "
                     "MNIST, where I' is fooled.",
    "margin": "The margin's effect on I' (dots: runs, diamonds: mean and sd over seeds, arrows: "
              "diverged runs), with the best run's samples at each margin below.",
}


def real_anchor(runs: pd.DataFrame, data_dir: str | Path | None = None,
                classifier: str | Path | None = None) -> tuple[float | None, str]:
    """The real MNIST test set's I' with the classifier and the runs' sample count (the scale's
    anchor), and a sentence saying what it is or why it is missing. Never raises: without
    MNIST (--data-dir, HARNESS_DATA_DIR, else the harness's cache; nothing is downloaded) or
    without a readable classifier, it returns None and the reason."""
    counts = (pd.to_numeric(runs["scoreSamples"], errors="coerce").dropna().astype(int)
              .value_counts() if "scoreSamples" in runs else pd.Series(dtype=int))
    if counts.empty:
        return None, "real-data line not drawn: the table has no scoreSamples column"
    n = int(counts.index[0])
    from classifiers.convnet import ClassifierError
    from harness.data import DataError, resolve_data_dir
    try:
        from harness.metrics import REAL_DRAWS, Scorer
        scorer = Scorer(classifier, None)
        if not scorer.real_iprime_cache(min(n, 10000)).exists():
            scorer.data_dir = resolve_data_dir(data_dir, download=False)
        value = scorer.real_iprime(n)
    except (DataError, ClassifierError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, f"real-data line not drawn: {reason}"
    mixed = f" (the most common of {len(counts)} sample counts in the table)" if len(counts) > 1 else ""
    what = ("all 10000 images" if n >= 10000 else
            f"mean over {REAL_DRAWS} random draws of {n} images")
    return value, (f"real MNIST test set, {what}{mixed}, classifier {scorer.weights_sha[:12]}: "
                   f"I' = {value:.3f}")


def check_anchor_options(data_dir: str | Path | None, classifier: str | Path | None) -> None:
    """--data-dir and --classifier, when given, must be usable: a typo is an error, not a
    silently missing line (without them the anchor is optional, see real_anchor)."""
    if data_dir is not None:
        from harness.data import DataError, resolve_data_dir
        try:
            resolve_data_dir(data_dir, download=False)
        except DataError as e:
            raise ReportError(f"--data-dir: {str(e).splitlines()[0]}; fix: pass the folder with "
                              "MNIST's four IDX files, or leave --data-dir out") from e
    if classifier is not None:
        from classifiers.convnet import ClassifierError, load_classifier
        try:
            load_classifier(classifier)
        except (ClassifierError, OSError) as e:
            raise ReportError(f"--classifier: {str(e).splitlines()[0]}; fix: pass the weights the "
                              "runs were scored with, or leave --classifier out") from e


def _suptitle(fig: Figure, text: str) -> None:
    """The figure's title, wrapped to the figure's width (a one-family figure is narrow)."""
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


def _colors(labels) -> dict[str, Any]:
    """_palette() for the known models, further colours for any other label."""
    colors = _palette()
    extra = [m for m in labels if m not in colors]
    colors.update(zip(extra, sns.color_palette("dark", len(extra) + len(colors))[len(colors):]))
    return colors


def _subgrid_styles(labels: list[str]) -> dict[str, tuple[Any, str]]:
    pal = sns.color_palette("husl", max(len(labels), 1))
    return {s: (pal[i], ("-", "--", ":", "-.")[i % 4]) for i, s in enumerate(labels)}


def _anchor_line(ax, anchor: float | None, vertical: bool = True) -> None:
    if anchor is not None:
        (ax.axvline if vertical else ax.axhline)(anchor, color="k", ls="--", lw=1.2,
                                                 label=f"real MNIST test set (I' = {anchor:.2f})")


def _group_label(g: dict[str, Any], values: np.ndarray) -> str:
    div = int(np.isneginf(values).sum())
    return f"{g['label']} (n={values.size}, {100 * div / max(values.size, 1):.0f}% diverged)"


def _layout(configs: pd.DataFrame) -> tuple[list[dict], dict[str, list[dict]]]:
    """The families, and per family with several subgrids its subgrid groups."""
    gs = analysis.groups(configs, _models())
    families = [g for g in gs if g["subgrid"] == "all"]
    subs: dict[str, list[dict]] = {}
    for g in gs:
        if g["subgrid"] != "all":
            subs.setdefault(g["model"], []).append(g)
    return families, subs


def draw_robustness(configs: pd.DataFrame, anchor: float | None, title: str) -> Figure:
    """Fraction of configs with I' >= x (top) and FID <= x (bottom): families, then subgrids."""
    families, subs = _layout(configs)
    colors = _colors([g["model"] for g in families])
    cols = 1 + len(subs)
    fig = _new_figure((6 * cols + 2.5 * len(subs), 9))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(2, cols, squeeze=False)
    ok_ip = ok_values(configs)
    top = max([*ok_ip, anchor or 0.0, 1e-9]) * 1.04
    xs = {"Iprime": np.linspace(0, top, 500)}
    fid = pd.to_numeric(configs.get("fid"), errors="coerce") if "fid" in configs else None
    if fid is not None and np.isfinite(fid).any():
        f = fid[np.isfinite(fid)]
        xs["fid"] = np.geomspace(max(f.min(), 1e-3) * 0.9, f.max() * 1.1, 500)
    panels = [("families", families)] + [(f"{m} subgrids", g) for m, g in subs.items()]
    for r, metric in enumerate(("Iprime", "fid")):
        for c, (name, gs) in enumerate(panels):
            ax = axes[r, c]
            if metric not in xs:
                ax.text(0.5, 0.5, "no FID in this table", ha="center", transform=ax.transAxes)
                continue
            x = xs[metric]
            sign = -1 if metric == "fid" else 1
            for g in (families if c else []):
                v = analysis.outcome_values(g["rows"], metric)
                ax.plot(x, analysis.passing_fraction(v, sign * x), color=colors[g["model"]],
                        lw=3, alpha=0.35, label=f"{g['label']} (all)")
            styles = _subgrid_styles([g["label"] for g in gs])
            for g in gs:
                v = analysis.outcome_values(g["rows"], metric)
                color, ls = (colors[g["model"]], "-") if not c else styles[g["label"]]
                ax.plot(x, analysis.passing_fraction(v, sign * x), color=color, ls=ls,
                        lw=2 if not c else 1.3, label=_group_label(g, v))
            if metric == "Iprime":
                _anchor_line(ax, anchor)
                ax.set_xlabel("x (I')")
                ax.set_ylabel("fraction of configs with I' ≥ x")
            else:
                ax.set_xscale("log")
                ax.set_xlabel("x (FID, log scale)")
                ax.set_ylabel("fraction of configs with FID ≤ x")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{name}: {'I' + chr(39) if metric == 'Iprime' else 'FID'}")
            if metric == "Iprime":  # one legend per column: the FID panel below has the same lines
                ax.legend(fontsize="x-small", **({"loc": "upper right"} if not c else
                                                 {"loc": "upper left", "bbox_to_anchor": (1.01, 1)}))
    _suptitle(fig, f"Robustness: how much of each grid trains well (diverged: below every x) — {title}")
    return fig


def draw_ecdf(configs: pd.DataFrame, anchor: float | None, title: str) -> Figure:
    """ECDFs of I' of every family (thick) and subgrid (thin) on one axis; diverged at the left."""
    families, subs = _layout(configs)
    colors = _colors([g["model"] for g in families])
    ok_ip = ok_values(configs)
    lo, hi = (0.0, max([*ok_ip, anchor or 0.0, 1e-9]))
    span = hi - lo
    slot = lo - 0.08 * span
    fig = _new_figure((13, 6.5))
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    sub_groups = [g for gs in subs.values() for g in gs]
    styles = _subgrid_styles([g["label"] for g in sub_groups])
    for g in families + sub_groups:
        v = analysis.outcome_values(g["rows"], "Iprime")
        if not v.size:
            continue
        color, ls = (colors[g["model"]], "-") if g["subgrid"] == "all" else styles[g["label"]]
        sns.ecdfplot(x=np.where(np.isneginf(v), slot, v), ax=ax, color=color, ls=ls,
                     lw=3 if g["subgrid"] == "all" else 1.2, label=_group_label(g, v))
    _anchor_line(ax, anchor)
    ax.axvline(lo - 0.04 * span, color="0.6", ls=":", lw=1)
    ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
    ax.set_xticks([slot, *ticks], ["diverged", *(f"{t:g}" for t in ticks)])
    ax.set_xlim(slot - 0.04 * span, hi + 0.02 * span)
    ax.set_xlabel("I' (final)")
    ax.set_ylabel("fraction of configs with I' ≤ x")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    _suptitle(fig, f"ECDF of I' per family and subgrid — {title}")
    return fig


def draw_importance(table: pd.DataFrame, fits: list, title: str) -> Figure | None:
    """Per fitted family: permutation importance with its interval, then partial dependence
    of I' on the top settings."""
    fitted = [f for f in fits if f.skipped is None]
    if not fitted:
        return None
    colors = _colors([f.family for f in fits])
    cols = 1 + analysis.TOP_SETTINGS
    fig = _new_figure((4.4 * cols, 3.6 * len(fitted) + 0.6))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(len(fitted), cols, squeeze=False)
    for r, fit in enumerate(fitted):
        t = table[table["family"] == fit.family]
        ax = axes[r, 0]
        y = np.arange(len(t))
        err = np.vstack([t["importance"] - t["ciLow"], t["ciHigh"] - t["importance"]]).clip(0)
        ax.barh(y, t["importance"], xerr=err, color=colors[fit.family], alpha=0.75, capsize=3)
        ax.set_yticks(y, t["setting"])
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("permutation importance (drop in held-out R²)")
        ax.set_title(f"{fit.family}: CV R² = {fit.r2:.2f} [{fit.r2Low:.2f}, {fit.r2High:.2f}], "
                     f"n = {fit.n}", fontsize="medium")
        top = list(t["setting"][: analysis.TOP_SETTINGS])
        curves = analysis.partial_dependence_curves(fit, top)
        lims = [v for _, avg in curves.values() for v in avg]
        for c in range(1, cols):
            ax = axes[r, c]
            if c > len(top):
                ax.set_visible(False)
                continue
            labels, avg = curves[top[c - 1]]
            pos = np.arange(len(labels))
            ax.plot(pos, avg, "o-", color=colors[fit.family])
            ax.set_xticks(pos, [f"{v:g}" if isinstance(v, float) else str(v) for v in labels])
            pad = 0.05 * (max(lims) - min(lims) + 1e-9)
            ax.set_ylim(min(lims) - pad, max(lims) + pad)
            ax.set_xlabel(top[c - 1])
            ax.set_ylabel("predicted I' (partial dependence)")
            ax.set_title(f"{fit.family}: #{c} {top[c - 1]}", fontsize="medium")
    _suptitle(fig, f"Which settings decide I' (gradient boosting per family, {analysis.CV_FOLDS}-fold "
                 f"CV; diverged configs at I' = {analysis.DIVERGED_IPRIME:g}) — {title}")
    return fig


def draw_budget(budget: pd.DataFrame, configs: pd.DataFrame, anchor: float | None,
                title: str) -> Figure | None:
    """Expected best I' (top) and best FID (bottom) of n random configs against n."""
    if budget.empty:
        return None
    families, subs = _layout(configs)
    colors = _colors([g["model"] for g in families])
    metrics = [m for m in ("Iprime", "fid") if (budget["metric"] == m).any()]
    cols = 1 + len(subs)
    fig = _new_figure((6 * cols + 2.5 * len(subs), 4.5 * len(metrics) + 0.8))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(len(metrics), cols, squeeze=False)
    panels = [("families", families)] + [(f"{m} subgrids", g) for m, g in subs.items()]
    for r, metric in enumerate(metrics):
        b = budget[budget["metric"] == metric]
        for c, (name, gs) in enumerate(panels):
            ax = axes[r, c]
            styles = _subgrid_styles([g["label"] for g in gs])
            for g in gs:
                d = b[(b["family"] == g["model"]) & (b["subgrid"] == g["subgrid"])]
                if d.empty:
                    continue
                color, ls = (colors[g["model"]], "-") if not c else styles[g["label"]]
                ax.plot(d["n"], d["expected"], color=color, ls=ls, lw=2 if not c else 1.3,
                        label=f"{g['label']} (N={int(d['configs'].iloc[0])})")
                if not c:  # bands for the families only: twelve overlapping bands read as fog
                    ax.fill_between(d["n"], d["ciLow"], d["ciHigh"], color=color, alpha=0.3, lw=0)
                    ax.fill_between(d["n"], d["lo"], d["hi"], color=color, alpha=0.1, lw=0)
            ax.set_xscale("log")
            ax.set_xlabel("budget n (configs drawn at random from the grid)")
            if metric == "Iprime":
                _anchor_line(ax, anchor, vertical=False)
                ax.set_ylabel("expected best I'")
            else:
                if (b["lo"] > 0).all():
                    ax.set_yscale("log")
                ax.set_ylabel("expected best (lowest) FID")
            ax.set_title(f"{name}: {'I' + chr(39) if metric == 'Iprime' else 'FID'}")
            ax.legend(fontsize="x-small", **({} if not c else
                                             {"loc": "upper left", "bbox_to_anchor": (1.01, 1)}))
    band = round(100 * (analysis.BUDGET_BAND[1] - analysis.BUDGET_BAND[0]))
    _suptitle(fig, f"Best score against budget — {title}\nexpected best of n random configs (Tang et "
                 f"al. 2020's unbiased estimator); families: light band {band}% of draws, dark band "
                 "95% bootstrap CI of the expectation")
    return fig


def draw_noise(table: pd.DataFrame, configs: pd.DataFrame, title: str) -> Figure | None:
    """The two spreads per summary row (left), and each ok config's sampling sd (right)."""
    cols = ["samplingStd", "seedStdPooled", "trainingStd"]
    long = table.melt(id_vars=["name"], value_vars=[c for c in cols if c in table],
                      var_name="spread", value_name="sd")
    long["sd"] = pd.to_numeric(long["sd"], errors="coerce")
    long = long.dropna(subset=["sd"])
    if long.empty:
        return None
    fig = _new_figure((14, 0.32 * table["name"].nunique() + 2.8))
    with sns.axes_style("whitegrid"):
        ax, ax2 = fig.subplots(1, 2, width_ratios=(1.3, 1))
    sns.stripplot(data=long, y="name", x="sd", hue="spread", order=list(table["name"]), ax=ax,
                  size=8, jitter=False, dodge=True, palette="Set1")
    ax.set_xlabel("standard deviation of one run's I'")
    ax.set_ylabel("")
    ax.set_title("sampling (sample set) vs seed (training + sample set)", fontsize="medium")
    if "samplingVar" in configs:
        ok = configs[(configs["status"] == "ok") & np.isfinite(configs["samplingVar"])]
        ok = ok.assign(samplingSd=np.sqrt(ok["samplingVar"]))
        if len(ok):
            sns.histplot(data=ok, x="samplingSd", hue="model", element="step", stat="percent",
                         common_norm=False, palette=_colors(ok["model"].unique()), ax=ax2,
                         hue_order=analysis.model_order(ok["model"], _models()))
    ax2.set_xlabel("per config: sqrt(mean over seeds of (I'_A - I'_B)² / 4)")
    ax2.set_title("each config's own sampling sd (one pair per seed: noisy)", fontsize="medium")
    _suptitle(fig, f"Two sources of noise in I' — {title}")
    return fig


def draw_iprime_vs_fid(fooled: pd.DataFrame, thr: dict[str, float], anchor: float | None,
                       title: str) -> Figure | None:
    """I' against FID per family (FacetGrid), the runs with a high I' and a bad FID crossed
    (analysis.fooled_runs defines both); the other families' runs in gray behind, so that a
    family whose high-I' runs sit at a worse FID than another's stands out."""
    if fooled.empty:
        return None
    import matplotlib.pyplot as plt
    models = analysis.model_order(fooled["model"], _models())
    colors = _colors(models)

    def panel(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        m = data["model"].iloc[0]
        others = fooled[fooled["model"] != m]
        ax.scatter(others["fid"], others["Iprime"], s=6, color="0.8", label="other families")
        rest, bad = data[~data["fooled"]], data[data["fooled"]]
        ax.scatter(rest["fid"], rest["Iprime"], s=10, alpha=0.6, color=colors[m], label="runs")
        ax.scatter(bad["fid"], bad["Iprime"], s=40, marker="x", color="crimson",
                   label="high I', bad FID")
        ax.set_title(f"{m}: {len(bad)} of {len(data)} runs high I', bad FID")

    with sns.axes_style("whitegrid"):
        grid = sns.FacetGrid(fooled, col="model", col_order=models, height=4.2, aspect=1.15,
                             sharex=True, sharey=True)
    try:
        grid.map_dataframe(panel)
        top = 100 * (1 - analysis.HIGH_IPRIME_QUANTILE)
        for ax in grid.axes.flat:
            ax.set_xscale("log")
            ax.axhline(thr["highIprime"], color="crimson", lw=0.8, ls=":",
                       label=f"high I': ≥ {thr['highIprime']:.3g} (the grid's top {top:.0f}%)")
            ax.axvline(thr["badFid"], color="crimson", lw=0.8, ls="-.",
                       label=f"bad FID: > {thr['badFid']:.3g} (worse than the grid's median)")
            _anchor_line(ax, anchor, vertical=False)
        grid.set_axis_labels("FID (log scale)", "I'")
        handles, labels = grid.axes.flat[0].get_legend_handles_labels()
        grid.figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize="small")
        _suptitle(grid.figure, f"I' against FID: where I' is fooled — {title}")
        grid.figure.set_layout_engine("constrained")
        return grid.figure
    except Exception:
        plt.close(grid.figure)
        raise


def draw_margin(mruns: pd.DataFrame, folder: Path, anchor: float | None,
                title: str) -> Figure | None:
    """I' against margin (runs, mean +- sd over seeds, diverged), and the best samples per margin."""
    if mruns.empty:
        return None
    margins = sorted(mruns["margin"].astype(float).unique())
    order = [f"{m:g}" for m in margins]
    d = mruns.assign(m=mruns["margin"].astype(float).map(lambda v: f"{v:g}"))
    ok = d[np.isfinite(run_scores(d))]
    models = analysis.model_order(d["model"], _models())
    colors = _colors(models)
    fig = _new_figure((max(9.0, 1.8 * len(margins)), 8))
    grid = fig.add_gridspec(2, len(margins), height_ratios=(2.2, 1))
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot(grid[0, :])
    if len(ok):
        sns.stripplot(data=ok, x="m", y="Iprime", hue="model", order=order, hue_order=models,
                      palette=colors, ax=ax, alpha=0.6, legend=False)
        sns.pointplot(data=ok, x="m", y="Iprime", hue="model", order=order, hue_order=models,
                      palette=colors, ax=ax, errorbar="sd", markers="D", linestyles="-")
    diverged = d[~np.isfinite(run_scores(d))].groupby("m").size()
    for i, m in enumerate(order):
        if diverged.get(m, 0):
            ax.annotate(f"{diverged[m]} diverged", (i, 0), xytext=(0, 12), textcoords="offset points",
                        ha="center", fontsize="small", color="crimson",
                        arrowprops=dict(arrowstyle="->", color="crimson"))
    _anchor_line(ax, anchor, vertical=False)
    ax.set_xlabel("margin m")
    ax.set_ylabel("I' (final)")
    ax.legend(fontsize="small")
    for i, m in enumerate(order):
        sub = fig.add_subplot(grid[1, i])
        sub.set_xticks([])
        sub.set_yticks([])
        rows = ok[ok["m"] == m]
        if rows.empty:
            sub.set_title(f"m={m}: none ok", fontsize="small")
            continue
        best = rows.loc[rows["Iprime"].idxmax()]
        path = folder / str(best["samplesPath"])
        if best["samplesPath"] and path.exists():
            img = imread(path)
            sub.imshow(img, **({"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}))
        sub.set_title(f"m={m}: {best['model']}, I' = {best['Iprime']:.3g}", fontsize="small")
    _suptitle(fig, f"The margin: I' against m, best samples per m — {title}")
    return fig


def _section(key: str, caption: str, progress: str, png: bytes | None, extra: str = "",
             missing: str = "") -> str:
    esc = html.escape
    body = _img(png, caption) if png is not None else f"<p><i>{esc(missing)}</i></p>"
    return (f"<h2>{esc(caption)}</h2><p class='guide'><b>How to read it:</b> {esc(GUIDES[key])}</p>"
            f"<p>{esc(progress)}</p>{body}{extra}")


def write_analysis(runs: pd.DataFrame, configs: pd.DataFrame, table: pd.DataFrame, folder: Path,
                   out: Path, title: str, progress: str, data_dir: str | Path | None = None,
                   classifier: str | Path | None = None) -> tuple[list[str], list[Path]]:
    """robustness.png, ecdf.png, importance.csv/.png, budget.csv/.png, noise.png,
    iprime_vs_fid.png and margin.png (each when there is something to draw), and the page's
    sections for them. `configs` must carry `fid` (analysis.fid_by_config)."""
    esc = html.escape
    written: list[Path] = []
    sections: list[str] = []
    score = run_scores(runs)
    anchor, anchor_text = real_anchor(runs, data_dir, classifier)

    def png(fig: Figure | None, stem: str) -> bytes | None:
        return _write_figure(fig, out, stem, written)

    def csv(frame: pd.DataFrame, name: str) -> None:
        write_atomic(out / name, frame.to_csv(index=False))
        written.append(out / name)

    anchor_html = f"<p>Anchor of the I' scale: {esc(anchor_text)}.</p>"
    sections.append(_section("robustness", "Robustness curves", progress,
                             png(draw_robustness(configs, anchor, title), "robustness"), anchor_html))
    sections.append(_section("ecdf", "ECDF of I' per family and subgrid", progress,
                             png(draw_ecdf(configs, anchor, title), "ecdf")))

    imp, fits = analysis.importance(configs, _models())
    csv(imp, "importance.csv")
    fit_table = pd.DataFrame([{"family": f.family, "configs": f.n, "settings": ", ".join(f.settings),
                               "cvR2": f.r2, "cvR2Low": f.r2Low, "cvR2High": f.r2High,
                               "skipped": f.skipped or ""} for f in fits])
    extra = ("<p>Importance model per family (cross-validated R² with its interval):</p>"
             + fit_table.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="")
             + (imp.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="") if len(imp) else ""))
    sections.append(_section("importance", "Hyperparameter importance", progress,
                             png(draw_importance(imp, fits, title), "importance"), extra,
                             "not drawn: no family has enough configs with varying settings"))

    budget = analysis.budget_table(configs, _models())
    csv(budget, "budget.csv")
    sections.append(_section("budget", "Best score against budget", progress,
                             png(draw_budget(budget, configs, anchor, title), "budget"),
                             missing="not drawn: no ok or diverged configs"))

    spread_cols = ["group", "name", "samplingStd", "seedStdPooled", "trainingStd", "seedsPerConfig"]
    spread = table[[c for c in spread_cols if c in table]]
    note = ("<p>samplingStd: each run's I' on two disjoint halves A, B of its scored samples; "
            "(A - B)² / 4 estimates the variance of I' at the full sample count (halves iid; "
            "variance ~ 1/N), pooled over ok configs. seedStdPooled: root mean variance over seeds "
            "(configs with 2+ seeds; empty with one seed). trainingStd = sqrt(seedStdPooled² - "
            "samplingStd²). 'not recorded': the table predates the IprimeSetA/IprimeSetB columns."
            "</p>")
    sections.append(_section("noise", "Two sources of noise: sample set and seed", progress,
                             png(draw_noise(table, configs, title), "noise"),
                             note + spread.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                                   na_rep=""),
                             "not drawn: neither the sampling spread nor a seed spread is recorded"))

    fooled, thr = analysis.fooled_runs(runs, score)
    top = fooled[fooled["fooled"]].sort_values("Iprime", ascending=False).head(10) if len(fooled) else fooled
    cols = [c for c in ("model", "subgrid", *TABLE1_SETTINGS, "seed", "Iprime", "fid", "configId")
            if c in top]
    extra = ("<p>Highest-I' runs among those with a high I' and a bad FID:</p>"
             + top[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}") if len(top) else "")
    sections.append(_section("iprime_vs_fid", "I' against FID", progress,
                             png(draw_iprime_vs_fid(fooled, thr, anchor, title), "iprime_vs_fid"),
                             extra, "not drawn: no ok run with a finite FID"))

    mruns = analysis.margin_runs(runs, score)
    sections.append(_section("margin", "The margin", progress,
                             png(draw_margin(mruns, folder, anchor, title), "margin"),
                             missing="not drawn: no family varies margin in this grid "
                                     "(see grids/margin_sweep.yaml)"))
    return sections, written


# --- writing ---------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _notes(thresholds: dict[str, float], seed_agg: str) -> list[str]:
    return [
        f"Seeds: each config counted once, its I' the {seed_agg} over seeds (a diverged seed "
        "scores -inf, error seeds left out). seedStdMedian: median over configs of the std of "
        "I' over ok seeds.",
        "n: configs; ok + diverged + errors = n. Diverged configs are a bar of their own in the "
        "histograms and count in the percentages; error configs (the run failed) do not.",
        "median, q25, q75, iqr, Mann-Whitney U, KS and the bootstrap CI are over ok configs.",
        "pctAbove_pXX: % of ok + diverged configs with I' above the XXth percentile of the pooled "
        "ok I' of the grid: " + ", ".join(f"{k} = {v:.4g}" for k, v in thresholds.items()) + ".",
        f"EBGAN against each GAN row: two-sided Mann-Whitney U (mwuU, mwuP) and KS (ksD, ksP); "
        f"medianDiff = median(EBGAN) - median(row), 95% percentile bootstrap CI "
        f"(ciLow, ciHigh; {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}).",
        "samplingStd: how much one run's I' moves with its sample set alone, from I' on two "
        "disjoint halves A, B of each run's samples: sqrt(mean over ok configs of (A - B)^2 / 4) "
        "(halves iid, variance ~ 1/N); 'not recorded' for tables without IprimeSetA/B. "
        "seedStdPooled: sqrt(mean over configs with 2+ seeds of the variance of I' over seeds), "
        "which contains the sampling spread; trainingStd = sqrt(seedStdPooled^2 - samplingStd^2).",
    ]


def summary_markdown(table: pd.DataFrame, title: str, seed_agg: str) -> str:
    notes = "\n".join(f"- {n}" for n in _notes(table.attrs["thresholds"], seed_agg))
    return f"# Summary — {title}\n\n{markdown_table(table)}\n\n{notes}\n"


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" style="max-width:100%" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')


def index_html(meta: dict[str, Any], runs: pd.DataFrame, progress: str, table: pd.DataFrame,
               figures: dict[str, bytes], seed_agg: str, sections: list[str] = (),
               provenance: str = "") -> str:
    esc = html.escape
    name = esc(str(meta["name"]))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title>"
             "<style>body{font-family:sans-serif;max-width:1400px;margin:auto}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 5px}pre{background:#f6f6f6;padding:8px}</style></head><body>",
             f"<h1>EBGAN grid study: {name}</h1>", f"<p><b>{esc(progress)}</b>. "
             f"Runs by status: {esc(runs['status'].value_counts().to_dict().__str__())}.</p>"]
    for caption, png in figures.items():
        parts.append(f"<h2>{esc(caption)}</h2><p>{esc(progress)}</p>{_img(png, caption)}")
    parts.extend(sections)
    parts.append(f"<h2>Summary</h2><p>{esc(progress)}</p>")
    parts.append('<div style="overflow-x:auto">'   # many columns: it scrolls, the page does not
                 + table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="") + "</div>")
    parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in _notes(
        table.attrs["thresholds"], seed_agg)) + "</ul>")
    errors = runs.loc[runs["status"] == "error"]
    if len(errors) and "error" in runs.columns:
        counts = errors["error"].fillna("(no message)").value_counts().head(10)
        parts.append("<h2>Errors (most common)</h2>" + counts.rename("runs").to_frame().to_html())
    parts.append(provenance)
    parts.append("<h2>Grid: done against expected (grid.json)</h2>")
    parts.append(progress_table(runs, meta).to_html(index=False, na_rep="?"))
    yaml_text = meta.get("grid_yaml") or "(grid.yaml missing)"
    parts.append(f"<h3>grid.yaml</h3><pre>{esc(yaml_text)}</pre></body></html>")
    return "\n".join(parts)


def write_report(folder: Path, out: Path, seed_agg: str = "mean", data_dir: str | Path | None = None,
                 classifier: str | Path | None = None, allow_mixed_classifiers: bool = False) -> list[Path]:
    """Every output of one grid's report into `out`; returns the paths written.

    data_dir, classifier: for the real MNIST anchor of the I' scale (real_anchor)."""
    runs, meta = load_results(folder)
    classifier_note, mixed = check_classifiers(runs, Path(folder) / "trials.parquet", allow_mixed_classifiers)
    configs = aggregate_seeds(runs, seed_agg)
    if "fid" in runs:
        configs["fid"] = analysis.fid_by_config(runs, run_scores(runs), seed_agg).reindex(
            configs["settingsId"]).to_numpy()
    progress = progress_text(runs, meta)
    title = f"{meta['name']}: {progress}; seeds: {seed_agg}"
    if mixed:
        title += "; MIXED classifiers"
    bins = common_bins(configs["Iprime"].to_numpy())
    written: list[Path] = []
    pngs: dict[str, bytes] = {}

    def save(fig: Figure | None, stem: str, caption: str, pdf: bool) -> None:
        data = _write_figure(fig, out, stem, written, pdf)
        if data is not None:
            pngs[caption] = data

    save(draw_fig2(configs, bins, title), "fig2_histograms", "Fig. 2: I' histograms", pdf=True)
    for family, models in other_families(configs).items():
        save(draw_family_fig2(configs, bins, title, models), f"fig2_{family}",
             f"Fig. 2-style: {', '.join(models)} against {REFERENCE} and {BASELINE}", pdf=True)
    save(draw_fig3(configs, bins, title), "fig3_optimizer_subgrids",
         "Fig. 3: GAN optimizer subgrids", pdf=True)
    save(draw_fig4(runs, Path(folder), title), "fig4_best_samples", "Fig. 4: best samples", pdf=False)
    save(draw_curves(runs, title), "curves", "I' over training", pdf=False)
    table = summary_table(configs)
    sections, extra = write_analysis(runs, configs, table, Path(folder), out, title, progress,
                                     data_dir, classifier)
    written += extra
    write_atomic(out / "summary.csv", table.to_csv(index=False))
    write_atomic(out / "summary.md", summary_markdown(table, title, seed_agg))
    write_atomic(out / "index.html", index_html(meta, runs, progress, table, pngs, seed_agg, sections,
                                                provenance_html(runs, classifier_note)))
    return written + [out / "summary.csv", out / "summary.md", out / "index.html"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", type=Path, help="RESULTS or RESULTS/<grid name>")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default <grid folder>/report; <out>/<grid> if several)")
    parser.add_argument("--seed-agg", choices=SEED_AGGS, default="mean",
                        help="how a config's I' is taken over its seeds (default mean)")
    parser.add_argument("--grid", default=None, help="only this grid (folder or grid.json name)")
    parser.add_argument("--allow-mixed-classifiers", action="store_true",
                        help="draw runs scored by different classifier weights (classifierSha256) "
                             "together instead of refusing")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST folder for the real-data anchor of I' (default: $HARNESS_DATA_DIR, "
                             "else the harness's cache; never downloads; without MNIST the line is omitted)")
    parser.add_argument("--classifier", default=None,
                        help="ConvNet weights the runs were scored with (default: the committed ones)")
    args = parser.parse_args(argv)
    try:
        check_anchor_options(args.data_dir, args.classifier)
        folders = find_grid_folders(args.results_dir, args.grid)
        for folder in folders:
            if args.out is None:
                out = folder / "report"
            else:
                out = args.out / folder.name if len(folders) > 1 else args.out
            write_report(folder, out, args.seed_agg, args.data_dir, args.classifier, args.allow_mixed_classifiers)
            print(f"report: {folder.name} -> {out / 'index.html'}")
    except ReportError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
