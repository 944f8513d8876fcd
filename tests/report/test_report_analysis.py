"""harness.report.analysis: the pure estimators against brute force and planted truths, on
synthetic tables (the importance model and the budget table: test_report_estimates.py).

Families here include labels the harness does not know yet (WGAN-GP), with settings Table 1
does not have, to hold the code to "whatever families the table holds".
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from report_fixtures import SMALL_ARCH, importance_grid, make_trials, status_configs, table1_configs

from harness.report import analysis, tables

# --- best of n ------------------------------------------------------------------------------

VALUES = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0])  # ties on purpose


@pytest.mark.parametrize("n", range(1, len(VALUES) + 1))
def test_best_of_n_quantiles_equal_brute_force_enumeration(n):
    """The exact quantiles of the best of n drawn from the grid, against every n-subset."""
    maxes = np.array([max(c) for c in itertools.combinations(VALUES, n)])
    q = analysis.best_of_n_quantiles(np.sort(VALUES), [n], (0.05, 0.5, 0.95))[0]
    want = np.quantile(maxes, (0.05, 0.5, 0.95), method="inverted_cdf")
    np.testing.assert_array_equal(q, want)


# --- robustness -------------------------------------------------------------------------------

def test_passing_fraction_counts_diverged_below_every_x():
    got = analysis.passing_fraction(np.array([1.0, 2.0, 3.0, -np.inf]), np.array([-5, 1.5, 3, 4]))
    np.testing.assert_allclose(got, [0.75, 0.5, 0.25, 0.0])


def test_outcome_values_fid_is_negated_and_errors_dropped():
    c = status_configs({"X": [2.0, -np.inf, np.nan, 4.0]})
    np.testing.assert_array_equal(analysis.outcome_values(c, "Iprime"), [2.0, -np.inf, 4.0])
    np.testing.assert_array_equal(analysis.outcome_values(c, "fid"), [-50.0, -np.inf, -25.0])
    # fraction with FID <= 30: the one config at 25 of three
    assert analysis.passing_fraction(analysis.outcome_values(c, "fid"), [-30.0])[0] == pytest.approx(1 / 3)


def test_groups_follow_the_model_column():
    c = status_configs({"LSGAN": [1.0, 2.0], "GAN": [1.0], "EBGAN": [3.0, 4.0]})
    c.loc[c["model"] == "EBGAN", "subgrid"] = "only"
    labels = [g["label"] for g in analysis.groups(c, known=("GAN", "EBGAN"))]
    assert labels == ["GAN", "EBGAN", "LSGAN", "LSGAN s0", "LSGAN s1"]


# --- the settings an importance model learns from --------------------------------------------

def test_setting_columns_are_the_ones_that_vary():
    t = importance_grid(0, 0)
    assert analysis.setting_columns(t) == ["nLayerG", "sizeG", "dropoutD", "optimD", "lr"]
    # a null column (GAN's margin once families are plugins) or a constant one is no setting
    varied = t.assign(margin=np.where(np.arange(len(t)) % 2, 10.0, 20.0))
    # a family's own setting (EBGAN's margin) is a setting like the common ones
    assert analysis.setting_columns(varied) == ["nLayerG", "sizeG", "dropoutD", "optimD", "lr", "margin"]


def test_importance_target_puts_diverged_configs_at_the_floor():
    t = importance_grid(0.0, 2)
    t.loc[t.index[:5], ["status", "Iprime"]] = ["diverged", np.nan]
    t.loc[t.index[5], "status"] = "error"
    rows, y = analysis.importance_target(t)
    assert len(rows) == len(t) - 1 and (y[:5] == analysis.DIVERGED_IPRIME).all()


# --- the two sources of noise -----------------------------------------------------------------

def test_sampling_and_seed_spread_are_told_apart():
    """Per run: I'(N) = m_config + t_seed + s, t ~ N(0, tau^2) training, s ~ N(0, sigma^2)
    sampling; the halves A, B carry the sampling noise of N/2 samples (variance 2 sigma^2)."""
    sigma, tau = 0.05, 0.3
    runs = make_trials(table1_configs(SMALL_ARCH, seeds=(0, 1, 2)), n_diverged=0, n_error=0)
    rng = np.random.default_rng(0)
    trained = 5 + rng.normal(0, tau, len(runs))  # each run's expected I'
    runs["IprimeSetA"] = trained + rng.normal(0, np.sqrt(2) * sigma, len(runs))
    runs["IprimeSetB"] = trained + rng.normal(0, np.sqrt(2) * sigma, len(runs))
    runs["Iprime"] = trained + rng.normal(0, sigma, len(runs))
    table = tables.summary_table(tables.aggregate_seeds(runs), n_resamples=50)
    row = table.set_index("name").loc["GAN"]
    assert row["samplingStd"] == pytest.approx(sigma, rel=0.1)
    assert row["seedStdPooled"] == pytest.approx(np.hypot(sigma, tau), rel=0.1)
    assert row["trainingStd"] == pytest.approx(tau, rel=0.1)
    assert analysis.sampling_variance(2.0, 1.0) == 0.25  # (A - B)^2 / 4


def test_tables_without_the_halves_say_not_recorded():
    table = tables.summary_table(tables.aggregate_seeds(make_trials(table1_configs(SMALL_ARCH))),
                                 n_resamples=50)
    assert (table["samplingStd"] == "not recorded").all()
    assert table["seedStdPooled"].isna().all()  # one seed: no seed spread either


# --- I' against FID, the margin ---------------------------------------------------------------

def test_fooled_runs_are_high_iprime_and_bad_fid():
    runs = pd.DataFrame({"Iprime": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan],
                         "fid": [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 90.0, 1.0],
                         "model": "GAN", "status": ["ok"] * 8 + ["diverged"]})
    fooled, thr = analysis.fooled_runs(runs, tables.run_scores(runs))
    assert len(fooled) == 8  # the diverged run is not plotted
    assert thr == {"highIprime": pytest.approx(6.25), "badFid": pytest.approx(6.5)}
    assert fooled.loc[fooled["fooled"], "Iprime"].tolist() == [8.0]


def test_margin_runs_only_where_margin_varies():
    runs = make_trials(table1_configs(SMALL_ARCH, pt_points=2), n_diverged=0, n_error=0)
    assert analysis.margin_runs(runs, tables.run_scores(runs)).empty
    eb = runs["model"] == "EBGAN"
    runs.loc[eb, "margin"] = np.resize([1.0, 10.0, 32.0], eb.sum())
    got = analysis.margin_runs(runs, tables.run_scores(runs))
    assert set(got["model"]) == {"EBGAN"} and set(got["margin"]) == {1.0, 10.0, 32.0}
