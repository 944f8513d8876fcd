"""The report's two fitted tables, each from the pure pieces below it: importance.csv (which
settings decide I', per family, with aliased settings as one feature) and budget.csv (the
expected best of n configs, with an interval whose coverage is simulated).

- Importance: a gradient-boosting model per family predicts I' (diverged configs at the floor,
  analysis.importance_target) from the settings that vary in it. Settings whose values
  determine one another across the family's rows (WGAN-GP's subgrid B changes lr, adamBeta1
  and adamBeta2 together) cannot be told apart by any model: they are one feature, named by
  its members ('lr+adamBeta1+adamBeta2', aliasing.alias_groups) and permuted together on each
  held-out fold (aliasing.grouped_permutation_importance). A feature only partly crossed with
  another (BEGAN's gamma 0.3 and 0.7 ran only at lr 1e-4) is flagged in the `aliasing` column:
  shuffling it alone makes combinations the grid never ran, so part of its importance is the
  model's extrapolation.
- Budget: per family and subgrid, Tang et al. 2020's expected best of n with the bootstrap-t
  interval of budget.expected_best_interval (drawn for n <= BUDGET_MAX_FRACTION x N only, N/16
  for a heavy right tail) and the exact spread of the best of n itself (analysis.best_of_n_quantiles).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from harness.report import aliasing, analysis, budget

# Importance: folds, permutation repeats, the smallest family that gets a model, and the
# features whose partial dependence is drawn.
CV_FOLDS = 5
PERMUTATION_REPEATS = 5
MIN_CONFIGS_FOR_IMPORTANCE = 20
TOP_SETTINGS = 3
IMPORTANCE_COLUMNS = ["family", "setting", "importance", "ciLow", "ciHigh", "aliasing"]
NO_PREDICTION = "no setting predicts I' at this n (the cross-validated R² interval does not lie above 0)"
# Budget: the band of the best of n itself (what one researcher with budget n gets).
BUDGET_BAND = (0.05, 0.95)
SEED = 0


# --- importance ------------------------------------------------------------------------------

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
    """One family's importance model: what it learned from (settings, and the features they form:
    groups of aliased settings, named by aliasing.group_name), how well it predicts, the model
    fitted on all rows (for partial dependence), and why it was skipped (if it was)."""
    family: str
    n: int
    settings: list[str]
    groups: list[list[str]] = dataclasses.field(default_factory=list)
    categorical: list[bool] = dataclasses.field(default_factory=list)
    levels: dict[str, list] = dataclasses.field(default_factory=dict)
    r2: float = math.nan
    r2Low: float = math.nan
    r2High: float = math.nan
    model: Any = None
    X: np.ndarray | None = None
    skipped: str | None = None

    @property
    def features(self) -> list[str]:
        return [aliasing.group_name(g) for g in self.groups]

    @property
    def predicts(self) -> bool:
        """Whether the held-out R² interval lies above 0: only then do its settings say anything."""
        return self.skipped is None and self.r2Low > 0


def aliasing_note(group: list[str], crossed: list[str]) -> str:
    """importance.csv's `aliasing` cell: '' for a setting crossed with every other one."""
    notes = [f"aliased: {', '.join(group)} change together (one feature)"] if len(group) > 1 else []
    notes += [f"partly crossed with {', '.join(crossed)}"] if crossed else []
    return "; ".join(notes)


def importance(configs: pd.DataFrame, known: Iterable[str] = (), folds: int = CV_FOLDS,
               repeats: int = PERMUTATION_REPEATS, seed: int = SEED
               ) -> tuple[pd.DataFrame, list[FamilyFit]]:
    """Permutation importance of each feature (a setting, or a group of aliased ones) for each
    family's I'.

    Per family (model label): a gradient-boosting regressor predicts I' (diverged = the floor,
    see analysis.importance_target) from the settings; K-fold cross-validation gives the
    held-out R^2, and on each held-out fold the drop in R^2 when one feature's columns are
    shuffled together (aliasing.grouped_permutation_importance, `repeats` shuffles) is that
    feature's importance. importance, ciLow, ciHigh: mean over folds with a corrected t
    interval (_corrected_t_interval), Bonferroni-adjusted over the family's features so that
    the intervals hold together: a feature "stands out" when its ciLow > 0. One that does not
    matter scores about 0 (an interval across 0); a negative value means shuffling it helped
    by chance. aliasing: aliasing_note. Columns: IMPORTANCE_COLUMNS.
    """
    from threadpoolctl import threadpool_limits

    # One thread: the model is small, and OpenMP threads on cores that are busy (a sweep, other
    # users) make it ten times slower, not faster.
    with threadpool_limits(1):
        rows_out, fits = [], []
        for fam in analysis.model_order(configs["model"], known):
            fit, rows = _fit_family(fam, configs[configs["model"] == fam], folds, repeats, seed)
            fits.append(fit)
            rows_out += rows
    table = pd.DataFrame(rows_out, columns=IMPORTANCE_COLUMNS)
    if len(table):
        table = (table.assign(_o=table["family"].map({f.family: i for i, f in enumerate(fits)}))
                 .sort_values(["_o", "importance"], ascending=[True, False])
                 .drop(columns="_o").reset_index(drop=True))
    return table, fits


def _fit_family(fam: str, family_rows: pd.DataFrame, folds: int, repeats: int, seed: int
                ) -> tuple[FamilyFit, list[dict[str, Any]]]:
    """One family's FamilyFit and its rows of importance.csv (none when skipped)."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    rows, y = analysis.importance_target(family_rows)
    settings = analysis.setting_columns(rows)
    fit = FamilyFit(family=fam, n=len(rows), settings=settings)
    if len(rows) < MIN_CONFIGS_FOR_IMPORTANCE:
        fit.skipped = f"{len(rows)} ok + diverged configs, fewer than {MIN_CONFIGS_FOR_IMPORTANCE}"
    elif not settings:
        fit.skipped = "no setting varies within this family"
    elif np.ptp(y) == 0:
        fit.skipped = "every config has the same I'"
    if fit.skipped:
        return fit, []
    X, fit.categorical, fit.levels = analysis.encode_settings(rows, settings)
    fit.groups = aliasing.alias_groups(rows, settings)
    columns = aliasing.group_columns(settings, fit.groups)
    k = min(folds, len(rows) // 5)
    per_fold, r2 = [], []
    for i, (train, test) in enumerate(KFold(k, shuffle=True, random_state=seed).split(X)):
        model = _model(fit.categorical, seed, len(train)).fit(X[train], y[train])
        r2.append(r2_score(y[test], model.predict(X[test])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pi = aliasing.grouped_permutation_importance(model, X[test], y[test], columns,
                                                         n_repeats=repeats, rng=seed + i)
        per_fold.append(pi["importances_mean"])
    per_fold = np.array(per_fold)  # folds x features
    fit.r2, fit.r2Low, fit.r2High = _corrected_t_interval(np.array(r2), 1 / k)
    level = 1 - 0.05 / len(fit.groups)  # Bonferroni: 95% for all features together
    crossing = aliasing.partial_crossing(rows, fit.groups)
    out = []
    for j, (group, name) in enumerate(zip(fit.groups, fit.features)):
        imp, lo, hi = _corrected_t_interval(per_fold[:, j], 1 / k, level)
        out.append({"family": fam, "setting": name, "importance": imp, "ciLow": lo, "ciHigh": hi,
                    "aliasing": aliasing_note(group, crossing[name])})
    fit.model, fit.X = _model(fit.categorical, seed, len(X)).fit(X, y), X
    return fit, out


def partial_dependence_curves(fit: FamilyFit, features: list[str]
                              ) -> dict[str, tuple[list, np.ndarray]]:
    """Per feature (a setting, or aliased settings by their group name): the value combinations
    its settings take in the family's configs (in the grid's terms, 'a/b/c' for a group) and
    the model's average predicted I' with every config set to each (brute-force partial
    dependence: a group's members move together, as the grid ran them)."""
    from threadpoolctl import threadpool_limits
    out = {}
    with threadpool_limits(1):  # as in importance()
        for f in features:
            group = fit.groups[fit.features.index(f)]
            cols = [fit.settings.index(s) for s in group]
            combos = (pd.DataFrame(fit.X[:, cols]).drop_duplicates()
                      .sort_values(list(range(len(cols))), na_position="last").to_numpy())
            avg = []
            for combo in combos:
                Xc = fit.X.copy()
                Xc[:, cols] = combo
                avg.append(float(np.mean(fit.model.predict(Xc))))
            labels = [_label(fit, group, cols, combo) for combo in combos]
            out[f] = (labels, np.array(avg))
    return out


def _label(fit: FamilyFit, group: list[str], cols: list[int], combo: np.ndarray) -> Any:
    """A value combination in the grid's terms: the value for one setting, 'a/b' for a group."""
    values = [None if np.isnan(v) else fit.levels[s][int(v)] if fit.categorical[c] else _num(v)
              for s, c, v in zip(group, cols, combo)]
    if len(values) == 1:
        return values[0]
    return "/".join("none" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _num(x: float) -> Any:
    return int(x) if float(x).is_integer() else float(x)


# --- best score against budget ---------------------------------------------------------------

def budget_curve(values: np.ndarray, ns: np.ndarray | None = None,
                 resamples: int = budget.BUDGET_RESAMPLES, seed: int = SEED,
                 band: tuple[float, float] = BUDGET_BAND, confidence: float = 0.95) -> pd.DataFrame:
    """Expected best of n configs drawn at random from `values` (higher is better), per n.

    expected: Tang et al. 2020's estimator. lo, hi: the `band` quantiles of the best of n
    itself (exact). ciLow, ciHigh: budget.expected_best_interval's bootstrap-t interval of the
    expectation, for a larger space of configs of which the grid is a sample; NaN for
    n > budget.BUDGET_MAX_FRACTION x N (N/16 for a heavy right tail: budget.max_fraction_for),
    where N values cannot bound the best of n.
    """
    v = np.sort(np.asarray(values, dtype=float))
    cols = ["n", "expected", "lo", "hi", "ciLow", "ciHigh"]
    if v.size == 0:
        return pd.DataFrame(columns=cols)
    ns = analysis.budget_ns(v.size) if ns is None else np.asarray(ns)
    interval = budget.expected_best_interval(v, ns, confidence, resamples, seed=seed)
    q = analysis.best_of_n_quantiles(v, ns, band)
    return pd.DataFrame({"n": ns, "expected": interval["expected"].to_numpy(), "lo": q[:, 0],
                         "hi": q[:, 1], "ciLow": interval["ciLow"].to_numpy(),
                         "ciHigh": interval["ciHigh"].to_numpy()})[cols]


def budget_table(configs: pd.DataFrame, known: Iterable[str] = (), metrics: Iterable[str] = ("Iprime", "fid"),
                 **kw) -> pd.DataFrame:
    """budget.csv: per family and subgrid (analysis.groups) and metric, the budget curve.

    Columns: family, subgrid, metric (Iprime | fid | a dataset's own measure), configs (N drawn
    from), n, expected, lo, hi, ciLow, ciHigh; FID on its own scale (lower is better: the
    expected LOWEST FID).
    """
    fid = (pd.to_numeric(configs["fid"], errors="coerce").astype(float) if "fid" in configs
           else pd.Series(np.nan, index=configs.index))
    finite_fid = fid[np.isfinite(fid) & (configs["status"] == "ok")]
    worst = float(finite_fid.max()) if len(finite_fid) else math.nan
    parts = []
    for g in analysis.groups(configs, known):
        for metric in metrics:
            if metric == "fid" and not np.isfinite(worst):
                continue
            values = analysis.budget_values(g["rows"], metric, worst)
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
