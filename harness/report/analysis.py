"""What the paper's histograms cannot show: pure computations on the report's tables.

Every function takes DataFrames (the runs of `trials.parquet`, or the configs of
`tables.aggregate_seeds`) and returns numbers or DataFrames; the report's figures draw them.
Nothing here knows the families by name: groups come from the `model` column (GAN, EBGAN,
EBGAN-PT, whatever the family registry holds), and a family's settings are the config
columns that vary within it.

- Robustness curves: the fraction of a group's configs whose score passes a threshold x.
- The sampling spread of I' (two disjoint sample sets per run) beside the spread over seeds.
- Hyperparameter importance: a gradient-boosting model per family predicts I' from the
  settings; cross-validated R^2 and permutation importance on held-out folds.
- Best score against budget: the expected best of n configs drawn at random from the grid
  (the unbiased estimator of Tang et al. 2020), with the spread of that best and a bootstrap CI.
- Where I' is fooled: runs with a high I' but a bad FID.

How outcomes are counted (as in the report): a config is ok (a finite I'), diverged, or error
(the run failed: no information about the model, left out everywhere here). Where a number
is needed for a diverged config, it scores DIVERGED_IPRIME and the worst FID of the grid.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from harness.config import setting_names

# A diverged config has no samples to score; where a number is needed it scores the bottom of
# the I' scale: I' is a mean of KL divergences, so >= 0, and a generator that collapsed to one
# image scores 0.
DIVERGED_IPRIME = 0.0
# "High I'" and "bad FID" for iprime_vs_fid.png: I' in the top quarter of the grid's ok runs
# (all families pooled) and FID worse than the grid's median ok FID.
HIGH_IPRIME_QUANTILE = 0.75
BAD_FID_QUANTILE = 0.5
# Importance: folds, permutation repeats, and the smallest family that gets a model.
CV_FOLDS = 5
PERMUTATION_REPEATS = 5
MIN_CONFIGS_FOR_IMPORTANCE = 20
TOP_SETTINGS = 3
# Budget: bootstrap resamples for the CI of the expected best; the best-of-n band.
BUDGET_RESAMPLES = 1000
BUDGET_BAND = (0.05, 0.95)
SEED = 0


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


def _model(categorical: list[bool], seed: int, n_train: int):
    """Gradient boosting of modest capacity (100 trees of 8 leaves, shrinkage 0.05, a leaf
    >= 20 configs, or a tenth of a small family's): enough for main effects and a few
    interactions of a grid's discrete settings, small enough not to fit the noise of a few
    hundred configs."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.05, max_leaf_nodes=8,
                                         min_samples_leaf=max(3, min(20, n_train // 10)),
                                         categorical_features=np.array(categorical, dtype=bool)
                                         if any(categorical) else None,
                                         early_stopping=False, random_state=seed)


def _corrected_t_interval(values: np.ndarray, test_fraction: float,
                          confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and CI over K cross-validation folds with the Nadeau & Bengio (2003) correction:
    var = s^2 (1/K + n_test/n_train), t with K - 1 degrees of freedom. The folds share training
    data, so the naive s^2/K interval would be too narrow."""
    k = values.size
    mean = float(values.mean())
    if k < 2:
        return mean, math.nan, math.nan
    se = values.std(ddof=1) * math.sqrt(1 / k + test_fraction / (1 - test_fraction))
    half = stats.t.ppf(0.5 + confidence / 2, k - 1) * se
    return mean, mean - half, mean + half


@dataclasses.dataclass
class FamilyFit:
    """One family's importance model: what it learned from, how well it predicts, the model
    fitted on all rows (for partial dependence), and why it was skipped (if it was)."""
    family: str
    n: int
    settings: list[str]
    categorical: list[bool] = dataclasses.field(default_factory=list)
    levels: dict[str, list] = dataclasses.field(default_factory=dict)
    r2: float = math.nan
    r2Low: float = math.nan
    r2High: float = math.nan
    model: Any = None
    X: np.ndarray | None = None
    skipped: str | None = None


def importance(configs: pd.DataFrame, known: Iterable[str] = (), folds: int = CV_FOLDS,
               repeats: int = PERMUTATION_REPEATS, seed: int = SEED
               ) -> tuple[pd.DataFrame, list[FamilyFit]]:
    """Permutation importance of each varying setting for each family's I'.

    Per family (model label): a gradient-boosting regressor predicts I' (diverged = the floor,
    see importance_target) from the settings; K-fold cross-validation gives the held-out R^2,
    and on each held-out fold the drop in R^2 when one setting's column is shuffled
    (sklearn.inspection.permutation_importance, `repeats` shuffles) is that setting's
    importance. importance, ciLow, ciHigh: mean over folds with a corrected t interval
    (_corrected_t_interval), Bonferroni-adjusted over the family's settings so that the
    intervals hold together: a setting "stands out" when its ciLow > 0. One that does not
    matter scores about 0 (an interval across 0); a negative value means shuffling it helped
    by chance.
    """
    from threadpoolctl import threadpool_limits

    # One thread: the model is small, and OpenMP threads on cores that are busy (a sweep, other
    # users) make it ten times slower, not faster.
    with threadpool_limits(1):
        return _importance(configs, known, folds, repeats, seed)


def _importance(configs: pd.DataFrame, known: Iterable[str], folds: int, repeats: int,
                seed: int) -> tuple[pd.DataFrame, list[FamilyFit]]:
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    rows_out, fits = [], []
    for fam in model_order(configs["model"], known):
        rows, y = importance_target(configs[configs["model"] == fam])
        settings = setting_columns(rows)
        fit = FamilyFit(family=fam, n=len(rows), settings=settings)
        fits.append(fit)
        if len(rows) < MIN_CONFIGS_FOR_IMPORTANCE:
            fit.skipped = f"{len(rows)} ok + diverged configs, fewer than {MIN_CONFIGS_FOR_IMPORTANCE}"
            continue
        if not settings:
            fit.skipped = "no setting varies within this family"
            continue
        if np.ptp(y) == 0:
            fit.skipped = "every config has the same I'"
            continue
        X, fit.categorical, fit.levels = encode_settings(rows, settings)
        k = min(folds, len(rows) // 5)
        per_fold, r2 = [], []
        for i, (train, test) in enumerate(KFold(k, shuffle=True, random_state=seed).split(X)):
            model = _model(fit.categorical, seed, len(train)).fit(X[train], y[train])
            r2.append(r2_score(y[test], model.predict(X[test])))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                pi = permutation_importance(model, X[test], y[test], scoring="r2",
                                            n_repeats=repeats, random_state=seed + i)
            per_fold.append(pi.importances_mean)
        per_fold = np.array(per_fold)  # folds x settings
        fit.r2, fit.r2Low, fit.r2High = _corrected_t_interval(np.array(r2), 1 / k)
        level = 1 - 0.05 / len(settings)  # Bonferroni: 95% for all settings together
        for j, s in enumerate(settings):
            imp, lo, hi = _corrected_t_interval(per_fold[:, j], 1 / k, level)
            rows_out.append({"family": fam, "setting": s, "importance": imp, "ciLow": lo, "ciHigh": hi})
        fit.model, fit.X = _model(fit.categorical, seed, len(X)).fit(X, y), X
    table = pd.DataFrame(rows_out, columns=["family", "setting", "importance", "ciLow", "ciHigh"])
    if len(table):
        table = (table.assign(_o=table["family"].map({f.family: i for i, f in enumerate(fits)}))
                 .sort_values(["_o", "importance"], ascending=[True, False])
                 .drop(columns="_o").reset_index(drop=True))
    return table, fits


def partial_dependence_curves(fit: FamilyFit, settings: list[str]
                              ) -> dict[str, tuple[list, np.ndarray]]:
    """Per setting: its values (in the grid's terms) and the model's average predicted I' at
    each (sklearn.inspection.partial_dependence on the family's own configs)."""
    from sklearn.inspection import partial_dependence
    from threadpoolctl import threadpool_limits
    out = {}
    with threadpool_limits(1):  # as in importance()
        for s in settings:
            j = fit.settings.index(s)
            # brute: the faster "recursion" leaves out the model's baseline (not on the I' scale)
            pd_ = partial_dependence(fit.model, fit.X, [j], kind="average", grid_resolution=100,
                                     method="brute", categorical_features=fit.categorical
                                     if any(fit.categorical) else None)
            grid = pd_["grid_values"][0]
            labels = ([fit.levels[s][int(g)] for g in grid] if fit.categorical[j]
                      else [_num(g) for g in grid])
            out[s] = (labels, pd_["average"][0])
    return out


def _num(x: float) -> Any:
    return int(x) if float(x).is_integer() else float(x)


# --- best score against budget ---------------------------------------------------------------

def expected_max_weights(N: int, ns: np.ndarray) -> np.ndarray:
    """W[k, i]: the weight of the i-th smallest of N values in the expected maximum of n_k of
    them drawn at random without replacement, so E[max] = W @ sorted(values).

    Tang et al. 2020 ("Showing Your Work Doesn't Always Work", the correction of Dodge et al.
    2019's expected validation performance): w_i = C(i-1, n-1) / C(N, n), i = 1..N, the
    probability that the i-th smallest is the largest of the n drawn. Over the N values of
    the grid it is the average of max over all C(N, n) subsets: exact for draws from the grid,
    unbiased for n iid draws from the distribution the grid samples.
    """
    i = np.arange(1, N + 1)[None, :]
    n = np.asarray(ns, dtype=float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        logw = (special.gammaln(i) - special.gammaln(n) - special.gammaln(i - n + 1)
                - (special.gammaln(N + 1) - special.gammaln(n + 1) - special.gammaln(N - n + 1)))
    return np.where(i >= n, np.exp(logw), 0.0)


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
    configs at DIVERGED_IPRIME, or -FID with diverged configs at -worst_fid (the worst finite
    FID of the grid); errors dropped."""
    v = outcome_values(rows, metric)
    floor = DIVERGED_IPRIME if metric == "Iprime" else -worst_fid
    return np.where(np.isneginf(v), floor, v)


def budget_curve(values: np.ndarray, ns: np.ndarray | None = None,
                 resamples: int = BUDGET_RESAMPLES, seed: int = SEED,
                 band: tuple[float, float] = BUDGET_BAND, confidence: float = 0.95) -> pd.DataFrame:
    """Expected best of n configs drawn at random from `values` (higher is better), per n.

    expected: Tang et al. 2020's estimator (expected_max_weights). lo, hi: the `band`
    quantiles of the best of n itself (what one researcher with budget n gets; exact).
    ciLow, ciHigh: percentile bootstrap CI of `expected` (the configs resampled with
    replacement, the same estimator on each resample: its uncertainty as an estimate for a
    larger space of configs of which the grid is a sample).
    """
    v = np.sort(np.asarray(values, dtype=float))
    N = v.size
    cols = ["n", "expected", "lo", "hi", "ciLow", "ciHigh"]
    if N == 0:
        return pd.DataFrame(columns=cols)
    ns = budget_ns(N) if ns is None else np.asarray(ns)
    W = expected_max_weights(N, ns)
    boot = np.sort(np.random.default_rng(seed).choice(v, size=(resamples, N), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    ci = np.quantile(boot @ W.T, [alpha, 1 - alpha], axis=0)
    q = best_of_n_quantiles(v, ns, band)
    return pd.DataFrame({"n": ns, "expected": W @ v, "lo": q[:, 0], "hi": q[:, 1],
                         "ciLow": ci[0], "ciHigh": ci[1]})


def budget_table(configs: pd.DataFrame, known: Iterable[str] = (), **kw) -> pd.DataFrame:
    """budget.csv: per family and subgrid (groups) and metric, the budget curve.

    Columns: family, subgrid, metric (Iprime | fid), configs (N drawn from), n, expected, lo,
    hi, ciLow, ciHigh; FID on its own scale (lower is better: the expected LOWEST FID).
    """
    fid = (pd.to_numeric(configs["fid"], errors="coerce").astype(float) if "fid" in configs
           else pd.Series(np.nan, index=configs.index))
    finite_fid = fid[np.isfinite(fid) & (configs["status"] == "ok")]
    worst = float(finite_fid.max()) if len(finite_fid) else math.nan
    parts = []
    for g in groups(configs, known):
        for metric in ("Iprime", "fid"):
            if metric == "fid" and not np.isfinite(worst):
                continue
            values = budget_values(g["rows"], metric, worst)
            if not values.size:  # every config of the group failed: nothing to draw from
                continue
            curve = budget_curve(values, **kw)
            if metric == "fid":
                curve[["expected", "lo", "hi", "ciLow", "ciHigh"]] *= -1
                curve = curve.rename(columns={"lo": "hi", "hi": "lo", "ciLow": "ciHigh",
                                              "ciHigh": "ciLow"})
            parts.append(curve.assign(family=g["model"], subgrid=g["subgrid"], metric=metric,
                                      configs=values.size))
    cols = ["family", "subgrid", "metric", "configs", "n", "expected", "lo", "hi", "ciLow", "ciHigh"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


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
