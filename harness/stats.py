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
- Best score against budget: an interval for the expected best of n configs
  (`expected_best_interval`) and the simulation that checks its coverage (`budget_coverage`,
  run as `python -m harness.stats`).
- Importance with aliased settings: settings that always move together form one predictor
  (`alias_groups`), groups only partly crossed are flagged (`partial_crossing`), and a group's
  columns are permuted together (`grouped_permutation_importance`).

Depends on numpy, scipy and pandas only (nothing else of the harness).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

# The names of the tests, for the page to print beside their p-values.
UNPAIRED_TEST = "two-sided Mann-Whitney U (diverged configs ranked below every finished one)"
PAIRED_TEST = "two-sided exact sign test (binomial on wins against losses, ties dropped)"
PAIRED_INTERVAL = "Wilson score interval of (wins + ties/2) / pairs"
BUDGET_INTERVAL = ("bootstrap-t of the expected best of n (unbiased U-statistic standard error), "
                   "drawn for n <= BUDGET_MAX_FRACTION x N")
ADJUSTMENT = "Holm-Bonferroni step-down"

DIVERGED = -np.inf  # a diverged config's score: below every finished one, tied with the others

# The budget interval: bootstrap resamples, and the largest n, as a fraction of the N configs
# drawn from, for which it is drawn (see expected_best_interval).
BUDGET_RESAMPLES = 1000
BUDGET_MAX_FRACTION = 0.25
SEED = 0


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
    low = np.where(empty, np.nan, np.clip(center - half, 0.0, 1.0))
    high = np.where(empty, np.nan, np.clip(center + half, 0.0, 1.0))
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


# --- best score against budget ---------------------------------------------------------------

def expected_max_weights(N: int, ns: Any) -> np.ndarray:
    """W[k, i]: the weight of the i-th smallest of N values in the expected maximum of ns[k] of
    them drawn at random without replacement, so E[max] = W @ sorted(values).

    Tang et al. 2020 (the correction of Dodge et al. 2019's expected validation performance):
    w_i = C(i-1, n-1) / C(N, n), i = 1..N, the probability that the i-th smallest is the
    largest of the n drawn. Over N values it is the average of the max over all C(N, n)
    subsets, a U-statistic: unbiased for the expected max of n iid draws from the
    distribution the N values are a sample of. Rows of n > N are all zero.
    """
    i = np.arange(1, N + 1)[None, :]
    n = np.asarray(ns, dtype=float).reshape(-1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        logw = _log_binom(i - 1, n - 1) - _log_binom(N, n)  # w_i = C(i-1, n-1) / C(N, n)
    return np.where((i >= n) & (n <= N), np.exp(logw), 0.0)


def _log_binom(a: Any, b: Any) -> Any:
    # log C(a, b) = lgamma(a+1) - lgamma(b+1) - lgamma(a-b+1)
    return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)


def _plugin_weights(N: int, n: int) -> np.ndarray:
    """The expected max of n draws WITH replacement from N sorted values: the bootstrap world's
    true value (the estimator's expectation over resamples)."""
    c = (np.arange(N + 1) / N) ** n
    return np.diff(c)  # P(max = i-th smallest) = (i/N)^n - ((i-1)/N)^n


def _u_and_variance(xs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The expected-max U-statistic of degree n and an unbiased estimate of its variance, for
    each row of xs (sorted ascending along the last axis; needs 2n <= N).

    Var(U) = E[U^2] - theta^2, and theta^2 = E[max(S1) max(S2)] for two disjoint n-subsets, is
    estimated without bias by the average of max(S1) max(S2) over all ordered pairs of disjoint
    n-subsets of the sample. With maxima at the i-th and j-th smallest, i < j, there are
    C(i-1, n-1) C(j-n-1, n-1) such pairs out of C(N, n) C(N-n, n), which sums in O(N). Rows are
    centred on their median first (the estimate is shift invariant; centring avoids
    cancellation).
    """
    N = xs.shape[-1]
    xc = xs - np.median(xs, axis=-1, keepdims=True)
    w = expected_max_weights(N, [n])[0]
    u = xc @ w
    j = np.arange(1, N + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # b_j = C(j-n-1, n-1) / C(N-n, n): ways to pick the second subset, max at j, from the rest
        b = np.where(j >= 2 * n, np.exp(_log_binom(j - n - 1, n - 1) - _log_binom(N - n, n)), 0.0)
    wx = xc * w
    below = np.cumsum(wx, axis=-1) - wx  # sum over i < j of w_i x_(i)
    # theta^2 estimate: 2 sum_{i<j} x_(i) x_(j) C(i-1,n-1) C(j-n-1,n-1) / (C(N,n) C(N-n,n))
    theta2 = 2 * np.sum(xc * b * below, axis=-1)
    return u + np.median(xs, axis=-1), u ** 2 - theta2  # Var = U^2 - unbiased(theta^2)


def expected_best_interval(values: Any, ns: Any, confidence: float = 0.95,
                           resamples: int = BUDGET_RESAMPLES,
                           max_fraction: float = BUDGET_MAX_FRACTION,
                           seed: int | np.random.Generator = SEED) -> pd.DataFrame:
    """The expected best of n configs (higher is better) estimated from N values, with an
    interval for the population's expected max of n iid draws.

    expected: Tang et al.'s estimator (expected_max_weights), for every n <= N.
    se: its standard error, the square root of an unbiased estimate of its variance
    (_u_and_variance, exact for a U-statistic), where the interval is drawn.
    ciLow, ciHigh: a bootstrap-t interval: t* = (U* - V) / se* over resamples with
    replacement, where V is the expected max of n draws from the N values themselves (the
    bootstrap world's truth: U* is unbiased for V, not for U); the interval is
    U - t*_(1-a/2) se .. U - t*_(a/2) se. Centring at V removes the downward shift that makes
    the plain percentile interval miss; studentizing carries the right skew of the estimate
    and the noise of its own standard error into the interval.

    Where it is not drawn (nan): n > max_fraction * N (default N/4). The estimator of the
    best of n leans on the top ~N/n values, and its standard error on fewer still: for larger
    n the interval has to widen to several times the estimator's actual spread to keep its
    coverage, and by n = N it would have to say something about the distribution beyond the
    largest value seen, which N values cannot. max_fraction above 1/2 is cut to 1/2: the
    unbiased variance needs two disjoint subsets of n. Also nan where N < 2, where the values
    have no spread (se 0), or where a bound comes out infinite.

    seed: an int or a numpy Generator for the resamples. Returns a DataFrame: n, expected,
    se, ciLow, ciHigh.
    """
    v = np.sort(_clean(values))
    if np.isinf(v).any():
        raise ValueError("values must be finite: give diverged configs a floor score first")
    N = v.size
    ns = np.asarray(ns, dtype=int).reshape(-1)
    out = pd.DataFrame({"n": ns, "expected": np.nan, "se": np.nan, "ciLow": np.nan,
                        "ciHigh": np.nan})
    if N == 0:
        return out
    valid = (ns >= 1) & (ns <= N)
    out.loc[valid, "expected"] = expected_max_weights(N, ns[valid]) @ v
    limit = math.floor(min(max_fraction, 0.5) * N)
    drawn = valid & (ns <= limit) & (N >= 2)
    if not drawn.any():
        return out
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    boot = np.sort(rng.choice(v, size=(resamples, N), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    for row in np.flatnonzero(drawn):
        n = int(ns[row])
        u, var = _u_and_variance(v, n)
        if not var > 0:
            continue
        se = math.sqrt(var)
        ub, varb = _u_and_variance(boot, n)
        num = ub - _plugin_weights(N, n) @ v
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(varb > 0, num / np.sqrt(np.where(varb > 0, varb, 1.0)),
                         np.sign(num) * np.inf)  # t* = (U* - V) / se*; no spread: +-inf (or 0)
        t = np.nan_to_num(t, nan=0.0, posinf=np.inf, neginf=-np.inf)
        t_lo = np.quantile(t, alpha, method="lower")
        t_hi = np.quantile(t, 1 - alpha, method="higher")
        low, high = u - t_hi * se, u - t_lo * se  # bootstrap-t: U - t*_(1-a/2) se, U - t*_(a/2) se
        out.loc[row, "se"] = se
        if np.isfinite(low) and np.isfinite(high):
            out.loc[row, ["ciLow", "ciHigh"]] = [low, high]
    return out


# The distributions of the coverage simulation: a sampler and the CDF (for the true expected max).
def _mixture_draw(rng: np.random.Generator, size: Any) -> np.ndarray:
    x = np.maximum(0.0, rng.normal(1.0, 0.3, size))
    return np.where(rng.random(size) < 0.3, 0.0, x)


BUDGET_DISTRIBUTIONS: dict[str, dict[str, Any]] = {
    "normal": {"draw": lambda rng, size: rng.normal(size=size), "cdf": stats.norm.cdf,
               "support": (-np.inf, np.inf), "about": "N(0, 1)"},
    "exponential": {"draw": lambda rng, size: rng.exponential(size=size),
                    "cdf": stats.expon.cdf, "support": (0.0, np.inf),
                    "about": "Exp(1): skewed, unbounded above"},
    "beta": {"draw": lambda rng, size: rng.beta(2.0, 5.0, size=size),
             "cdf": stats.beta(2.0, 5.0).cdf, "support": (0.0, 1.0),
             "about": "Beta(2, 5): skewed, bounded"},
    "mixture": {"draw": _mixture_draw,
                "cdf": lambda x: np.where(np.asarray(x) < 0, 0.0,
                                          0.3 + 0.7 * stats.norm.cdf((np.asarray(x) - 1.0) / 0.3)),
                "support": (0.0, np.inf),
                "about": "30% zeros (diverged configs at 0) + 70% N(1, 0.3) clipped at 0"},
}


def expected_max(cdf: Callable[[Any], Any], n: int, support: tuple[float, float]) -> float:
    """E[max of n iid draws] from a CDF by numerical integration:
    E[max] = int_0^inf (1 - F^n) dx - int_-inf^0 F^n dx (valid for any distribution, atoms
    included), restricted to the support."""
    lo, hi = support
    pos = integrate.quad(lambda x: 1.0 - float(cdf(x)) ** n, max(lo, 0.0), hi, limit=200)[0] \
        if hi > 0 else 0.0  # int_0^inf P(max > x) dx
    neg = integrate.quad(lambda x: float(cdf(x)) ** n, lo, min(hi, 0.0), limit=200)[0] \
        if lo < 0 else 0.0  # int_-inf^0 P(max <= x) dx
    return pos - neg + (lo if lo > 0 else 0.0) + (hi if hi < 0 else 0.0)


def budget_ns_for_check(N: int) -> np.ndarray:
    """The budgets the coverage table shows: 1, 2, 5, 10, N/10, N/5, N/4, N/2 and N."""
    ns = [1, 2, 5, 10, round(N / 10), round(N / 5), math.floor(N / 4), N // 2, N]
    return np.unique([n for n in ns if 1 <= n <= N])


def budget_coverage(distribution: str = "normal", N: int = 50, ns: Any = None,
                    replications: int = 200, confidence: float = 0.95,
                    resamples: int = BUDGET_RESAMPLES,
                    max_fraction: float = BUDGET_MAX_FRACTION, seed: int = SEED) -> pd.DataFrame:
    """How often expected_best_interval covers the true expected max of n, by simulation.

    Each replication draws N values from `distribution` (a key of BUDGET_DISTRIBUTIONS) and
    computes the intervals; the target is the population's E[max of n iid draws]
    (expected_max, numerical integration). Returns per n: target; drawn (share of
    replications with a finite interval); coverage (share of those that cover the target),
    missLow / missHigh (the target below / above the interval); width (median width);
    widthRatio (that median over 2 z sd(expected), the width of an interval that knew the
    estimator's spread; 1 is as tight as a normal interval can be); bias (mean estimate minus
    target, in sd of the estimate).
    """
    dist = BUDGET_DISTRIBUTIONS[distribution]
    ns = budget_ns_for_check(N) if ns is None else np.asarray(ns, dtype=int)
    target = np.array([expected_max(dist["cdf"], int(n), dist["support"]) for n in ns])
    rng = np.random.default_rng(seed)
    est, low, high = (np.full((replications, ns.size), np.nan) for _ in range(3))
    for r in range(replications):
        res = expected_best_interval(dist["draw"](rng, N), ns, confidence, resamples,
                                     max_fraction, rng)
        est[r], low[r], high[r] = res["expected"], res["ciLow"], res["ciHigh"]
    finite = np.isfinite(low) & np.isfinite(high)
    cover = finite & (low <= target) & (target <= high)
    z = stats.norm.ppf(0.5 + confidence / 2)
    sd = est.std(axis=0, ddof=1)
    drawn = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.array([np.median((high - low)[finite[:, k], k]) if drawn[k] else np.nan
                          for k in range(ns.size)])
        return pd.DataFrame({
            "distribution": distribution, "N": N, "n": ns, "target": target,
            "drawn": drawn / replications,
            "coverage": np.where(drawn > 0, cover.sum(axis=0) / drawn, np.nan),
            "missLow": np.where(drawn > 0, (finite & (target < low)).sum(axis=0) / drawn, np.nan),
            "missHigh": np.where(drawn > 0, (finite & (target > high)).sum(axis=0) / drawn, np.nan),
            "width": width, "widthRatio": width / (2 * z * sd),
            "bias": (est.mean(axis=0) - target) / sd})


def coverage_table(Ns: Iterable[int] = (50, 200), distributions: Iterable[str] | None = None,
                   replications: int = 1000, **kw) -> pd.DataFrame:
    """budget_coverage for every N and distribution, stacked (the big simulation)."""
    names = list(BUDGET_DISTRIBUTIONS) if distributions is None else list(distributions)
    return pd.concat([budget_coverage(d, N, replications=replications, **kw)
                      for N in Ns for d in names], ignore_index=True)


# --- importance with aliased settings --------------------------------------------------------

def _partition(col: pd.Series) -> tuple[int, ...]:
    """The partition of the rows a column induces, as codes in order of first appearance (two
    columns induce the same partition iff their codes are equal); nan is a value of its own."""
    codes, _ = pd.factorize(col.astype(object), use_na_sentinel=False)
    return tuple(codes.tolist())


def _codes(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Each row's combination of values of `columns`, as one integer code in order of first
    appearance (nan a value of its own)."""
    per_column = np.stack([np.asarray(_partition(rows[c])) for c in columns], axis=1)
    _, first, inverse = np.unique(per_column, axis=0, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # renumber combinations by first appearance
    return rank[inverse.reshape(-1)]


def alias_groups(rows: pd.DataFrame, settings: Sequence[str]) -> list[list[str]]:
    """Settings that determine one another across these rows, grouped.

    Two settings are aliased when each one's value fixes the other's (a one-to-one map between
    their values over the rows: both split the rows into the same groups), e.g. lr, adamBeta1
    and adamBeta2 when a grid has two optimizer subgrids that change all three. Their effects
    cannot be told apart from these rows, so they are one predictor. Settings with a single
    value are not predictors at all and are dropped. Groups come in the order of their first
    member in `settings`, members in that order; a group's name is '+'.join(group)
    (group_name).
    """
    by_partition: dict[tuple[int, ...], list[str]] = {}
    for s in settings:
        part = _partition(rows[s])
        if len(set(part)) > 1:
            by_partition.setdefault(part, []).append(s)
    return list(by_partition.values())


def group_name(group: Sequence[str]) -> str:
    """A group of aliased settings by name: its members joined by '+'."""
    return "+".join(group)


def partial_crossing(rows: pd.DataFrame, groups: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """For each group (from alias_groups), the other groups it is only partly crossed with.

    Two groups are partly crossed when some combinations of their values never occur in the
    rows although they are not aliased, e.g. BEGAN's gamma 0.3 and 0.7 run only at lr 1e-4.
    Permuting one of them alone (permutation importance) then creates combinations the grid
    never ran, so its importance partly measures the model's extrapolation: worth a note on
    the page. Returns {group name: [names of the partly crossed groups, in `groups` order]}.
    """
    parts = {group_name(g): _codes(rows, g) for g in groups}
    out: dict[str, list[str]] = {name: [] for name in parts}
    names = list(parts)
    for i, g in enumerate(names):
        for h in names[i + 1:]:
            if np.array_equal(parts[g], parts[h]):
                continue  # aliased: not crossed at all (alias_groups would have merged them)
            combos = np.unique(np.stack([parts[g], parts[h]]), axis=1).shape[1]
            # fully crossed: every pair of values occurs, combos = levels(g) x levels(h)
            if combos < len(np.unique(parts[g])) * len(np.unique(parts[h])):
                out[g].append(h)
                out[h].append(g)
    return {g: [h for h in names if h in out[g]] for g in names}


def group_columns(settings: Sequence[str], groups: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each group's member columns as indices into `settings` (the columns of X)."""
    return [[list(settings).index(s) for s in g] for g in groups]


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)  # R^2 = 1 - SSE/SST


def grouped_permutation_importance(model: Any, X: np.ndarray, y: np.ndarray,
                                   groups: Sequence[Sequence[int]], n_repeats: int = 5,
                                   rng: int | np.random.Generator | None = None
                                   ) -> dict[str, np.ndarray]:
    """Permutation importance by group: the drop in R^2 of a fitted model when the columns of one
    group are shuffled, all with the same row permutation.

    As sklearn.inspection.permutation_importance(scoring="r2") but per group of columns
    (group_columns of alias_groups): shuffling aliased settings together keeps every row on
    a combination the grid ran, and credits the group once, where shuffling them one at a time
    splits (or, for a tree model that used one of them, hides) their shared effect. A group of
    one column is sklearn's permutation of that column. Meant for held-out rows, as
    harness.analysis does on each cross-validation fold.
    Returns importances_mean, importances_std (n_groups,) and importances (n_groups,
    n_repeats): baseline R^2 minus R^2 after the shuffle.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    X = np.asarray(X)
    y = np.asarray(y, dtype=float)
    base = _r2(y, model.predict(X))
    drops = np.empty((len(groups), n_repeats))
    for g, cols in enumerate(groups):
        cols = list(cols)
        for r in range(n_repeats):
            perm = rng.permutation(X.shape[0])
            Xp = X.copy()
            Xp[:, cols] = X[perm][:, cols]  # one permutation for every member column
            drops[g, r] = base - _r2(y, model.predict(Xp))
    return {"importances_mean": drops.mean(axis=1), "importances_std": drops.std(axis=1),
            "importances": drops}


# --- the big coverage simulation -------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Print the coverage table of expected_best_interval (python -m harness.stats)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--N", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--distributions", nargs="+", default=list(BUDGET_DISTRIBUTIONS),
                    choices=list(BUDGET_DISTRIBUTIONS))
    ap.add_argument("--resamples", type=int, default=BUDGET_RESAMPLES)
    ap.add_argument("--max-fraction", type=float, default=BUDGET_MAX_FRACTION)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    table = coverage_table(args.N, args.distributions, args.replications,
                           confidence=args.confidence, resamples=args.resamples,
                           max_fraction=args.max_fraction, seed=args.seed)
    print(f"bootstrap-t of the expected best of n, drawn for n <= {args.max_fraction:g} N; nominal "
          f"{args.confidence:.0%}, {args.replications} replications, {args.resamples} resamples, "
          f"seed {args.seed}")
    for name in args.distributions:
        print(f"  {name}: {BUDGET_DISTRIBUTIONS[name]['about']}")
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    drawn = table[table["drawn"] > 0]
    print(f"lowest coverage where drawn: {drawn['coverage'].min():.3f}")
    return table


if __name__ == "__main__":
    main()
