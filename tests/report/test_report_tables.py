"""harness.report.tables: which rows feed which figure panel, seeds, histogram percentages and the
summary statistics.

Synthetic results in the sweep's shape (report_fixtures.py): the full Table 1 shape (512 EBGAN +
6144 GAN) for the selection checks, a 16-point grid otherwise, and every family for the
per-family summary rows.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from report_fixtures import SMALL_ARCH, make_trials, small, table1_configs
from scipy import stats

from harness.report import paper_figures, seeds, tables

pytestmark = pytest.mark.usefixtures("no_mnist_unless_passed")


@pytest.fixture(scope="module")
def table1_configs_df(table1) -> pd.DataFrame:
    return tables.aggregate_seeds(table1, "mean")


# --- selection on the full Table 1 shape ----------------------------------------------------

def test_table1_shape(table1, table1_configs_df):
    assert len(table1) == 512 + 6144
    assert table1["model"].value_counts().to_dict() == {"GAN": 6144, "EBGAN": 512}
    assert len(table1_configs_df) == len(table1)  # one seed: a config per run
    assert set(tables.REQUIRED_COLUMNS) <= set(table1.columns)


def test_fig2_panels_apply_the_depth_filters_exactly(table1_configs_df):
    panels = tables.fig2_panels(table1_configs_df)
    assert list(panels) == list(tables.PANELS_FIG2)
    a, b, c = panels.values()
    assert set(a["settingsId"]) == set(table1_configs_df["settingsId"])
    for panel, depth in ((b, 4), (c, 3)):
        want = table1_configs_df[(table1_configs_df["nLayerG"] <= depth)
                                 & (table1_configs_df["nLayerD"] <= depth)]
        assert set(panel["settingsId"]) == set(want["settingsId"])
        assert panel["nLayerG"].max() == depth and panel["nLayerD"].max() == depth
    # 4x4 depth pairs per family: (b) keeps 3x3 of them, (c) 2x2
    assert b["model"].value_counts().to_dict() == {"GAN": 6144 * 9 // 16, "EBGAN": 512 * 9 // 16}
    assert c["model"].value_counts().to_dict() == {"GAN": 6144 * 4 // 16, "EBGAN": 512 * 4 // 16}


def test_twelve_subgrid_panels_of_512(table1_configs_df):
    panels = tables.subgrid_panels(table1_configs_df)
    assert len(panels) == 12
    assert list(panels)[:3] == ["adam/adam/lr=0.01", "adam/adam/lr=0.001", "adam/adam/lr=0.0001"]
    for name, rows in panels.items():
        assert len(rows) == 512
        assert (rows["model"] == "GAN").all() and (rows["subgrid"] == name).all()
        assert rows["settingsId"].is_unique
    all_gan = pd.concat(panels.values())["settingsId"]
    assert set(all_gan) == set(table1_configs_df.loc[table1_configs_df["model"] == "GAN", "settingsId"])


def test_diverged_and_errors_counted_not_dropped(table1, table1_configs_df):
    status = table1_configs_df["status"].value_counts()
    assert (status["diverged"], status["error"]) == (5, 3)
    summary = tables.summary_table(table1_configs_df, n_resamples=200)
    models = summary[summary["group"] == "model"]
    assert models["diverged"].sum() == 5 and models["errors"].sum() == 3
    assert (models["ok"] + models["diverged"] + models["errors"] == models["n"]).all()
    subgrids = summary[summary["group"] == "subgrid"]
    assert subgrids["diverged"].sum() == (table1.query("model == 'GAN'")["status"] == "diverged").sum()
    # every diverged config is in Fig. 2 (a), with its bar in the percentages
    a = tables.fig2_panels(table1_configs_df)["(a) all configs"]
    assert (a["status"] == "diverged").sum() == 5


def test_diverged_rows_with_a_finite_iprime_still_count_as_diverged(table1, table1_configs_df):
    div = table1[table1["status"] == "diverged"]
    assert div["Iprime"].notna().any()  # the fixture gives some a finite I'
    agg = table1_configs_df.set_index("settingsId").loc[div["settingsId"]]
    assert (agg["status"] == "diverged").all() and agg["Iprime"].isna().all()


# --- histograms -----------------------------------------------------------------------------

def test_histogram_percentages_known_case():
    pct, div = tables.histogram_percentages([0.5, 1.5, 1.5], np.array([0.0, 1.0, 2.0]), n_diverged=1)
    np.testing.assert_allclose(pct, [25.0, 50.0])
    assert div == 25.0


@pytest.mark.parametrize("n_diverged", [0, 7])
def test_histogram_percentages_sum_to_100(n_diverged):
    values = np.random.default_rng(0).normal(size=500)
    bins = tables.common_bins(values[:400])  # some values fall outside: clipped, not lost
    pct, div = tables.histogram_percentages(values, bins, n_diverged)
    assert pct.sum() + div == pytest.approx(100.0)
    assert div == pytest.approx(100 * n_diverged / (500 + n_diverged))


def test_a_count_gets_one_bin_per_value_and_a_score_equal_widths():
    modes = np.array([0, 0, 1, 3, 13, 2.0])                  # modes captured: each count its own bar
    bins = tables.common_bins(modes)
    assert bins.tolist() == [x - 0.5 for x in range(15)]
    pct, _ = tables.histogram_percentages(modes, bins)
    assert pct[0] == pytest.approx(100 * 2 / 6) and pct[13] == pytest.approx(100 / 6) and pct[12] == 0
    assert len(tables.common_bins(np.arange(100.0))) == tables.N_BINS + 1   # too many values: equal widths
    assert len(tables.common_bins(np.array([0.5, 2.25]))) == tables.N_BINS + 1


def test_every_drawn_histogram_sums_to_100(table1_configs_df):
    bins = tables.common_bins(table1_configs_df["Iprime"])
    panels = {**tables.fig2_panels(table1_configs_df), **tables.subgrid_panels(table1_configs_df)}
    for panel in panels.values():
        for model, rows in panel.groupby("model"):
            pct, div = tables.histogram_percentages(
                tables.ok_values(rows), bins, int((rows["status"] == "diverged").sum()))
            assert pct.sum() + div == pytest.approx(100.0), model


# --- seeds ----------------------------------------------------------------------------------

@pytest.fixture
def two_seeds() -> pd.DataFrame:
    return small(seeds=(0, 1), n_diverged=0, n_error=0)


def test_two_seeds_count_each_config_once_with_the_mean(two_seeds):
    configs = tables.aggregate_seeds(two_seeds, "mean")
    assert len(two_seeds) == 2 * len(configs) and configs["settingsId"].is_unique
    want = two_seeds.groupby("settingsId")["Iprime"].mean()
    got = configs.set_index("settingsId")["Iprime"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
    std = two_seeds.groupby("settingsId")["Iprime"].std(ddof=1)
    np.testing.assert_allclose(configs.set_index("settingsId").loc[std.index, "IprimeStd"], std)
    assert (configs["seeds"] == 2).all()
    summary = tables.summary_table(configs, n_resamples=100)
    assert summary["seedStdMedian"].notna().all() and (summary["seedsPerConfig"] == 2).all()
    hist = tables.fig2_panels(configs)["(a) all configs"]
    assert len(hist) == two_seeds["settingsId"].nunique()


@pytest.mark.parametrize("how, status", [("mean", "diverged"), ("median", "diverged"), ("max", "ok")])
def test_a_diverged_seed_per_aggregation(two_seeds, how, status):
    runs = two_seeds.copy()
    sid = runs["settingsId"].iloc[0]
    first = runs.index[runs["settingsId"] == sid][0]
    runs.loc[first, "status"] = "diverged"
    row = tables.aggregate_seeds(runs, how).set_index("settingsId").loc[sid]
    assert row["status"] == status and row["seedsDiverged"] == 1
    if how == "max":
        assert row["Iprime"] == runs.loc[(runs["settingsId"] == sid) & (runs.index != first), "Iprime"].item()


def test_error_seeds_are_left_out(two_seeds):
    runs = two_seeds.copy()
    sid = runs["settingsId"].iloc[0]
    idx = runs.index[runs["settingsId"] == sid]
    runs.loc[idx[0], ["status", "Iprime"]] = ["error", np.nan]
    row = tables.aggregate_seeds(runs).set_index("settingsId").loc[sid]
    assert row["status"] == "ok" and row["Iprime"] == runs.loc[idx[1], "Iprime"]
    assert (row["seeds"], row["seedsError"]) == (1, 1)
    runs.loc[idx[1], ["status", "Iprime"]] = ["error", np.nan]
    assert tables.aggregate_seeds(runs).set_index("settingsId").loc[sid, "status"] == "error"


def test_comparisons_take_the_seeds_both_sides_ran_at_each_point():
    """EBGAN ran seeds 0 and 1 at every point, GAN seed 0 only, and EBGAN's seed 1 diverged
    everywhere: over both seeds (the mean) every EBGAN config is diverged, a loss for its seed
    count; on the seeds both ran (seed 0) it is not."""
    runs = small(seeds=(0, 1), pt_points=0, n_diverged=0, n_error=0)
    runs = runs[(runs["model"] == "EBGAN") | (runs["seed"] == 0)].copy()
    runs.loc[(runs["model"] == "EBGAN") & (runs["seed"] == 1), ["status", "Iprime"]] = ["diverged", np.nan]
    before = tables.summary_table(tables.aggregate_seeds(runs), n_resamples=50).set_index("name")
    assert before.loc["EBGAN", "divergedFrac"] == 1 and before.loc["GAN", "verdict"] == "EBGAN worse"
    kept, note = seeds.common_seeds(runs)
    pd.testing.assert_frame_equal(kept, runs[runs["seed"] == 0])
    assert note.startswith("Seeds alike at every grid point: at 16 points") and "16 of 224 runs left out." in note
    after = tables.summary_table(tables.aggregate_seeds(kept), n_resamples=50).set_index("name")
    assert after.loc["EBGAN", "divergedFrac"] == 0 and after.loc["EBGAN", "seedsPerConfig"] == 1


def test_common_seeds_leave_equal_seeds_and_unshared_points_as_they_are(table1):
    for runs in (small(seeds=(0, 1), n_diverged=6, n_error=0), table1):   # table1: one seed, 3 error runs
        kept, note = seeds.common_seeds(runs)
        assert kept is runs and note == ""
    # EBGAN trained 2 epochs on seeds 0, 1 and GAN 25 on seed 0: no point in common, nothing to align
    short = [c for c in table1_configs(SMALL_ARCH, seeds=(0, 1), epochs=2) if c.family == "ebgan"]
    long = [c for c in table1_configs(SMALL_ARCH, epochs=25) if c.family == "gan"]
    runs = make_trials(short + long, n_diverged=0, n_error=0)
    kept, note = seeds.common_seeds(runs)
    assert kept is runs and note == ""
    # an error seed scored nothing: the config's partners count only the seed it scored
    runs = small(seeds=(0, 1), pt_points=0, n_diverged=0, n_error=0)
    first = runs.index[(runs["model"] == "EBGAN") & (runs["seed"] == 1)][0]
    runs.loc[first, ["status", "Iprime"]] = ["error", np.nan]
    kept, note = seeds.common_seeds(runs)
    point = runs.loc[runs.index.difference(kept.index)]
    assert len(point) == 13 and (point["seed"] == 1).all() and point["settingsId"].is_unique
    assert "13 of 416 runs left out." in note and "configs with no seed in common" not in note
    # no seed in common at a point (EBGAN seed 1 only, GAN seed 0 only): its configs are left out
    runs = small(seeds=(0, 1), pt_points=0, n_diverged=0, n_error=0)
    there = (runs["nLayerG"] == 2) & (runs["nLayerD"] == 2)
    runs = runs[~there | ((runs["model"] == "EBGAN") == (runs["seed"] == 1))]
    kept, note = seeds.common_seeds(runs)
    assert not there[kept.index].any() and len(kept) == len(runs) - 13
    assert note.endswith("13 of 403 runs left out, and 13 configs with no seed in common.")


# --- statistics -----------------------------------------------------------------------------

def test_summary_rows_thresholds_and_comparisons():
    configs = tables.aggregate_seeds(small(rng_seed=4), "mean")
    table = tables.summary_table(configs, n_resamples=200)
    assert list(table["name"][:3]) == ["GAN", "EBGAN", "EBGAN-PT"]
    assert (table["group"] == "subgrid").sum() == 12
    gan_rows = table[(table["name"] == "GAN") | (table["group"] == "subgrid")]
    assert gan_rows[["mwuP", "mwuPOk", "medianDiffOkLow", "medianDiffOkHigh", "mwuPHolm"]].notna().all().all()
    assert table.loc[table["name"] != "GAN"].query("group == 'model'")["mwuP"].isna().all()
    assert (table["divergedFrac"] == table["diverged"] / (table["ok"] + table["diverged"])).all()
    thresholds = table.attrs["thresholds"]
    assert thresholds["p50"] == pytest.approx(np.median(tables.ok_values(configs)))
    eb = configs[configs["model"] == "EBGAN"]
    want = 100 * (tables.ok_values(eb) > thresholds["p75"]).sum() / (eb["status"] != "error").sum()
    assert table.set_index("name").loc["EBGAN", "pctAbove_p75"] == pytest.approx(want)
    gan = tables.ok_values(configs[configs["model"] == "GAN"])  # survivors only: the ...Ok columns
    assert table.set_index("name").loc["GAN", "mwuUOk"] == stats.mannwhitneyu(
        tables.ok_values(eb), gan, alternative="two-sided").statistic


def test_best_and_quartile_runs():
    runs = small(rng_seed=5)
    ok = runs[runs["status"] == "ok"]
    best = tables.best_runs(runs)
    assert list(best) == ["GAN", "EBGAN", "EBGAN-PT"]
    for model, row in best.items():
        assert row["Iprime"] == ok.loc[ok["model"] == model, "Iprime"].max()
    quart = tables.quartile_runs(runs)["GAN"]
    gan = np.sort(ok.loc[ok["model"] == "GAN", "Iprime"])
    assert quart["median"]["Iprime"] == gan[round(0.5 * (len(gan) - 1))]
    assert quart["q25"]["Iprime"] <= quart["median"]["Iprime"] <= quart["q75"]["Iprime"] <= quart["best"]["Iprime"]
    assert quart["best"]["Iprime"] == gan[-1]
    caption = paper_figures.config_caption(best["EBGAN"])
    assert "nLayerG=" in caption and "margin=10" in caption and re.search("dropoutD=(true|false)", caption)


def test_best_runs_by_a_datasets_own_measure_then_i_prime():
    runs = small(rng_seed=5)
    ok = runs["status"] == "ok"
    runs["modesCaptured"] = np.where(ok, np.arange(len(runs)) % 3, np.nan)   # ties at the top
    best = tables.best_runs(runs, ("modesCaptured", "Iprime"))
    for model, row in best.items():
        mine = runs[ok & (runs["model"] == model)]
        top = mine[mine["modesCaptured"] == mine["modesCaptured"].max()]
        assert row["modesCaptured"] == top["modesCaptured"].max() and row["Iprime"] == top["Iprime"].max()
    assert any(best[m]["Iprime"] < runs.loc[ok & (runs["model"] == m), "Iprime"].max() for m in best)


def test_summary_rows_per_family_compared_with_ebgan(family_runs):
    configs = tables.aggregate_seeds(family_runs)
    table = tables.summary_table(configs, n_resamples=200)
    models = table[table["group"] == "model"].set_index("name")
    assert list(models.index) == ["GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"]
    assert models.loc[["GAN", "LSGAN", "WGAN-GP", "BEGAN"], "mwuP"].notna().all()
    assert models.loc[["EBGAN", "EBGAN-PT"], "mwuP"].isna().all()        # EBGAN's own family
    assert models.loc["LSGAN", "n"] == 32 and models.loc["BEGAN", "n"] == 32
    eb = tables.ok_values(configs[configs["model"] == "EBGAN"])
    wg = tables.ok_values(configs[configs["model"] == "WGAN-GP"])
    assert models.loc["WGAN-GP", "medianDiffOk"] == pytest.approx(np.median(eb) - np.median(wg))
    assert models.loc["WGAN-GP", "pairingKeys"] == "nLayerG+nLayerD"       # one subgrid: paired
    assert models.loc[["GAN", "LSGAN", "BEGAN"], "pairedP"].isna().all()    # several: unpaired
    subgrids = table[table["group"] == "subgrid"]["name"].tolist()
    assert len([s for s in subgrids if "/" in s and " " not in s]) == 12          # GAN's, as Fig. 3
    assert [s for s in subgrids if s.startswith("LSGAN ")] == ["LSGAN adam/adam/lr=0.001", "LSGAN adam/adam/lr=0.0002"]
    assert [s for s in subgrids if s.startswith("BEGAN ")] == ["BEGAN adam/adam/lr=0.001/gamma=0.3",
                                                              "BEGAN adam/adam/lr=0.001/gamma=0.7"]
    assert not [s for s in subgrids if s.startswith("WGAN-GP ")]                 # one subgrid: no rows


def test_a_sampled_grid_says_n_of_m_configs_sampled_at_random():
    import pandas as pd

    from harness.report.tables import progress_text
    runs = pd.DataFrame({"settingsId": ["a", "b", "c"]})
    meta = {"configs": 6656, "total": 6656, "sample": {"configs": 3, "runs": 3, "seed": 7, "of": 6656}}
    assert progress_text(runs, meta) == "3 of 6656 configs, sampled at random (seed 7)"
    assert "partial results: 4 drawn" in progress_text(runs, {**meta, "sample": {**meta["sample"], "configs": 4}})


def test_measures_count_diverged_configs_as_not_reaching_the_target():
    configs = pd.DataFrame({
        "model": ["EBGAN"] * 4 + ["GAN"] * 4,
        "status": ["ok", "ok", "diverged", "error", "ok", "ok", "ok", "ok"],
        "modesCaptured": [8, 3, np.nan, np.nan, 8, 8, 5, 7],
        "highQualityFrac": [0.5, 0.1, np.nan, np.nan, 0.2, 0.4, 0.3, 0.1]})
    m = tables.measures_table(configs, ["modesCaptured", "highQualityFrac"], {"modesCaptured": 8.0})
    eb, gan = (m.set_index("model").loc[k] for k in ("EBGAN", "GAN"))
    assert (eb["configs"], eb["diverged"]) == (3, 1)           # the error config is no result
    assert eb["modesCapturedReached"] == pytest.approx(1 / 3)  # the diverged one fails
    assert gan["modesCapturedReached"] == pytest.approx(2 / 4)
    assert eb["modesCapturedReachedLow"] < 1 / 3 < eb["modesCapturedReachedHigh"]
    assert eb["modesCapturedMedian"] == pytest.approx(5.5) and eb["highQualityFracMedian"] == pytest.approx(0.3)
    assert "highQualityFracReached" not in m                  # no target named: no share
    assert tables.measures_table(configs, [], {}).empty       # MNIST: no measures, no table
