"""harness.report.budget: the expected best of n configs, its unbiased variance, the bootstrap-t
interval and its coverage, simulated small enough to take seconds (the full table: python -m
harness.report.budget). Pure numbers: no data, no GPU."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.report import budget

NEG = -np.inf


# --- best of n -------------------------------------------------------------------------------

def test_expected_max_weights_brute_force():
    x = np.sort(np.random.default_rng(2).normal(size=8))
    W = budget.expected_max_weights(8, [1, 3, 8, 9])
    for row, n in zip(W[:3], (1, 3, 8), strict=True):
        brute = np.mean([x[list(s)].max() for s in itertools.combinations(range(8), n)])
        assert row @ x == pytest.approx(brute) and row.sum() == pytest.approx(1.0)
    assert not W[3].any()  # n > N


def test_expected_max_is_the_mean_at_one_and_the_max_at_n():
    rng = np.random.default_rng(0)
    v = np.sort(rng.normal(size=6144))
    W = budget.expected_max_weights(v.size, [1, 2, 100, v.size])
    np.testing.assert_allclose(W.sum(1), 1.0, rtol=1e-9)  # no overflow at Table 1's size
    e = W @ v
    assert e[0] == pytest.approx(v.mean()) and e[-1] == pytest.approx(v.max())
    assert np.all(np.diff(e) > 0)
    # n = 2 by hand: E max(X_i, X_j) over pairs = sum_i v_(i) (i - 1) / C(N, 2)
    assert e[1] == pytest.approx((v * np.arange(v.size)).sum() / (v.size * (v.size - 1) / 2))


def test_unbiased_variance_is_exact_u_statistic_formula():
    x = np.sort(np.random.default_rng(3).exponential(size=9))
    for n in (1, 2, 4):
        subsets = list(itertools.combinations(range(9), n))
        u = np.mean([x[list(s)].max() for s in subsets])
        pairs = [x[list(s)].max() * x[list(t)].max()
                 for s in subsets for t in subsets if not set(s) & set(t)]
        got_u, got_var = budget._u_and_variance(x, n)
        assert got_u == pytest.approx(u) and got_var == pytest.approx(u ** 2 - np.mean(pairs))


def test_expected_best_interval_shape_and_where_drawn():
    v = np.random.default_rng(4).normal(size=40)
    out = budget.expected_best_interval(v, [1, 5, 10, 11, 40, 41])
    assert list(out.columns) == ["n", "expected", "se", "ciLow", "ciHigh"]
    drawn = np.isfinite(out["ciLow"]).to_numpy()
    assert drawn.tolist() == [True, True, True, False, False, False]  # n <= N/4 only
    assert np.isfinite(out["expected"]).tolist() == [True] * 5 + [False]
    assert (out.loc[drawn, "ciLow"] < out.loc[drawn, "expected"]).all()
    assert (out.loc[drawn, "expected"] < out.loc[drawn, "ciHigh"]).all()
    assert out["expected"].iloc[0] == pytest.approx(v.mean())
    same = budget.expected_best_interval(v, [1, 5, 10, 11, 40, 41])
    pd.testing.assert_frame_equal(out, same)  # seeded
    flat = budget.expected_best_interval(np.zeros(20), [1, 2])
    assert flat["expected"].tolist() == [0.0, 0.0] and flat["ciLow"].isna().all()
    with pytest.raises(ValueError):
        budget.expected_best_interval([1.0, NEG], [1])


@pytest.mark.parametrize("distribution", ["normal", "mixture"])
def test_budget_interval_covers(distribution):
    """A small run of the coverage simulation: >= 90% of nominal 95% wherever drawn (the full
    one, with more distributions and N = 200: python -m harness.report.budget)."""
    table = budget.budget_coverage(distribution, N=50, ns=[1, 2, 5, 10, 12, 25],
                                  replications=200, seed=11)
    drawn = table[table["drawn"] > 0]
    assert drawn["n"].tolist() == [1, 2, 5, 10, 12]
    assert (drawn["drawn"] == 1).all()
    assert (drawn["coverage"] >= 0.90).all(), drawn
    assert (drawn["widthRatio"] < 2.0).all(), drawn  # not bought with a useless width
    assert table.loc[table["n"] == 25, "coverage"].isna().all()


def test_expected_max_targets():
    d = budget.BUDGET_DISTRIBUTIONS
    assert budget.expected_max(d["exponential"]["cdf"], 10, d["exponential"]["support"]) == \
        pytest.approx(sum(1 / k for k in range(1, 11)), rel=1e-6)
    assert budget.expected_max(d["normal"]["cdf"], 2, d["normal"]["support"]) == \
        pytest.approx(1 / math.sqrt(math.pi), rel=1e-6)
    # the mixture's atom at 0: E[max of 1] = 0.7 E[max(0, N(1, 0.3))]
    m = budget.expected_max(d["mixture"]["cdf"], 1, d["mixture"]["support"])
    z = 1 / 0.3
    assert m == pytest.approx(0.7 * (1 * sps.norm.cdf(z) + 0.3 * sps.norm.pdf(z)), rel=1e-6)


# --- heavy right tails -------------------------------------------------------------------------

def test_the_tail_ratio_tells_heavy_right_tails_from_light_ones():
    rng = np.random.default_rng(5)
    light = [budget.tail_ratio(d(rng)) for d in (lambda r: r.normal(size=672), lambda r: r.exponential(size=672),
                                                   lambda r: r.beta(2, 5, size=672))]
    heavy = [budget.tail_ratio(d(rng)) for d in (lambda r: r.pareto(3.0, size=672),
                                                   lambda r: r.lognormal(0, 1, size=672))]
    assert max(light) < budget.HEAVY_TAIL_RATIO < min(heavy)
    assert budget.max_fraction_for(rng.pareto(3.0, size=672)) == budget.HEAVY_MAX_FRACTION


@pytest.mark.parametrize("distribution", ["lomax", "lognormal"])
def test_a_heavy_tail_is_drawn_only_where_the_interval_covers(distribution):
    """At N = 672, n = 150 covered 0.88-0.91 (a quarter of N was drawn before); now the interval
    stops at N/16 = 42, where it covers about 0.94 (200 replications in the docstring's table;
    here 100, so the bound leaves room for sampling: sd about 0.024)."""
    ns = [10, 42, 150]
    table = budget.budget_coverage(distribution, 672, ns=ns, replications=100, resamples=300, seed=3)
    drawn = table.set_index("n")["drawn"]
    assert drawn[150] < 0.1 and drawn[42] > 0.9                 # cut where the tail is heavy
    covered = table[table["n"] <= 42]["coverage"]
    assert (covered >= 0.88).all() and covered.mean() >= 0.92
