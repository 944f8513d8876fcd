"""harness.report.analysis: the estimators against brute force and planted truths, on synthetic tables.

Families here include labels the harness does not know yet (WGAN-GP), with settings Table 1
does not have, to hold the code to "whatever families the table holds".
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from report_fixtures import SMALL_ARCH, make_trials, table1_configs

from harness.report import analysis, tables

# --- best score against budget ----------------------------------------------------------------

VALUES = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0])  # ties on purpose


@pytest.mark.parametrize("n", range(1, len(VALUES) + 1))
def test_expected_max_equals_brute_force_enumeration(n):
    """Tang et al.'s estimator is the mean of max over every n-subset of the grid."""
    maxes = np.array([max(c) for c in itertools.combinations(VALUES, n)])
    got = analysis.expected_max_weights(len(VALUES), [n]) @ np.sort(VALUES)
    assert got[0] == pytest.approx(maxes.mean(), rel=1e-12)
    q = analysis.best_of_n_quantiles(np.sort(VALUES), [n], (0.05, 0.5, 0.95))[0]
    want = np.quantile(maxes, (0.05, 0.5, 0.95), method="inverted_cdf")
    np.testing.assert_array_equal(q, want)


def test_expected_max_is_the_mean_at_one_and_the_max_at_n():
    rng = np.random.default_rng(0)
    v = np.sort(rng.normal(size=6144))
    W = analysis.expected_max_weights(v.size, [1, 2, 100, v.size])
    np.testing.assert_allclose(W.sum(1), 1.0, rtol=1e-9)  # no overflow at Table 1's size
    e = W @ v
    assert e[0] == pytest.approx(v.mean()) and e[-1] == pytest.approx(v.max())
    assert np.all(np.diff(e) > 0)
    # n = 2 by hand: E max(X_i, X_j) over pairs = sum_i v_(i) (i - 1) / C(N, 2)
    assert e[1] == pytest.approx((v * np.arange(v.size)).sum() / (v.size * (v.size - 1) / 2))


def test_budget_curve_bands_and_bootstrap_are_deterministic():
    v = np.random.default_rng(1).gamma(2.0, size=300)
    a, b = analysis.budget_curve(v), analysis.budget_curve(v)
    pd.testing.assert_frame_equal(a, b)
    assert a["n"].iloc[0] == 1 and a["n"].iloc[-1] == 300
    assert (a["lo"] <= a["expected"]).all() and (a["expected"] <= a["hi"]).all()
    assert (a["ciLow"] < a["ciHigh"]).all()
    first = a.iloc[0]  # n = 1: the CI of a mean
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert first["ciLow"] == pytest.approx(v.mean() - 1.96 * se, abs=0.5 * se)
    assert first["ciHigh"] == pytest.approx(v.mean() + 1.96 * se, abs=0.5 * se)


def _configs(models: dict[str, list[float]], fid: bool = True) -> pd.DataFrame:
    rows = []
    for model, values in models.items():
        for i, v in enumerate(values):
            status = "diverged" if np.isneginf(v) else "error" if np.isnan(v) else "ok"
            rows.append({"model": model, "subgrid": f"s{i % 2}", "status": status,
                         "Iprime": v if status == "ok" else np.nan,
                         "fid": 100.0 / v if status == "ok" else np.inf if status == "diverged" else np.nan})
    return pd.DataFrame(rows)


def test_budget_table_families_subgrids_and_fid_is_the_lowest():
    configs = _configs({"EBGAN": [1.0, 2.0, 4.0, -np.inf], "WGAN-GP": [5.0, 0.5, np.nan, 2.5, 8.0]})
    t = analysis.budget_table(configs, known=("GAN", "EBGAN"), resamples=50)
    assert list(t.columns) == ["family", "subgrid", "metric", "configs", "n", "expected", "lo",
                               "hi", "ciLow", "ciHigh"]
    groups = t[["family", "subgrid"]].drop_duplicates().apply(tuple, axis=1).tolist()
    assert groups == [("EBGAN", "all"), ("WGAN-GP", "all"), ("EBGAN", "s0"), ("EBGAN", "s1"),
                      ("WGAN-GP", "s0"), ("WGAN-GP", "s1")]
    eb_ip = t[(t["family"] == "EBGAN") & (t["subgrid"] == "all") & (t["metric"] == "Iprime")]
    # the diverged config enters at the floor of the scale
    assert eb_ip["configs"].iloc[0] == 4
    assert eb_ip["expected"].iloc[0] == pytest.approx((1 + 2 + 4 + analysis.DIVERGED_IPRIME) / 4)
    eb_fid = t[(t["family"] == "EBGAN") & (t["subgrid"] == "all") & (t["metric"] == "fid")]
    worst = 100.0 / 0.5  # the worst finite FID of the grid (WGAN-GP's I' = 0.5)
    assert eb_fid["expected"].iloc[0] == pytest.approx((100 + 50 + 25 + worst) / 4)
    assert eb_fid["expected"].iloc[-1] == pytest.approx(25.0)  # all four drawn: the lowest
    assert (eb_fid["lo"] <= eb_fid["expected"]).all() and (eb_fid["expected"] <= eb_fid["hi"]).all()
    assert np.all(np.diff(eb_fid["expected"]) < 0)
    wg = t[(t["family"] == "WGAN-GP") & (t["subgrid"] == "all") & (t["metric"] == "Iprime")]
    assert wg["configs"].iloc[0] == 4  # the error config is left out


# --- robustness -------------------------------------------------------------------------------

def test_passing_fraction_counts_diverged_below_every_x():
    got = analysis.passing_fraction(np.array([1.0, 2.0, 3.0, -np.inf]), np.array([-5, 1.5, 3, 4]))
    np.testing.assert_allclose(got, [0.75, 0.5, 0.25, 0.0])


def test_outcome_values_fid_is_negated_and_errors_dropped():
    c = _configs({"X": [2.0, -np.inf, np.nan, 4.0]})
    np.testing.assert_array_equal(analysis.outcome_values(c, "Iprime"), [2.0, -np.inf, 4.0])
    np.testing.assert_array_equal(analysis.outcome_values(c, "fid"), [-50.0, -np.inf, -25.0])
    # fraction with FID <= 30: the one config at 25 of three
    assert analysis.passing_fraction(analysis.outcome_values(c, "fid"), [-30.0])[0] == pytest.approx(1 / 3)


def test_groups_follow_the_model_column():
    c = _configs({"LSGAN": [1.0, 2.0], "GAN": [1.0], "EBGAN": [3.0, 4.0]})
    c.loc[c["model"] == "EBGAN", "subgrid"] = "only"
    labels = [g["label"] for g in analysis.groups(c, known=("GAN", "EBGAN"))]
    assert labels == ["GAN", "EBGAN", "LSGAN", "LSGAN s0", "LSGAN s1"]


# --- importance -------------------------------------------------------------------------------

def _grid_table(effect: float, seed: int, model: str = "WGAN-GP") -> pd.DataFrame:
    """A 2 x 192-config grid of a new family; I' = 5 + effect * [optimD == sgd] + N(0, 1)."""
    grid = {"nLayerG": (2, 3, 4, 5), "sizeG": (400, 800, 1600, 3200), "dropoutD": (True, False),
            "optimD": ("adam", "sgd"), "lr": (0.01, 0.001, 0.0001)}
    df = pd.DataFrame([dict(zip(grid, v)) for v in itertools.product(*grid.values())] * 2)
    rng = np.random.default_rng(seed)
    return df.assign(model=model, subgrid="x", status="ok", margin=np.nan, wPT=0.0, sizeD=256,
                     Iprime=5 + rng.normal(0, 1, len(df)) + effect * (df["optimD"] == "sgd"))


def test_setting_columns_are_the_ones_that_vary():
    t = _grid_table(0, 0)
    assert analysis.setting_columns(t) == ["nLayerG", "sizeG", "dropoutD", "optimD", "lr"]
    # a null column (GAN's margin once families are plugins) or a constant one is no setting
    varied = t.assign(margin=np.where(np.arange(len(t)) % 2, 10.0, 20.0))
    # a family's own setting (EBGAN's margin) is a setting like the common ones
    assert analysis.setting_columns(varied) == ["nLayerG", "sizeG", "dropoutD", "optimD", "lr", "margin"]


def test_importance_ranks_a_planted_setting_first():
    imp, fits = analysis.importance(_grid_table(2.0, 0))
    assert imp["setting"].iloc[0] == "optimD" and imp["ciLow"].iloc[0] > 0
    assert imp["importance"].iloc[0] > 5 * imp["importance"].iloc[1:].max()
    assert (imp["ciLow"].iloc[1:] <= 0).all()  # nothing else stands out
    fit = fits[0]
    assert fit.family == "WGAN-GP" and fit.r2Low > 0.2  # true R^2 = 1 / (1 + 1) = 0.5
    curves = analysis.partial_dependence_curves(fit, ["optimD", "lr"])
    labels, avg = curves["optimD"]
    assert labels == ["adam", "sgd"] and avg[1] - avg[0] == pytest.approx(2.0, abs=0.5)
    assert curves["lr"][0] == [0.0001, 0.001, 0.01]
    assert np.all((curves["lr"][1] > 4) & (curves["lr"][1] < 8))  # on the I' scale


def test_importance_of_a_null_table_singles_out_no_setting():
    imp, fits = analysis.importance(_grid_table(0.0, 1))
    assert (imp["ciLow"] <= 0).all()
    assert imp["importance"].max() < 0.1
    assert fits[0].r2Low < 0  # the model cannot predict noise


def test_importance_skips_small_families_and_counts_diverged_at_the_floor():
    t = pd.concat([_grid_table(0.0, 2), _grid_table(0.0, 3, "EBGAN").iloc[:10]])
    t.loc[t.index[:5], ["status", "Iprime"]] = ["diverged", np.nan]
    rows, y = analysis.importance_target(t[t["model"] == "WGAN-GP"])
    assert len(rows) == 384 and (y[:5] == analysis.DIVERGED_IPRIME).all()
    imp, fits = analysis.importance(t, known=("EBGAN",))
    assert [f.family for f in fits] == ["EBGAN", "WGAN-GP"]
    assert "fewer than" in fits[0].skipped and fits[1].skipped is None
    assert set(imp["family"]) == {"WGAN-GP"}


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
