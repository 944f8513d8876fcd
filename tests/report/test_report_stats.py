"""harness.report.stats: rank tests with divergence inside, paired sign test, Holm, Wilson, the budget
interval's coverage, and aliased settings for importance. Pure numbers: no data, no GPU."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.report import aliasing, budget, stats

NEG = -np.inf


# --- Wilson ----------------------------------------------------------------------------------

def test_wilson_matches_scipy_and_is_vectorised():
    ks, ns = np.array([0, 3, 7, 10, 1]), np.array([10, 10, 20, 10, 1])
    low, high = stats.wilson_interval(ks, ns)
    for k, n, lo, hi in zip(ks, ns, low, high, strict=True):
        ci = sps.binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)
    lo, hi = stats.wilson_interval(3, 10, confidence=0.9)
    ci = sps.binomtest(3, 10).proportion_ci(0.9, method="wilson")
    assert isinstance(lo, float) and (lo, hi) == pytest.approx((ci.low, ci.high))


def test_wilson_empty_and_fractional():
    low, high = stats.wilson_interval(np.array([0, 2.5]), np.array([0, 5]))
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert low[1] < 0.5 < high[1] and high[1] - 0.5 == pytest.approx(0.5 - low[1])
    assert all(map(math.isnan, stats.wilson_interval(0, 0)))


# --- one scale for divergence ----------------------------------------------------------------

def test_with_divergence_codes_status():
    v = stats.with_divergence([1.5, np.nan, 2.0, 3.0, np.nan],
                              ["ok", "diverged", "error", "diverged", "ok"])
    assert v[0] == 1.5 and v[1] == NEG and np.isnan(v[2]) and v[3] == NEG and np.isnan(v[4])
    fid = stats.with_divergence([10.0, 20.0, np.nan], ["ok", "ok", "diverged"], lower_is_better=True)
    assert list(fid) == [-10.0, -20.0, NEG]  # lower FID is better: negated; diverged still worst


def test_mannwhitneyu_handles_divergence_like_a_tied_floor():
    """-inf ranks below every finite score and ties with the other -inf: the same U and p as
    any finite floor below all scores, whatever the floor."""
    rng = np.random.default_rng(0)
    a = np.where(rng.random(40) < 0.3, NEG, rng.normal(1, 1, 40))
    b = np.where(rng.random(50) < 0.6, NEG, rng.normal(0.5, 1, 50))
    got = sps.mannwhitneyu(a, b, alternative="two-sided")
    for floor in (-1e6, -50.0):
        ref = sps.mannwhitneyu(np.where(np.isneginf(a), floor, a), np.where(np.isneginf(b), floor, b),
                               alternative="two-sided")
        assert got.statistic == ref.statistic and got.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert np.array_equal(sps.rankdata(np.r_[a, b]),
                          sps.rankdata(np.where(np.isneginf(np.r_[a, b]), -1e6, np.r_[a, b])))


# --- unpaired --------------------------------------------------------------------------------

def test_unpaired_tests_hand_example():
    a = np.array([3.0, 2.0, NEG, np.nan])  # nan (an error) dropped
    b = np.array([1.0, NEG, NEG])
    out = stats.unpaired_tests(a, b)
    # pairs (a, b): 3>1,3>-inf x2; 2>1, 2>-inf x2; -inf<1, -inf=-inf x2 -> 6 wins, 2 ties of 9
    assert out["probSuperiority"] == pytest.approx((6 + 1) / 9)
    assert out["mwuU"] == pytest.approx(7.0)
    assert out["nA"] == 3 and out["nB"] == 3
    assert out["divergedA"] == pytest.approx(1 / 3) and out["divergedB"] == pytest.approx(2 / 3)
    assert out["probSuperiorityOk"] == 1.0  # survivors: 3 and 2 against 1
    ref = sps.mannwhitneyu([3.0, 2.0], [1.0], alternative="two-sided")
    assert out["mwuPOk"] == pytest.approx(ref.pvalue)
    assert 0 < out["mwuP"] <= 1


def test_unpaired_divergence_inside_changes_the_answer():
    """Same survivors, very different divergence rates: only the with-divergence test sees it."""
    rng = np.random.default_rng(1)
    ok_a, ok_b = rng.normal(0, 1, 60), rng.normal(0, 1, 60)
    a = np.r_[ok_a, np.full(5, NEG)]
    b = np.r_[ok_b, np.full(60, NEG)]
    out = stats.unpaired_tests(a, b)
    assert out["mwuP"] < 1e-4 and out["mwuPOk"] > 0.01 and out["probSuperiority"] > 0.6


def test_unpaired_degenerate():
    out = stats.unpaired_tests([NEG, NEG], [NEG])
    assert out["mwuP"] == 1.0 and out["probSuperiority"] == 0.5 and math.isnan(out["mwuPOk"])
    assert math.isnan(stats.unpaired_tests([], [1.0])["mwuP"])


# --- paired ----------------------------------------------------------------------------------

def test_paired_comparison_hand_example():
    a = np.array([2.0, 1.0, NEG, NEG, 5.0, 0.0, 3.0, np.nan, 1.0])
    b = np.array([1.0, NEG, NEG, 0.0, 4.0, 1.0, 3.0, 9.0, np.nan])
    out = stats.paired_comparison(a, b)
    # pairs kept: 7; wins: (2,1) (1,-inf) (5,4) = 3; losses: (-inf,0) (0,1) = 2; ties: (-inf,-inf) (3,3)
    assert (out["pairedN"], out["pairedWins"], out["pairedLosses"], out["pairedTies"]) == (7, 3, 2, 2)
    assert out["pairedWinFrac"] == pytest.approx(3 / 7) and out["pairedTieFrac"] == pytest.approx(2 / 7)
    assert out["pairedScore"] == pytest.approx(4 / 7)
    assert (out["pairedWinLow"], out["pairedWinHigh"]) == pytest.approx(stats.wilson_interval(4, 7))
    assert out["pairedP"] == pytest.approx(sps.binomtest(3, 5, 0.5).pvalue)
    assert "sign test" in stats.PAIRED_TEST


def test_paired_comparison_edges():
    ties = stats.paired_comparison([NEG, 1.0], [NEG, 1.0])
    assert ties["pairedP"] == 1.0 and ties["pairedScore"] == 0.5 and ties["pairedWinFrac"] == 0
    empty = stats.paired_comparison([np.nan], [1.0])
    assert empty["pairedN"] == 0 and math.isnan(empty["pairedP"])
    with pytest.raises(ValueError):
        stats.paired_comparison([1.0, 2.0], [1.0])
    strong = stats.paired_comparison(np.ones(30), np.full(30, NEG))
    assert strong["pairedP"] == pytest.approx(2 * 0.5 ** 30) and strong["pairedWinLow"] > 0.85


def test_pair_configs_inner_join_and_refusal():
    keys = ["nLayerG", "sizeG"]
    a = pd.DataFrame({"nLayerG": [2, 2, 3, 4], "sizeG": [400, 800, 400, 400],
                      "score": [1.0, NEG, 3.0, 4.0]})
    b = pd.DataFrame({"nLayerG": [3, 2, 2], "sizeG": [400, 800, 400], "score": [0.5, 2.0, NEG],
                      "other": ["x", "y", "z"]})
    x, y, k = stats.pair_configs(a, b, keys)
    got = {tuple(r): (xv, yv) for r, xv, yv in zip(k.itertuples(index=False), x, y, strict=True)}
    assert got == {(2, 400): (1.0, NEG), (2, 800): (NEG, 2.0), (3, 400): (3.0, 0.5)}
    with pytest.raises(ValueError, match="share their key"):
        stats.pair_configs(pd.concat([a, a.iloc[:1]]), b, keys)
    with pytest.raises(ValueError, match="lacks"):
        stats.pair_configs(a, b, ["nLayerD"])


# --- Holm ------------------------------------------------------------------------------------

def test_holm_hand_example():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # m = 4 (nan not counted); sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03,
    # 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    got = stats.holm(p)
    assert np.isnan(got[3])
    np.testing.assert_allclose(got[[0, 1, 2, 4]], [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(stats.holm([[0.01, 0.2], [0.03, np.nan]]),
                               [[0.03, 0.2], [0.06, np.nan]])  # shape kept
    assert stats.holm([]).size == 0 and np.isnan(stats.holm([np.nan])).all()


# --- best of n -------------------------------------------------------------------------------

def test_expected_max_weights_brute_force():
    x = np.sort(np.random.default_rng(2).normal(size=8))
    W = budget.expected_max_weights(8, [1, 3, 8, 9])
    for row, n in zip(W[:3], (1, 3, 8), strict=True):
        brute = np.mean([x[list(s)].max() for s in itertools.combinations(range(8), n)])
        assert row @ x == pytest.approx(brute) and row.sum() == pytest.approx(1.0)
    assert not W[3].any()  # n > N


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
    one, with more distributions and N = 200: python -m harness.report.stats)."""
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


# --- aliasing and importance -----------------------------------------------------------------

def _wgan_like() -> pd.DataFrame:
    sub = [(1e-4, 0.0, 0.9), (1e-3, 0.5, 0.999)]
    rows = [{"lr": lr, "adamBeta1": b1, "adamBeta2": b2, "nLayerG": nl, "sizeG": sg,
             "lambdaGP": 10.0}
            for (lr, b1, b2), nl, sg in itertools.product(sub, [2, 3, 4, 5], [400, 800, 1600, 3200])]
    return pd.DataFrame(rows)


def _began_like() -> pd.DataFrame:
    sub = [(1e-3, 0.5)] + [(1e-4, g) for g in (0.3, 0.5, 0.7)]
    rows = [{"lr": lr, "gamma": g, "adamBeta1": 0.5, "nLayerG": nl, "dropoutD": d}
            for (lr, g), nl, d in itertools.product(sub, [2, 3, 4, 5], [True, False])]
    return pd.DataFrame(rows)


def test_alias_groups_wgan_like():
    rows = _wgan_like()
    groups = aliasing.alias_groups(rows, ["lr", "adamBeta1", "adamBeta2", "nLayerG", "sizeG", "lambdaGP"])
    assert groups == [["lr", "adamBeta1", "adamBeta2"], ["nLayerG"], ["sizeG"]]  # lambdaGP constant
    assert aliasing.group_name(groups[0]) == "lr+adamBeta1+adamBeta2"
    assert aliasing.partial_crossing(rows, groups) == {"lr+adamBeta1+adamBeta2": [], "nLayerG": [],
                                                    "sizeG": []}


def test_alias_groups_began_like():
    rows = _began_like()
    groups = aliasing.alias_groups(rows, ["lr", "gamma", "adamBeta1", "nLayerG", "dropoutD"])
    assert groups == [["lr"], ["gamma"], ["nLayerG"], ["dropoutD"]]
    crossing = aliasing.partial_crossing(rows, groups)
    assert crossing == {"lr": ["gamma"], "gamma": ["lr"], "nLayerG": [], "dropoutD": []}


def test_partial_crossing_with_missing_values():
    rows = _began_like()
    rows.loc[rows["lr"] == 1e-3, "gamma"] = np.nan  # a setting absent from one subgrid
    groups = aliasing.alias_groups(rows, ["lr", "gamma", "nLayerG"])
    assert groups == [["lr"], ["gamma"], ["nLayerG"]]
    assert aliasing.partial_crossing(rows, groups) == {"lr": ["gamma"], "gamma": ["lr"], "nLayerG": []}
    only = rows[rows["lr"] == 1e-4]
    assert aliasing.alias_groups(only, ["lr", "gamma", "nLayerG"]) == [["gamma"], ["nLayerG"]]


def test_alias_groups_values_not_equal_but_one_to_one():
    rows = pd.DataFrame({"a": [1, 1, 2, 2, 3], "b": ["x", "x", "y", "y", "z"],
                         "c": [1, 2, 1, 2, 1], "d": [np.nan, np.nan, 1.0, 1.0, 2.0]})
    assert aliasing.alias_groups(rows, ["a", "b", "c", "d"]) == [["a", "b", "d"], ["c"]]


def test_grouped_permutation_importance_credits_the_aliased_group():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rows = pd.concat([_wgan_like()] * 3, ignore_index=True)
    rng = np.random.default_rng(5)
    y = np.where(rows["lr"] == 1e-4, 2.0, 0.5) + rng.normal(0, 0.1, len(rows))  # subgrid only
    settings = ["lr", "adamBeta1", "adamBeta2", "nLayerG", "sizeG"]
    groups = aliasing.alias_groups(rows, settings)
    X = rows[settings].to_numpy(dtype=float)
    model = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(X, y)
    out = aliasing.grouped_permutation_importance(model, X, y, aliasing.group_columns(settings, groups),
                                               n_repeats=5, rng=0)
    assert out["importances"].shape == (3, 5) and out["importances_mean"].shape == (3,)
    assert out["importances_mean"][0] > 0.8  # the subgrid explains nearly all of y
    assert np.abs(out["importances_mean"][1:]).max() < 0.05
    again = aliasing.grouped_permutation_importance(model, X, y, aliasing.group_columns(settings, groups),
                                                 n_repeats=5, rng=0)
    np.testing.assert_array_equal(out["importances"], again["importances"])
