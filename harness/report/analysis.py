"""What the paper's histograms cannot show: pure computations on the report's tables.

Every function takes DataFrames (the runs of `trials.parquet`, or the configs of
`tables.aggregate_seeds`) and returns numbers or DataFrames; the report's figures draw them.
Nothing here knows the families by name: groups come from the `model` column (GAN, EBGAN,
EBGAN-PT, whatever the family registry holds), and a family's settings are the config
columns that vary within it.

- Robustness curves: the fraction of a group's configs whose score passes a threshold x.
- The sampling spread of I' (two disjoint sample sets per run) beside the spread over seeds.
- Hyperparameter importance's inputs: the settings that vary in a family, encoded, and the
  target (the model and its permutation importance: harness.report.estimates).
- Best score against budget's inputs: a group's values, the budgets n and the exact spread of
  the best of n (the expected best with its interval: harness.report.estimates).
- Where I' is fooled: runs with a high I' but a bad FID.

How outcomes are counted (as in the report): a config is ok (a finite I'), diverged, or error
(the run failed: no information about the model, left out everywhere here). Where a number
is needed for a diverged config, it scores DIVERGED_IPRIME and the worst FID of the grid.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from harness import datasets, families
from harness.config import setting_names

# A diverged config has no samples to score; where a number is needed it scores the bottom of
# the I' scale: I' is a mean of KL divergences, so >= 0, and a generator that collapsed to one
# image scores 0.
DIVERGED_IPRIME = 0.0
# "High I'" and "bad FID" for iprime_vs_fid.png: I' in the top quarter of the grid's ok runs
# (all families pooled) and FID worse than the grid's median ok FID.
HIGH_IPRIME_QUANTILE = 0.75
BAD_FID_QUANTILE = 0.5


# --- groups ----------------------------------------------------------------------------------

def model_order(labels: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """The model labels present, `known` ones first in their order, then the rest sorted."""
    present = {str(x) for x in labels if isinstance(x, str)}
    first = [m for m in known if m in present]
    return first + sorted(present - set(first))


def groups(configs: pd.DataFrame, known: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Each family (model label), then each optimizer subgrid of every family that has several.

    Returns dicts with label, model, subgrid ("all" for a whole family) and rows.
    """
    out = []
    models = model_order(configs["model"], known)
    for m in models:
        rows = configs[configs["model"] == m]
        out.append({"label": m, "model": m, "subgrid": "all", "rows": rows})
    for m in models:
        rows = configs[configs["model"] == m]
        subs = rows["subgrid"].dropna().unique() if "subgrid" in rows else []
        if len(subs) > 1:
            for s in ordered_subgrids(rows):
                out.append({"label": f"{m} {s}", "model": m, "subgrid": s,
                            "rows": rows[rows["subgrid"] == s]})
    return out


def ordered_subgrids(rows: pd.DataFrame) -> list[str]:
    """Subgrids ordered as Fig. 3: optimD, optimG, then lr from large to small where present."""
    def key(s: str) -> tuple:
        r = rows[rows["subgrid"] == s].iloc[0]
        return tuple(str(r[c]) for c in ("optimD", "optimG") if c in r.index) + (
            -float(r["lr"]) if "lr" in r.index and pd.notna(r["lr"]) else 0.0, s)
    return sorted(rows["subgrid"].dropna().unique(), key=key)


# --- per-config scores -----------------------------------------------------------------------

def dataset_of(runs: pd.DataFrame):
    """The runs' registered dataset (MNIST for a table from before the `dataset` column), None
    when its name is not registered here."""
    name = runs["dataset"].dropna() if "dataset" in runs else pd.Series(dtype=object)
    return datasets.find(name.iloc[0] if len(name) else datasets.DEFAULT)


def score_sample_counts(runs: pd.DataFrame) -> pd.Series:
    """The runs' scoreSamples values with their run counts, the most common first (empty without
    the column): the sample count the real anchor and the chance floors are scored at."""
    if "scoreSamples" not in runs:
        return pd.Series(dtype=int)
    return pd.to_numeric(runs["scoreSamples"], errors="coerce").dropna().astype(int).value_counts()


def report_metrics(runs: pd.DataFrame) -> list[str]:
    """The runs' dataset's own measures the report draws beside I' (harness.datasets: e.g. a
    mixture's modesCaptured), those present in the table; none for MNIST."""
    dataset = dataset_of(runs)
    return [m for m in (dataset.report_metrics if dataset else ()) if m in runs]


def primary_measure(runs: pd.DataFrame) -> str:
    """The measure the first screen's verdict is on: the dataset's primary_measure (the one no
    structureless sample passes: I' on MNIST, modesCaptured on a mixture) when the table has it,
    else I'. The others are secondary, each verdict on them a Holm family of its own."""
    dataset = dataset_of(runs)
    primary = dataset.primary_measure if dataset else "Iprime"
    return primary if primary in runs else "Iprime"


def norm_notes(runs: pd.DataFrame) -> list[str]:
    """A sentence per family whose D trains with a normalization of its own, not the grid's normD
    (harness.families.norm_override: WGAN-GP's layer norm, BEGAN's none). Tables from before
    normD was recorded trained Appendix C's batch norm."""
    normd = runs["normD"].fillna("batch") if "normD" in runs else pd.Series("batch", index=runs.index)
    pairs = sorted(set(zip(runs["family"], normd)))
    notes = (families.norm_override(f, d) for f, d in pairs if families.find(f))
    return [n for n in notes if n]


def report_targets(runs: pd.DataFrame) -> dict[str, float]:
    """The value of each of those measures at which a run counts as trained (Dataset.report_targets)."""
    dataset = dataset_of(runs)
    own = report_metrics(runs)
    return {m: float(v) for m, v in (dataset.report_targets if dataset else {}).items() if m in own}


def outcome_values(rows: pd.DataFrame, metric: str = "Iprime") -> np.ndarray:
    """A group's configs on a "higher is better" scale for threshold counts: ok configs their
    score, diverged ones -inf (below every threshold), errors dropped.

    metric "Iprime" (higher is better) or "fid" (lower is better: returned negated).
    """
    status = rows["status"].to_numpy()
    v = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
    sign = -1.0 if metric == "fid" else 1.0
    ok = (status == "ok") & np.isfinite(v)
    keep = ok | (status == "diverged")
    return np.where(ok, sign * v, -np.inf)[keep]


def passing_fraction(values: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Fraction of `values` >= each x (a survival function, 1 - ECDF; -inf never passes)."""
    values = np.sort(np.asarray(values, dtype=float))
    if values.size == 0:
        return np.full(len(xs), np.nan)
    return 1.0 - np.searchsorted(values, np.asarray(xs, dtype=float), side="left") / values.size


def fid_by_config(runs: pd.DataFrame, run_score: pd.Series, how: str = "mean") -> pd.Series:
    """Per settingsId, FID over seeds the way the report takes I' over seeds.

    An ok run (finite I', see tables.run_scores) brings its FID, a diverged one +inf (worse
    than any), an error none. "max" (the best seed for I') takes the lowest FID.
    """
    fid = pd.to_numeric(runs["fid"], errors="coerce").astype(float)
    ok = np.isfinite(run_score)
    value = pd.Series(np.where(ok, fid, np.where(np.isneginf(run_score), np.inf, np.nan)),
                      index=runs.index)
    agg = {"mean": "mean", "median": "median", "max": "min"}[how]
    return value.groupby(runs["settingsId"], sort=False).agg(agg)


# --- the sampling spread ---------------------------------------------------------------------

def sampling_variance(set_a: Any, set_b: Any) -> Any:
    """The variance of one run's I' at N samples from its two disjoint halves of N/2.

    With X_A, X_B iid at N/2 samples, E[(X_A - X_B)^2] = 2 var_{N/2}. Assuming var scales as
    1/N (I' is a smooth function of sample means: the delta method), var_N = var_{N/2} / 2,
    so (X_A - X_B)^2 / 4 is unbiased for var_N (one pair: sd_N ~ |A - B| / 2). Averaged over
    runs it is the pooled sampling variance.
    """
    return (np.asarray(set_a, dtype=float) - np.asarray(set_b, dtype=float)) ** 2 / 4


def spread_summary(configs: pd.DataFrame) -> dict[str, float | str]:
    """A group's two sources of noise in one run's I', as standard deviations.

    samplingStd: sqrt of the mean over ok configs of `samplingVar` (each config's mean over its
    ok seeds of sampling_variance): how much I' moves with the sample set alone.
    seedStdPooled: sqrt of the mean over configs with >= 2 ok seeds of their variance over
    seeds (IprimeStd^2): how much it moves with the training seed, sample set included.
    trainingStd: sqrt(max(0, seedStdPooled^2 - samplingStd^2)): the part due to training
    alone (law of total variance: var over seeds = var of the trained model's expected I' +
    mean sampling variance).
    Without the IprimeSetA/B columns in the table the sampling numbers are "not recorded".
    """
    seed_var = configs["IprimeStd"].to_numpy(dtype=float) ** 2 if "IprimeStd" in configs else []
    seed_var = np.asarray(seed_var)[np.isfinite(seed_var)]
    seed = float(np.sqrt(seed_var.mean())) if seed_var.size else math.nan
    if "samplingVar" not in configs:
        return {"samplingStd": "not recorded", "seedStdPooled": seed, "trainingStd": "not recorded"}
    ok = configs["status"] == "ok"
    sv = configs.loc[ok, "samplingVar"].to_numpy(dtype=float)
    sv = sv[np.isfinite(sv)]
    sampling = float(np.sqrt(sv.mean())) if sv.size else math.nan
    training = (float(np.sqrt(max(0.0, seed ** 2 - sampling ** 2)))
                if np.isfinite(seed) and np.isfinite(sampling) else math.nan)
    return {"samplingStd": sampling, "seedStdPooled": seed, "trainingStd": training}


# --- hyperparameter importance ---------------------------------------------------------------

def setting_columns(rows: pd.DataFrame) -> list[str]:
    """The settings that vary within these rows: settings columns (common and every family's own,
    `config.setting_names`) present, not all null, with more than one distinct value."""
    out = []
    for c in setting_names():
        if c in rows.columns:
            col = rows[c].dropna()
            if len(col) and col.astype(str).nunique() > 1:
                out.append(c)
    return out


def encode_settings(rows: pd.DataFrame, settings: list[str]
                    ) -> tuple[np.ndarray, list[bool], dict[str, list]]:
    """Settings as a float matrix for the model: numbers as they are, anything else (optimizer
    names, booleans) as category codes. Returns X, which columns are categorical, and each
    column's values in code order (numbers: the sorted distinct values), for the plots."""
    cols, categorical, levels = [], [], {}
    for c in settings:
        col = rows[c]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric:
            x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            levels[c] = sorted(set(x[np.isfinite(x)].tolist()))
        else:
            cat = pd.Categorical(col.astype(str))
            x = cat.codes.astype(float)
            x[x < 0] = np.nan
            levels[c] = list(cat.categories)
        cols.append(x)
        categorical.append(not numeric)
    return np.column_stack(cols) if cols else np.empty((len(rows), 0)), categorical, levels


def importance_target(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a family's importance model learns from (ok and diverged configs) and its
    target: I', with diverged configs at DIVERGED_IPRIME, so that settings that make training
    diverge count as important."""
    keep = rows[rows["status"].isin(("ok", "diverged"))]
    y = np.where(keep["status"] == "ok", keep["Iprime"].to_numpy(dtype=float), DIVERGED_IPRIME)
    return keep, y


# --- best score against budget ---------------------------------------------------------------

def best_of_n_quantiles(sorted_values: np.ndarray, ns: np.ndarray,
                        qs: Iterable[float]) -> np.ndarray:
    """Exact quantiles of the best of n drawn without replacement: P(max <= v_(i)) = C(i, n) /
    C(N, n) (hypergeometric: all n among the i smallest). Returns [len(ns), len(qs)]."""
    N = len(sorted_values)
    i = np.arange(1, N + 1)[None, :]
    n = np.asarray(ns, dtype=float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        logc = (special.gammaln(i + 1) - special.gammaln(i - n + 1)
                - (special.gammaln(N + 1) - special.gammaln(N - n + 1)))
    cdf = np.where(i >= n, np.exp(logc), 0.0)
    out = np.empty((len(ns), len(list(qs))))
    for c, q in enumerate(qs):
        idx = np.argmax(cdf >= q - 1e-12, axis=1)
        out[:, c] = sorted_values[idx]
    return out


def budget_ns(N: int, points: int = 24) -> np.ndarray:
    """The budgets drawn: 1..N on a log scale (every n up to 10)."""
    return np.unique(np.concatenate([np.arange(1, min(N, 10) + 1),
                                     np.round(np.geomspace(1, N, points)).astype(int)]))


def budget_values(rows: pd.DataFrame, metric: str, worst_fid: float) -> np.ndarray:
    """A group's configs on a "higher is better" scale for the expected best: I' with diverged
    configs at DIVERGED_IPRIME, -FID with diverged configs at -worst_fid (the worst finite FID of
    the grid), or a dataset's own measure (modes captured, ...) with diverged configs at 0 (no
    samples: no mode, no quality); errors dropped."""
    v = outcome_values(rows, metric)
    floor = -worst_fid if metric == "fid" else DIVERGED_IPRIME if metric == "Iprime" else 0.0
    return np.where(np.isneginf(v), floor, v)


# --- where I' is fooled ----------------------------------------------------------------------

def fooled_runs(runs: pd.DataFrame, run_score: pd.Series) -> tuple[pd.DataFrame, dict[str, float]]:
    """Ok runs with a finite I' and FID, each flagged `fooled` when its I' is high and its FID
    bad: I' >= the HIGH_IPRIME_QUANTILE quantile and FID > the BAD_FID_QUANTILE quantile of
    all such runs of the grid (families pooled). Returns the runs and the two thresholds."""
    fid = (pd.to_numeric(runs["fid"], errors="coerce").astype(float) if "fid" in runs
           else pd.Series(np.nan, index=runs.index))
    ok = runs[np.isfinite(run_score) & np.isfinite(fid)].copy()
    if ok.empty:
        return ok.assign(fooled=pd.Series(dtype=bool)), {"highIprime": math.nan, "badFid": math.nan}
    ok["fid"] = fid[ok.index]
    thr = {"highIprime": float(ok["Iprime"].quantile(HIGH_IPRIME_QUANTILE)),
           "badFid": float(ok["fid"].quantile(BAD_FID_QUANTILE))}
    ok["fooled"] = (ok["Iprime"] >= thr["highIprime"]) & (ok["fid"] > thr["badFid"])
    return ok, thr


# --- the margin ------------------------------------------------------------------------------

def margin_runs(runs: pd.DataFrame, run_score: pd.Series) -> pd.DataFrame:
    """The runs (ok and diverged) of the families whose grid varies `margin`; empty if none."""
    if "margin" not in runs:
        return runs.iloc[:0]
    scored = runs[~run_score.isna()]
    varies = [m for m, g in scored.groupby("model") if g["margin"].dropna().nunique() > 1]
    return scored[scored["model"].isin(varies) & scored["margin"].notna()]
