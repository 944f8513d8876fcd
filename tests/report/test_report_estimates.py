"""harness.report.estimates: importance.csv (aliased settings as one feature, partly crossed ones
flagged, planted effects found, noise left alone) and budget.csv (the expected best of n with
budget.expected_best_interval's interval, which stops at N/4), on synthetic tables."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from report_fixtures import importance_grid, status_configs

from harness.report import analysis, budget, estimates

# --- best score against budget ----------------------------------------------------------------


def test_budget_curve_bands_and_interval_are_deterministic_and_stop_at_a_quarter():
    v = np.random.default_rng(1).gamma(2.0, size=300)
    a, b = estimates.budget_curve(v), estimates.budget_curve(v)
    pd.testing.assert_frame_equal(a, b)
    assert a["n"].iloc[0] == 1 and a["n"].iloc[-1] == 300
    assert (a["lo"] <= a["expected"]).all() and (a["expected"] <= a["hi"]).all()
    drawn = a["n"] <= budget.BUDGET_MAX_FRACTION * 300
    assert (a.loc[drawn, "ciLow"] < a.loc[drawn, "expected"]).all()
    assert (a.loc[drawn, "expected"] < a.loc[drawn, "ciHigh"]).all()
    assert a.loc[~drawn, ["ciLow", "ciHigh"]].isna().all().all() and (~drawn).any()
    first = a.iloc[0]  # n = 1: the interval of a mean
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert first["ciLow"] == pytest.approx(v.mean() - 1.96 * se, abs=0.5 * se)
    assert first["ciHigh"] == pytest.approx(v.mean() + 1.96 * se, abs=0.5 * se)


def test_budget_table_draws_the_interval_of_budget_expected_best_interval():
    """budget.csv's interval is the one whose coverage test_report_budget.py simulates."""
    rng = np.random.default_rng(2)
    configs = status_configs({"EBGAN": list(rng.normal(5, 1, 40)) + [-np.inf] * 8,
                              "GAN": list(rng.normal(4, 2, 60))})
    t = estimates.budget_table(configs, known=("GAN", "EBGAN"), resamples=200)
    for (family, subgrid), curve in t[t["metric"] == "Iprime"].groupby(["family", "subgrid"]):
        rows = configs[configs["model"] == family]
        rows = rows if subgrid == "all" else rows[rows["subgrid"] == subgrid]
        values = analysis.budget_values(rows, "Iprime", np.nan)
        want = budget.expected_best_interval(values, curve["n"].to_numpy(), resamples=200,
                                             seed=estimates.SEED)
        np.testing.assert_array_equal(curve["ciLow"].to_numpy(), want["ciLow"].to_numpy())
        np.testing.assert_array_equal(curve["ciHigh"].to_numpy(), want["ciHigh"].to_numpy())
        np.testing.assert_allclose(curve["expected"].to_numpy(), want["expected"].to_numpy())
        assert curve.loc[curve["n"] > budget.BUDGET_MAX_FRACTION * len(values), "ciLow"].isna().all()


def test_budget_table_families_subgrids_and_fid_is_the_lowest():
    configs = status_configs({"EBGAN": [1.0, 2.0, 4.0, -np.inf], "WGAN-GP": [5.0, 0.5, np.nan, 2.5, 8.0]})
    t = estimates.budget_table(configs, known=("GAN", "EBGAN"), resamples=50)
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


# --- importance: the existing planted and null tables -----------------------------------------

def test_importance_ranks_a_planted_setting_first():
    imp, fits = estimates.importance(importance_grid(2.0, 0))
    assert list(imp.columns) == estimates.IMPORTANCE_COLUMNS
    assert imp["setting"].iloc[0] == "optimD" and imp["ciLow"].iloc[0] > 0
    assert imp["importance"].iloc[0] > 5 * imp["importance"].iloc[1:].max()
    assert (imp["ciLow"].iloc[1:] <= 0).all()  # nothing else stands out
    assert (imp["aliasing"] == "").all()  # a fully crossed grid: nothing aliased
    fit = fits[0]
    assert fit.family == "WGAN-GP" and fit.r2Low > 0.2 and fit.predicts  # true R^2 = 0.5
    curves = estimates.partial_dependence_curves(fit, ["optimD", "lr"])
    labels, avg = curves["optimD"]
    assert labels == ["adam", "sgd"] and avg[1] - avg[0] == pytest.approx(2.0, abs=0.5)
    assert curves["lr"][0] == [0.0001, 0.001, 0.01]
    assert np.all((curves["lr"][1] > 4) & (curves["lr"][1] < 8))  # on the I' scale


def test_importance_of_a_null_table_singles_out_no_setting():
    imp, fits = estimates.importance(importance_grid(0.0, 1))
    assert (imp["ciLow"] <= 0).all()
    assert imp["importance"].max() < 0.1
    assert fits[0].r2Low < 0 and not fits[0].predicts  # the model cannot predict noise


def test_importance_skips_small_families_and_counts_diverged_at_the_floor():
    t = pd.concat([importance_grid(0.0, 2), importance_grid(0.0, 3, "EBGAN").iloc[:10]])
    t.loc[t.index[:5], ["status", "Iprime"]] = ["diverged", np.nan]
    imp, fits = estimates.importance(t, known=("EBGAN",))
    assert [f.family for f in fits] == ["EBGAN", "WGAN-GP"]
    assert "fewer than" in fits[0].skipped and fits[1].skipped is None and fits[1].n == 384
    assert set(imp["family"]) == {"WGAN-GP"}


# --- importance: settings that move together --------------------------------------------------

def _subgrid_only(seed: int = 0) -> pd.DataFrame:
    """WGAN-GP-like: subgrid B changes lr, adamBeta1 and adamBeta2 together; I' depends on the
    subgrid only (3 points), not on the architecture."""
    subgrids = {"A": (1e-4, 0.0, 0.9), "B": (1e-3, 0.5, 0.999)}
    arch = {"nLayerG": (2, 3, 4, 5), "nLayerD": (2, 3, 4, 5), "sizeG": (400, 800)}
    rows = [{"subgrid": s, "lr": lr, "adamBeta1": b1, "adamBeta2": b2, **dict(zip(arch, a))}
            for s, (lr, b1, b2) in subgrids.items() for a in itertools.product(*arch.values())] * 2
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(seed)
    return df.assign(model="WGAN-GP", status="ok",
                     Iprime=4 + 3 * (df["subgrid"] == "A") + rng.normal(0, 0.5, len(df)))


def test_aliased_settings_are_one_feature_that_gets_the_importance():
    imp, fits = estimates.importance(_subgrid_only())
    group = "lr+adamBeta1+adamBeta2"
    assert imp["setting"].iloc[0] == group and imp["ciLow"].iloc[0] > 0.5
    assert imp["importance"].iloc[0] == pytest.approx(2 * 0.9, rel=0.25)  # R^2 ~ 0.9; shuffled: ~ -0.9
    # no member of the group on its own, so none with the [0, 0] interval of a setting the
    # model never split on (what permuting one column of an aliased set gave)
    assert not {"lr", "adamBeta1", "adamBeta2"} & set(imp["setting"])
    assert not ((imp["ciLow"] == 0) & (imp["ciHigh"] == 0)).any()
    assert imp.set_index("setting").loc[group, "aliasing"].startswith("aliased: lr, adamBeta1, adamBeta2")
    assert (imp.loc[imp["setting"] != group, "ciLow"] <= 0).all()
    fit = fits[0]
    assert fit.features == ["nLayerG", "nLayerD", "sizeG", group]
    labels, avg = estimates.partial_dependence_curves(fit, [group])[group]
    assert labels == ["0.0001/0/0.9", "0.001/0.5/0.999"]  # the combinations the grid ran
    assert avg[0] - avg[1] == pytest.approx(3.0, abs=0.5)


def test_partly_crossed_settings_are_flagged():
    """BEGAN-like: gamma 0.3 and 0.7 only at lr 1e-4, gamma 0.5 at both lrs."""
    runs = [(1e-3, 0.5)] + [(1e-4, g) for g in (0.3, 0.5, 0.7)]
    rows = [{"lr": lr, "gamma": g, "nLayerG": nl, "nLayerD": nd}
            for (lr, g), nl, nd in itertools.product(runs, (2, 3, 4, 5), (2, 3, 4, 5))]
    df = pd.DataFrame(rows)
    df = df.assign(model="BEGAN", status="ok",
                   Iprime=5 + 2 * (df["gamma"] == 0.7) + np.random.default_rng(3).normal(0, 0.3, len(df)))
    imp, _ = estimates.importance(df)
    notes = imp.set_index("setting")["aliasing"]
    assert notes["lr"] == "partly crossed with gamma" and notes["gamma"] == "partly crossed with lr"
    assert notes["nLayerG"] == "" and notes["nLayerD"] == ""
    assert imp["setting"].iloc[0] == "gamma" and imp["ciLow"].iloc[0] > 0
