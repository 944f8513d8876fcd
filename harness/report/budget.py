"""Best score against budget: the expected best of n configs drawn at random from the N a grid
ran (Tang et al. 2020's estimator), an interval on it whose coverage is simulated, and the
simulation (`python -m harness.report.budget` prints the full table).

The target is E[max of n iid draws] from the distribution the grid samples. The plain percentile
bootstrap under-covers it badly for large n (extreme order statistics); `expected_best_interval`
is a bootstrap-t with the estimator's unbiased standard error, drawn only for n up to
BUDGET_MAX_FRACTION x N, where N values still say something about the best of n.

Depends on numpy, scipy and pandas only.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

BUDGET_INTERVAL = ("bootstrap-t of the expected best of n (unbiased U-statistic standard error), "
                   "drawn for n <= BUDGET_MAX_FRACTION x N, and only to N/16 where the right tail of 100 "
                   "or more values is heavy ((q99 - q90) / (q90 - q50) > 1.75)")
# The budget interval: bootstrap resamples, and the largest n, as a fraction of the N configs
# drawn from, for which it is drawn (see expected_best_interval).
BUDGET_RESAMPLES = 1000
BUDGET_MAX_FRACTION = 0.25
SEED = 0
# A heavy right tail (a few configs far above the rest): the interval's upper bound falls short
# for large n. Simulated at N = 672 (python -m harness.report.budget --N 672 --distributions lomax
# lognormal): coverage 0.90-0.91 at n = N/4 for Lomax(3) and lognormal(0, 1), 0.94 at n = N/16.
# The tail ratio (q99 - q90) / (q90 - q50) tells them apart: at N = 672 its 5-95% range is 0.6-1.0
# for a normal, 1.05-1.84 for an exponential (which covers at N/4), 1.8-4.0 for those two tails.
# Below HEAVY_TAIL_MIN_N values q99 is the sample's maximum and the ratio is noise: no cut there.
HEAVY_TAIL_RATIO = 1.75
HEAVY_MAX_FRACTION = 1 / 16
HEAVY_TAIL_MIN_N = 100


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
    cancellation): _centred_u_and_variance on the centred rows.
    """
    centre = np.median(xs, axis=-1, keepdims=True)
    u, var = _centred_u_and_variance(xs - centre, n)
    return u + centre[..., 0], var


def _centred_u_and_variance(xc: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """_u_and_variance of rows already centred (U of the centred rows, and its variance)."""
    N = xc.shape[-1]
    # only the i >= n smallest can be a maximum of n (w_i = 0 below): the rest is left out
    xc = xc[..., n - 1:]
    w = expected_max_weights(N, [n])[0][n - 1:]
    u = xc @ w
    j = np.arange(2 * n, N + 1)  # the second maximum's rank: b_j = 0 below 2n
    with np.errstate(invalid="ignore", divide="ignore"):
        # b_j = C(j-n-1, n-1) / C(N-n, n): ways to pick the second subset, max at j, from the rest
        b = np.exp(_log_binom(j - n - 1, n - 1) - _log_binom(N - n, n))
    below = np.cumsum(xc * w, axis=-1)[..., n - 1:-1]  # at rank j: sum over i < j of w_i x_(i)
    # theta^2 estimate: 2 sum_{i<j} x_(i) x_(j) C(i-1,n-1) C(j-n-1,n-1) / (C(N,n) C(N-n,n))
    theta2 = 2 * np.einsum("...j,...j->...", xc[..., n:] * b, below)
    return u, u ** 2 - theta2  # Var = U^2 - unbiased(theta^2)


def tail_ratio(values: Any) -> float:
    """(q99 - q90) / (q90 - q50) of the values: how far the top percent reaches beyond the top
    decile, in units of the upper half's spread (0.8 for a normal, 1.4 an exponential, about 2.5
    for Lomax(3) and lognormal(0, 1)); inf where q90 = q50."""
    q50, q90, q99 = np.quantile(np.asarray(values, dtype=float), [0.5, 0.9, 0.99])
    return float((q99 - q90) / (q90 - q50)) if q90 > q50 else math.inf


def max_fraction_for(values: Any) -> float:
    """The largest n / N the interval is drawn for: BUDGET_MAX_FRACTION, or HEAVY_MAX_FRACTION
    where the right tail of HEAVY_TAIL_MIN_N or more values is heavy (tail_ratio above
    HEAVY_TAIL_RATIO)."""
    heavy = np.size(values) >= HEAVY_TAIL_MIN_N and tail_ratio(values) > HEAVY_TAIL_RATIO
    return HEAVY_MAX_FRACTION if heavy else BUDGET_MAX_FRACTION


def expected_best_interval(values: Any, ns: Any, confidence: float = 0.95,
                           resamples: int = BUDGET_RESAMPLES,
                           max_fraction: float | None = None,
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

    Where it is not drawn (nan): n > max_fraction * N (default max_fraction_for(values): N/4,
    or N/16 where the right tail is heavy, where the bootstrap-t's upper bound falls short of
    the target at large n). The estimator of the
    best of n leans on the top ~N/n values, and its standard error on fewer still: for larger
    n the interval has to widen to several times the estimator's actual spread to keep its
    coverage, and by n = N it would have to say something about the distribution beyond the
    largest value seen, which N values cannot. max_fraction above 1/2 is cut to 1/2: the
    unbiased variance needs two disjoint subsets of n. Also nan where N < 2, where the values
    have no spread (se 0), or where a bound comes out infinite.

    seed: an int or a numpy Generator for the resamples. Returns a DataFrame: n, expected,
    se, ciLow, ciHigh.
    """
    v = np.sort(np.asarray(values, dtype=float).ravel())
    v = v[~np.isnan(v)]
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
    limit = math.floor(min(max_fraction_for(v) if max_fraction is None else max_fraction, 0.5) * N)
    drawn = valid & (ns <= limit) & (N >= 2)
    if not drawn.any():
        return out
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    boot = np.sort(rng.choice(v, size=(resamples, N), replace=True), axis=1)
    # centred once for every n (see _u_and_variance): the estimates are shift invariant
    centre, boot_centre = float(np.median(v)), np.median(boot, axis=1)
    vc, boot_c = v - centre, boot - boot_centre[:, None]
    alpha = (1 - confidence) / 2
    se_col, low_col, high_col = (out[c].to_numpy(dtype=float, copy=True) for c in ("se", "ciLow", "ciHigh"))
    for row in np.flatnonzero(drawn):
        n = int(ns[row])
        u, var = _centred_u_and_variance(vc, n)
        u += centre
        if not var > 0:
            continue
        se = math.sqrt(var)
        ub, varb = _centred_u_and_variance(boot_c, n)
        num = ub + boot_centre - _plugin_weights(N, n) @ v
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(varb > 0, num / np.sqrt(np.where(varb > 0, varb, 1.0)),
                         np.sign(num) * np.inf)  # t* = (U* - V) / se*; no spread: +-inf (or 0)
        t = np.nan_to_num(t, nan=0.0, posinf=np.inf, neginf=-np.inf)
        t_lo = np.quantile(t, alpha, method="lower")
        t_hi = np.quantile(t, 1 - alpha, method="higher")
        low, high = u - t_hi * se, u - t_lo * se  # bootstrap-t: U - t*_(1-a/2) se, U - t*_(a/2) se
        se_col[row] = se
        if np.isfinite(low) and np.isfinite(high):
            low_col[row], high_col[row] = low, high
    return out.assign(se=se_col, ciLow=low_col, ciHigh=high_col)


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
    "lomax": {"draw": lambda rng, size: rng.pareto(3.0, size=size), "cdf": stats.lomax(3.0).cdf,
              "support": (0.0, np.inf), "about": "Lomax(3): a heavy right tail (moments below the 3rd finite)"},
    "lognormal": {"draw": lambda rng, size: rng.lognormal(0.0, 1.0, size=size), "cdf": stats.lognorm(1.0).cdf,
                  "support": (0.0, np.inf), "about": "lognormal(0, 1): a heavy right tail, every moment finite"},
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
                    max_fraction: float | None = None, seed: int = SEED) -> pd.DataFrame:
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


# --- the big coverage simulation -------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Print the coverage table of expected_best_interval (python -m harness.report.budget)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--N", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--distributions", nargs="+", default=list(BUDGET_DISTRIBUTIONS),
                    choices=list(BUDGET_DISTRIBUTIONS))
    ap.add_argument("--resamples", type=int, default=BUDGET_RESAMPLES)
    ap.add_argument("--max-fraction", type=float, default=None,
                    help="the largest n / N drawn (default: N/4, N/16 for a heavy right tail)")
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    table = coverage_table(args.N, args.distributions, args.replications,
                           confidence=args.confidence, resamples=args.resamples,
                           max_fraction=args.max_fraction, seed=args.seed)
    cap = "N/4, N/16 for a heavy right tail" if args.max_fraction is None else f"{args.max_fraction:g} N"
    print(f"bootstrap-t of the expected best of n, drawn for n <= {cap}; nominal "
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
