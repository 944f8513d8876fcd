"""Statistics for comparing GAN families with divergence counted in: pure functions on arrays.

A config is ok (a finite score), diverged (training blew up: no score) or error (the run
failed: no information, dropped). The claim under test is about robustness, so a diverged
config must count in every comparison rather than vanish from it. `with_divergence` puts
every config on one "higher is better" scale on which a diverged config ranks below every
finished one; every test here is rank based (or a count of wins), so that scale is all they
need and the value chosen for "diverged" cannot move a result.

- Unpaired: Mann-Whitney U with divergence inside and on survivors only, and the probability
  of superiority (`unpaired_tests`).
- Paired: the same grid point (architecture, dropout) under two families or subgrids, an exact
  sign test and the share of pairs won (`pair_configs`, `paired_comparison`).
- Many comparisons on one page: Holm's step-down adjustment (`holm`).
- Proportions: Wilson's score interval (`wilson_interval`).
(The interval on the best of n configs is in harness/report/budget.py; settings that move
together, for importance, in harness/report/aliasing.py.)

Depends on numpy, scipy and pandas only (nothing else of the harness).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

# The names of the tests, for the page to print beside their p-values.
UNPAIRED_TEST = "two-sided Mann-Whitney U (diverged configs ranked below every finished one)"
PAIRED_TEST = "two-sided exact sign test (binomial on wins against losses, ties dropped)"
PAIRED_INTERVAL = "Wilson score interval of (wins + ties/2) / pairs"
ADJUSTMENT = "Holm-Bonferroni step-down"

DIVERGED = -np.inf  # a diverged config's score: below every finished one, tied with the others


# --- proportions -----------------------------------------------------------------------------

def wilson_interval(k: Any, n: Any, confidence: float = 0.95) -> tuple[Any, Any]:
    """Wilson's score interval for a binomial proportion k/n, elementwise over arrays.

    The interval of the p for which the score test does not reject: unlike the Wald interval
    p +- z sqrt(p(1-p)/n) it stays inside [0, 1] and keeps its coverage near 0 and 1 and for
    small n. k may be fractional (e.g. wins + ties/2). (nan, nan) where n == 0. Scalars in,
    floats out; arrays in, arrays out.
    """
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k_arr / n_arr
        denom = 1 + z ** 2 / n_arr
        center = (p + z ** 2 / (2 * n_arr)) / denom  # Wilson: (p + z^2/2n) / (1 + z^2/n)
        # Wilson half-width: z / (1 + z^2/n) sqrt(p(1-p)/n + z^2/4n^2)
        half = z / denom * np.sqrt(p * (1 - p) / n_arr + z ** 2 / (4 * n_arr ** 2))
    empty = n_arr <= 0
    # at k = 0 (k = n) the bound is exactly 0 (1): center - half rounds to 3.5e-18 there
    low = np.where(empty, np.nan, np.where(k_arr <= 0, 0.0, np.clip(center - half, 0.0, 1.0)))
    high = np.where(empty, np.nan, np.where(k_arr >= n_arr, 1.0, np.clip(center + half, 0.0, 1.0)))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


# --- one scale for ok and diverged configs ---------------------------------------------------

def with_divergence(values: Any, status: Any, lower_is_better: bool = False) -> np.ndarray:
    """Scores on which a diverged config ranks below every finished one.

    ok with a finite value: the value (negated when lower_is_better, e.g. FID, so that higher
    is always better); diverged: -inf (DIVERGED), equal to every other diverged config, below
    every finite score; error, or ok without a finite value: nan, to be dropped. -inf is
    ordered and tied like any number by ranking (scipy.stats.rankdata, hence mannwhitneyu) and
    by comparisons, so rank tests and win counts treat divergence as the worst outcome with no
    arbitrary floor value to choose.
    """
    v = np.asarray(pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce"),
                   dtype=float)
    s = np.asarray(status).astype(str).ravel()
    ok = (s == "ok") & np.isfinite(v)
    sign = -1.0 if lower_is_better else 1.0
    return np.where(ok, sign * v, np.where(s == "diverged", DIVERGED, np.nan))


def _clean(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x[~np.isnan(x)]


# --- unpaired --------------------------------------------------------------------------------

def unpaired_tests(a: Any, b: Any) -> dict[str, float]:
    """Two groups of configs (scores from with_divergence; nan dropped), compared without pairing.

    nA, nB: configs counted (ok + diverged); divergedA, divergedB: the share diverged.
    mwuU, mwuP: Mann-Whitney U of a and its two-sided p-value, divergence inside (diverged
    configs tie at the bottom; scipy's tie correction applies).
    probSuperiority: P(a > b) + P(a = b)/2 for a config drawn from each group, divergence
    inside (the common-language effect size, U / (nA nB); 0.5 = no difference).
    mwuUOk, mwuPOk, probSuperiorityOk: the same on survivors only (finite scores): whether the
    configs that finished differ, whatever the divergence rates.
    nan where a group is empty.
    """
    x, y = _clean(a), _clean(b)
    out: dict[str, float] = {"nA": float(x.size), "nB": float(y.size),
                             "divergedA": float(np.isneginf(x).mean()) if x.size else math.nan,
                             "divergedB": float(np.isneginf(y).mean()) if y.size else math.nan}
    for suffix, (xs, ys) in {"": (x, y), "Ok": (x[np.isfinite(x)], y[np.isfinite(y)])}.items():
        u = p = ps = math.nan
        if xs.size and ys.size:
            res = stats.mannwhitneyu(xs, ys, alternative="two-sided")
            u, p = float(res.statistic), float(res.pvalue)
            ps = u / (xs.size * ys.size)  # U = #(a > b) + #(a = b)/2 over all pairs
        out.update({f"mwuU{suffix}": u, f"mwuP{suffix}": p, f"probSuperiority{suffix}": ps})
    return out


# --- paired ----------------------------------------------------------------------------------

def pair_configs(a: pd.DataFrame, b: pd.DataFrame, keys: Sequence[str], value: str = "score"
                 ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Align two groups' configs on the settings they share: pair i is one grid point.

    a, b: one row per config, with the `keys` columns (the shared settings, e.g. nLayerG,
    nLayerD, sizeG, sizeD, dropoutD) and a `value` column (a score from with_divergence).
    Inner join on `keys`: points present on one side only are left out. A key must be unique
    on each side, else ValueError: a repeated key means the keys do not name a grid point
    (a varying setting missing from them, or seeds not yet aggregated into configs), and
    averaging would be wrong for divergence scores (the mean of -inf and a score is -inf).
    Returns a's values, b's values and the keys of the pairs, in the same order.
    """
    keys = list(keys)
    for side, df in (("a", a), ("b", b)):
        missing = [c for c in keys + [value] if c not in df.columns]
        if missing:
            raise ValueError(f"{side} lacks column(s) {missing}")
        dup = df.duplicated(subset=keys, keep=False)
        if dup.any():
            first = df.loc[dup, keys].iloc[0].to_dict()
            raise ValueError(f"{side}: {int(dup.sum())} rows share their key with another row "
                             f"(e.g. {first}); pair configs, one row per grid point")
    merged = a[keys + [value]].merge(b[keys + [value]], on=keys, how="inner",
                                     suffixes=("_a", "_b"), validate="one_to_one")
    return (merged[f"{value}_a"].to_numpy(dtype=float), merged[f"{value}_b"].to_numpy(dtype=float),
            merged[keys].reset_index(drop=True))


def paired_comparison(a: Any, b: Any, confidence: float = 0.95) -> dict[str, float]:
    """Two groups on the same grid points (a[i], b[i]: scores from with_divergence), compared pair
    by pair. Pairs with a nan on either side are dropped.

    pairedN: pairs counted. pairedWins, pairedLosses, pairedTies: a > b, a < b, a == b (a
    diverged run loses to any finished one; both diverged is a tie).
    pairedWinFrac, pairedLossFrac, pairedTieFrac: those counts over pairedN.
    pairedScore: (wins + ties/2) / pairedN, the paired probability of superiority: 0.5 when
    neither side is better, on the scale of unpaired_tests' probSuperiority.
    pairedWinLow, pairedWinHigh: the Wilson interval (PAIRED_INTERVAL) of pairedScore, with
    wins + ties/2 successes out of pairedN. Ties are split in half rather than dropped because
    both-diverged pairs are common in a robustness study and "neither wins" is part of the
    answer: dropping them would report the share won among decided pairs only and hide how
    many pairs no side finished. A pair's score is 0, 1/2 or 1, whose variance p(1-p) - tie/4
    is at most the binomial p(1-p) that Wilson assumes, so ties make the interval conservative,
    never too narrow. Its null value 0.5 is the sign test's null (P(win) = P(loss)).
    pairedP: two-sided exact sign test (PAIRED_TEST): scipy.stats.binomtest of wins out of
    wins + losses at 1/2, ties dropped (1.0 when every pair is a tie).
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a and b must be aligned pairs, got {x.size} and {y.size} values")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = x.size
    wins, losses = int((x > y).sum()), int((x < y).sum())
    ties = n - wins - losses
    out = {"pairedN": float(n), "pairedWins": float(wins), "pairedLosses": float(losses),
           "pairedTies": float(ties)}
    if n == 0:
        return out | dict.fromkeys(("pairedWinFrac", "pairedLossFrac", "pairedTieFrac",
                                    "pairedScore", "pairedWinLow", "pairedWinHigh", "pairedP"),
                                   math.nan)
    low, high = wilson_interval(wins + ties / 2, n, confidence)
    decided = wins + losses
    p = stats.binomtest(wins, decided, 0.5, alternative="two-sided").pvalue if decided else 1.0
    return out | {"pairedWinFrac": wins / n, "pairedLossFrac": losses / n,
                  "pairedTieFrac": ties / n, "pairedScore": (wins + ties / 2) / n,
                  "pairedWinLow": low, "pairedWinHigh": high, "pairedP": float(p)}


# --- many tests ------------------------------------------------------------------------------

def holm(pvalues: Any) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input's order and shape.

    Step-down: with the m non-nan p-values sorted p_(1) <= ... <= p_(m), the adjusted p_(i) is
    max over j <= i of min(1, (m - j + 1) p_(j)), so adjusted values keep the order of the raw
    ones. Rejecting where the adjusted value is <= alpha controls the family-wise error rate at
    alpha under any dependence. nan entries are passed through and not counted in m.
    """
    p = np.asarray(pvalues, dtype=float)
    flat = p.ravel()
    out = flat.copy()
    idx = np.flatnonzero(~np.isnan(flat))
    m = idx.size
    if m:
        order = idx[np.argsort(flat[idx], kind="stable")]
        scaled = (m - np.arange(m)) * flat[order]  # Holm: (m - j + 1) p_(j), j = 1..m
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))  # step-down: running max
    return out.reshape(p.shape)
