"""harness.report.stats: rank tests with divergence inside, paired sign test, Holm, Wilson. Pure
numbers: no data, no GPU. (The budget interval: test_report_budget.py; aliased settings:
test_report_aliasing.py.)"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.report import stats

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


def test_wilson_bounds_at_none_and_all_are_exactly_0_and_1():
    for n in (3, 64, 672):
        assert stats.wilson_interval(0, n)[0] == 0.0 and stats.wilson_interval(n, n)[1] == 1.0
        assert 0 < stats.wilson_interval(0, n)[1] < 1 and 0 < stats.wilson_interval(n, n)[0] < 1


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
