"""The report's numbers: a grid's results loaded, runs aggregated over seeds, the rows each
figure panel draws, histogram percentages, the summary statistics, the provenance tables and
the real-data anchor of the I' scale. Nothing here draws; the figures and the page take these.

How results are counted (the same rules in every figure and table):
  * A run's outcome is "ok" (a finite final I'), "diverged" (status diverged, or an ok row
    without a finite I'; any I' it carries is ignored) or "error" (the run itself failed: no
    information about the model).
  * Seeds: a config (settingsId) is counted once. Its I' is the mean (or median, max) over its
    seeds, where a diverged seed scores -inf and error seeds are left out. So with the mean a
    config is diverged when any seed diverged, with the median when at least half did, with the
    max only when all did. A config whose every seed errored is an "error" config. Before the
    comparisons the seeds are made alike (`harness.report.seeds.common_seeds`): where several rows ran a grid point,
    every config there counts only the seeds all of them scored.
  * Histograms: percentages are over the family's ok + diverged configs, diverged drawn as its
    own hatched bar at the left, so each family's bars sum to 100. Error configs are not in the
    percentages (they say nothing about the model); their count is in the legend.
  * Summary: median and IQR are over ok configs; divergedFrac (with its Wilson interval) is
    the share of ok + diverged configs that diverged. "pctAbove_pXX" is the percentage of
    ok + diverged configs whose I' exceeds the XXth percentile of the pooled ok I' of the grid
    (all models together), so a diverged config is below every threshold. The EBGAN-vs-row
    tests (harness.report.compare) rank a diverged config below every finished one; the
    survivors-only statistics are the columns named ...Ok.
  * Classifier: I' depends on the classifier's weights, so a grid whose scored runs carry
    different `classifierSha256` values is refused (ReportError) unless allowed; a table
    written before that column existed counts as one, unknown, classifier.
  * Models: the labels of the `model` column, in the family registry's order (`model_order`),
    so that every figure and table lists them alike.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import families
from harness.config import TABLE1_SETTINGS, setting_names
from harness.errors import HarnessError
from harness.provenance import COLUMNS as PROVENANCE_COLUMNS
from harness.report import analysis, compare, stats
from harness.results import ResultsError, ResultsTable

REFERENCE = "EBGAN"            # what every other family's rows are compared against
# the paper's other model: Fig. 3's subgrids, the second reference of Fig. 2-style figures
BASELINE = "GAN"
SEED_AGGS = ("mean", "median", "max")
THRESHOLD_QUANTILES = (0.5, 0.75, 0.9)
N_BINS = 30
REQUIRED_COLUMNS = (*TABLE1_SETTINGS, "family", "model", "subgrid", "settingsId", "configId",
                    "seed", "status", "Iprime", "IprimePerEpoch", "samplesPath")
PANELS_FIG2 = {"(a) all configs": None, "(b) nLayerG ≤ 4, nLayerD ≤ 4": 4,
               "(c) nLayerG ≤ 3, nLayerD ≤ 3": 3}
NOT_RECORDED = "(not recorded)"  # a provenance value a row does not carry
NOT_RECORDED_VALUE = "not recorded"  # a summary value of a table without its column


class ReportError(HarnessError):
    """A problem with the input the user can fix: what it concerns, why, and the fix."""


def config_columns() -> tuple[str, ...]:
    """A config's settings (common and every family's; null where they do not apply) and labels."""
    return ("family", *setting_names(), "model", "subgrid", "grid")


def registered_models() -> list[str]:
    """Every registered family's model labels, in registry order (`harness.families`)."""
    return list(families.colors())


def model_order(labels: Any) -> list[str]:
    """The model labels in `labels` in report order: registered ones in registry order, then
    labels no registered family names (results of an unloaded plugin), sorted."""
    return analysis.model_order(labels, registered_models())


def _reference_family(label: str) -> str | None:
    """The name of the family whose model label this is (None for an unknown label)."""
    family = families.family_of_model(label)
    return family.name if family else None


# --- loading ---------------------------------------------------------------------------------

def find_grid_folders(results_dir: Path, grid: str | None = None) -> list[Path]:
    """RESULTS_DIR itself if it is one grid's folder, else its sub-folders with a trials.parquet."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results folder {results_dir}", "does not exist",
                          "pass the folder the sweep wrote (RESULTS or RESULTS/<grid name>)")
    if has_results(results_dir):
        folders = [results_dir]
    else:
        folders = sorted(p for p in results_dir.iterdir() if p.is_dir() and has_results(p))
    if grid is not None:
        folders = [f for f in folders if f.name == grid or grid_json(f).get("name") == grid]
        if not folders:
            raise ReportError(f"--grid {grid}", f"no grid of that name with a trials.parquet under {results_dir}",
                              "check --grid against the folder names")
    if not folders:
        raise ReportError(f"results folder {results_dir}", "no trials.parquet in it or its sub-folders",
                          "run the sweep first, or pass the folder that holds trials.parquet")
    return folders


def has_results(folder: Path) -> bool:
    """A grid's results folder: trials.parquet, or parts of it a running sweep has not merged yet."""
    return (folder / "trials.parquet").exists() or any((folder / "parts").glob("*.parquet"))


def grid_json(folder: Path) -> dict[str, Any]:
    """The sweep's grid.json of a grid folder ({} when it is missing or unreadable)."""
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
        raise ReportError(str(path), "does not exist", "run the sweep on this grid first")
    try:
        runs = ResultsTable(folder).df  # the table and the parts a running sweep added since
    except ResultsError as e:
        raise ReportError(e.what, e.why, e.fix) from None
    if runs.empty:
        raise ReportError(str(path), "has no rows", "wait for the sweep to finish some runs")
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing:
        raise ReportError(str(path), f"lacks column(s) {', '.join(missing)}", "regenerate it with the current sweep")
    runs = runs.drop_duplicates("configId", keep="last").reset_index(drop=True)
    runs["Iprime"] = pd.to_numeric(runs["Iprime"], errors="coerce").astype(float)
    gj = grid_json(folder)
    yaml_path = folder / "grid.yaml"
    meta = {
        "name": gj.get("name") or folder.name,
        "folder": folder,
        "total": gj.get("total"),
        "configs": gj.get("configs"),
        # camelCase like the result columns; snake_case in grid.json files written before
        "by_family": gj.get("byFamily", gj.get("by_family")),
        "gan_subgrids": gj.get("ganSubgrids", gj.get("gan_subgrids")),
        "sample": gj.get("sample"),                    # --sample N: {configs, runs, seed, of}
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
    sample = meta.get("sample")
    if sample:   # --sample N: the sample is what was asked for; the grid is what it estimates
        text = f"{done} of {configs} configs, sampled at random (seed {sample['seed']})"
        return text + (f" (partial results: {sample['configs']} drawn)" if done < sample["configs"] else "")
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
    bestConfigId (the best ok seed's run), where the table has IprimeSetA/IprimeSetB,
    samplingVar (mean over ok seeds of analysis.sampling_variance), and where it has gSteps,
    gSteps (the median over ok seeds of the G updates a run made).
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
    for metric in analysis.report_metrics(runs):  # the dataset's own measures: mean over ok seeds
        value = pd.to_numeric(runs[metric], errors="coerce").where(np.isfinite(score))
        out[metric] = value.groupby(runs["settingsId"], sort=False).mean()
    if "gSteps" in runs.columns:  # G updates a finished run made (tables from before: none)
        steps = pd.to_numeric(runs["gSteps"], errors="coerce").where(np.isfinite(score))
        out["gSteps"] = steps.groupby(runs["settingsId"], sort=False).median()
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
    """Equal-width bins over all finite values, shared by every panel of every figure; a count
    (every value whole, at most n_bins of them from the least to the most) gets one bin per value."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = values.min(), values.max()
    if (values == np.round(values)).all() and hi - lo < n_bins:
        return np.arange(lo - 0.5, hi + 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def ok_values(configs: pd.DataFrame, metric: str = "Iprime") -> np.ndarray:
    """The I' (or another score column) of the ok rows (diverged and error rows have none)."""
    return pd.to_numeric(configs.loc[configs["status"] == "ok", metric], errors="coerce").to_numpy(dtype=float)


def best_runs(runs: pd.DataFrame, by: tuple[str, ...] = ("Iprime",)) -> dict[str, pd.Series]:
    """The best finished run of each model present (Fig. 4): the highest final I', or, with `by`,
    the highest value of its first column, ties broken by the next (a mixture's modesCaptured,
    then highQualityFrac, then I': I' alone is fooled by a cloud at the ring's centre)."""
    ok = runs[run_scores(runs).pipe(np.isfinite)]
    return {m: ok[ok["model"] == m].sort_values(list(by), ascending=False, kind="stable").iloc[0]
            for m in model_order(runs["model"]) if (ok["model"] == m).any()}


def quartile_runs(runs: pd.DataFrame, by: tuple[str, ...] = ("Iprime",)) -> dict[str, dict[str, pd.Series]]:
    """Per model, the ok runs with a curve of `by[0]` whose final value sits at the 25th, 50th and
    75th percentile, and the best (ties ordered by the next columns of `by`, as best_runs): where
    most runs end at 0 (modes captured), the best shows whether the runs that learn have stopped."""
    curves = runs.get(f"{by[0]}PerEpoch", pd.Series(None, index=runs.index, dtype=object))
    has_curve = curves.map(lambda c: c is not None and len(c) > 0)
    ok = runs[run_scores(runs).pipe(np.isfinite) & has_curve].sort_values([*dict.fromkeys(by), "configId"])
    out = {}
    for m in model_order(runs["model"]):
        rows = ok[ok["model"] == m]
        if len(rows):
            out[m] = {label: rows.iloc[round(q * (len(rows) - 1))]
                      for label, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("best", 1.0))}
    return out


def by_model(configs: pd.DataFrame, models: Any = None) -> dict[str, pd.DataFrame]:
    """{model: its rows} for the models (default: all, in report order) that have rows."""
    order = model_order(configs["model"]) if models is None else models
    return {m: configs[configs["model"] == m] for m in order if (configs["model"] == m).any()}


def paper_models(configs: pd.DataFrame) -> list[str]:
    """Fig. 2's models: those of EBGAN's and GAN's families (EBGAN, EBGAN-PT, GAN)."""
    paper = {_reference_family(REFERENCE), _reference_family(BASELINE)}
    return [m for m in model_order(configs["model"]) if _reference_family(m) in paper]


def other_families(configs: pd.DataFrame) -> dict[str, list[str]]:
    """{family title: its models present} for every family beyond the paper's, in report order."""
    paper = {_reference_family(REFERENCE), _reference_family(BASELINE)}
    out: dict[str, list[str]] = {}
    for m in model_order(configs["model"]):
        family = families.family_of_model(m)
        if (configs["model"] == m).any() and _reference_family(m) not in paper:
            out.setdefault(family.name if family else m, []).append(m)
    return out


# --- statistics ------------------------------------------------------------------------------

def pooled_thresholds(configs: pd.DataFrame,
                      quantiles: tuple[float, ...] = THRESHOLD_QUANTILES) -> dict[str, float]:
    """The I' thresholds of the summary: percentiles of all ok configs' I', models pooled."""
    vals = ok_values(configs)
    return {f"p{round(100 * q)}": float(np.quantile(vals, q)) if vals.size else np.nan
            for q in quantiles}


def describe(configs: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, Any]:
    """Counts, the share diverged with its Wilson interval, median/IQR of ok I', percent above
    each threshold, seed-to-seed spread, and the G updates a finished run made."""
    vals = ok_values(configs)
    diverged = int((configs["status"] == "diverged").sum())
    errors = int((configs["status"] == "error").sum())
    scored = vals.size + diverged
    q25, med, q75 = np.quantile(vals, [0.25, 0.5, 0.75]) if vals.size else (np.nan,) * 3
    low, high = stats.wilson_interval(diverged, scored)
    row = {"n": len(configs), "ok": vals.size, "diverged": diverged, "errors": errors,
           "runs": int(configs["runs"].sum()), "divergedFrac": diverged / scored if scored else np.nan,
           "divergedLow": low, "divergedHigh": high, "median": med, "q25": q25, "q75": q75,
           "iqr": q75 - q25}
    for name, t in thresholds.items():
        row[f"pctAbove_{name}"] = 100.0 * (vals > t).sum() / scored if scored else np.nan
    row["seedsPerConfig"] = float(configs["seeds"].median())
    row["seedStdMedian"] = float(configs["IprimeStd"].median())  # NaN with one seed
    row.update(analysis.spread_summary(configs))  # samplingStd beside the seed spread
    row.update(budget_summary(configs))
    return row


def budget_summary(configs: pd.DataFrame) -> dict[str, Any]:
    """gStepsMedian: the median over ok configs of their G updates per run (gSteps, the median
    over a config's ok seeds); budgetCounts: what the training budget counted ("dSteps" |
    "gSteps"; several joined by ','). NOT_RECORDED_VALUE where the table lacks the column."""
    g: float | str = NOT_RECORDED_VALUE
    if "gSteps" in configs:
        steps = configs.loc[configs["status"] == "ok", "gSteps"].dropna()
        g = float(steps.median()) if len(steps) else np.nan
    counts = configs["budgetCounts"].dropna().astype(str) if "budgetCounts" in configs else []
    return {"gStepsMedian": g, "budgetCounts": ",".join(sorted(set(counts))) or NOT_RECORDED_VALUE}


def summary_table(configs: pd.DataFrame, thresholds: dict[str, float] | None = None,
                  n_resamples: int = compare.BOOTSTRAP_RESAMPLES, seed: int = compare.BOOTSTRAP_SEED
                  ) -> pd.DataFrame:
    """Rows per model, per GAN subgrid (Fig. 3's, named by the subgrid) and per optimizer subgrid
    of every other model that has several (named '<model> <subgrid>'); `model` is the row's
    model label. Rows of a family other
    than EBGAN's carry the EBGAN-vs-that-row statistics of compare.against_reference (EBGAN
    first: medianDiffOk is EBGAN minus the row, probSuperiority and pairedScore EBGAN's edge),
    then every p-value on the table Holm-corrected together and each row's verdict
    (compare.adjust). The thresholds used are in .attrs["thresholds"], the number of p-values
    corrected in .attrs["holmM"].
    """
    thresholds = pooled_thresholds(configs) if thresholds is None else thresholds
    present = model_order(configs["model"])
    groups = [("model", m, m, g) for m, g in by_model(configs, present).items()]
    groups += [("subgrid", s, BASELINE, g) for s, g in subgrid_panels(configs).items()]
    for m in present:
        if m != BASELINE and m != REFERENCE:
            panels = subgrid_panels(configs, m)
            groups += [("subgrid", f"{m} {s}", m, g) for s, g in panels.items()] if len(panels) > 1 else []
    ref = configs[configs["model"] == REFERENCE]
    ref_scored = ref["status"].isin(("ok", "diverged")).any()
    reference_family = _reference_family(REFERENCE)
    rows = []
    for kind, name, model, g in groups:
        row = {"group": kind, "name": name, "model": model, **describe(g, thresholds),
               **dict.fromkeys(compare.COLUMNS, np.nan)}
        if ref_scored and not g["model"].map(_reference_family).eq(reference_family).any():
            row.update(compare.against_reference(ref, g, n_resamples=n_resamples, seed=seed))
        rows.append(row)
    table = compare.adjust(pd.DataFrame(rows))
    table.attrs["thresholds"] = thresholds
    return table


def measures_table(configs: pd.DataFrame, metrics: list[str], targets: dict[str, float]) -> pd.DataFrame:
    """A dataset's own measures per model (measures.csv; empty without any): for each metric
    its median and quartiles over ok configs (<m>Median, <m>Q25, <m>Q75), and where the dataset
    names the value at which a run counts as trained (Dataset.report_targets, e.g. every mode
    captured) the share of scored configs that reach it, a diverged config failing, with its
    Wilson 95% interval (<m>Reached, <m>ReachedLow, <m>ReachedHigh). A config's value is the
    mean over its ok seeds, so with several seeds it reaches the target when every seed does."""
    rows = []
    for model, g in by_model(configs).items() if metrics else ():
        scored = g[g["status"].isin(("ok", "diverged"))]
        row: dict[str, Any] = {"model": model, "configs": len(scored),
                               "diverged": int((scored["status"] == "diverged").sum())}
        for m in metrics:
            vals = ok_values(g, m)
            q25, med, q75 = np.quantile(vals, [0.25, 0.5, 0.75]) if vals.size else (np.nan,) * 3
            row.update({f"{m}Median": med, f"{m}Q25": q25, f"{m}Q75": q75})
            if m in targets:
                reached = int((pd.to_numeric(scored[m], errors="coerce") >= targets[m]).sum())
                low, high = stats.wilson_interval(reached, len(scored))
                row.update({f"{m}Target": targets[m], f"{m}Reached": reached / len(scored) if len(scored) else np.nan,
                            f"{m}ReachedLow": low, f"{m}ReachedHigh": high})
        rows.append(row)
    return pd.DataFrame(rows)


# --- provenance: which classifier, code, libraries and device produced the rows ---------------

def check_classifiers(runs: pd.DataFrame, where: Path, allow_mixed: bool = False) -> tuple[str, bool]:
    """The page's sentence on which classifier scored the runs, and whether several did. Raises
    ReportError when the scored (non-error) runs carry more than one classifierSha256, since their
    I' do not compare in one figure, unless `allow_mixed`. Runs without the value (written before it was recorded, or a
    whole table from before the column existed) count as one more classifier, an unknown one."""
    recorded = runs.get("classifierSha256", pd.Series(np.nan, index=runs.index, dtype=object))
    shas = recorded[runs["status"] != "error"].astype(object).fillna(NOT_RECORDED).value_counts()
    if len(shas) > 1:
        listing = ", ".join(f"{n} runs by {sha if sha == NOT_RECORDED else sha[:12] + '...'}"
                            for sha, n in shas.items())
        if not allow_mixed:
            raise ReportError(str(where), f"its runs were scored by {len(shas)} different classifiers "
                              f"({listing}), whose I' do not compare", "rerun the runs of the other "
                              "classifier(s) (delete their rows and resume the sweep), or pass "
                              "--allow-mixed-classifiers")
        return (f"WARNING: runs scored by {len(shas)} different classifiers are mixed in every figure "
                f"and table (--allow-mixed-classifiers): {listing}."), True
    if not len(shas) or shas.index[0] == NOT_RECORDED:
        return ("No run records its classifier (the table predates the provenance columns): the runs "
                "are taken as scored by one classifier, which is unknown."), False
    return f"Every scored run was scored by the classifier with SHA-256 {shas.index[0]}.", False


def speed_note(runs: pd.DataFrame) -> str:
    """The page's sentence on which speed variants trained the scored runs (`speed`, harness.speeds;
    rows written before it was recorded trained fp32, the only speed the sweep had)."""
    speed = runs.get("speed", pd.Series(np.nan, index=runs.index, dtype=object))
    counts = speed[runs["status"] != "error"].astype(object).fillna("fp32").value_counts()
    if len(counts) <= 1:
        return f"Every scored run trained at {counts.index[0] if len(counts) else 'fp32'} (the engine's speed variant)."
    listing = ", ".join(f"{n} runs at {name}" for name, n in counts.items())
    return (f"Runs trained at {len(counts)} speed variants ({listing}): the same configs, but bf16 and TF32 change "
            "the arithmetic (harness.gpucheck holds each variant to fp32's statistics, not its trajectory).")


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each provenance column's distinct values with their run counts; rows without a value
    (error rows, rows written before provenance was recorded) are counted as NOT_RECORDED."""
    rows = []
    for col in PROVENANCE_COLUMNS:
        values = runs[col] if col in runs.columns else pd.Series(np.nan, index=runs.index, dtype=object)
        for value, n in values.astype(object).where(values.notna(), NOT_RECORDED).value_counts().items():
            rows.append({"column": col, "value": str(value), "runs": int(n)})
    return pd.DataFrame(rows, columns=["column", "value", "runs"])
