"""harness.report.compare: EBGAN against each summary row with divergence counted as a loss,
paired where the grid is paired, every p-value Holm-corrected together, and the verdict."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import (
    SMALL_ARCH,
    diverging_family_runs,
    family_configs,
    make_trials,
    small,
    table1_configs,
)
from scipy import stats as sps

from harness.report import compare, stats, tables


@pytest.fixture(scope="module")
def diverging() -> pd.DataFrame:
    """The summary of a family that diverges on 60% of EBGAN's 512 points and beats it on the rest."""
    return tables.summary_table(tables.aggregate_seeds(diverging_family_runs()), n_resamples=200)


def test_diverged_configs_are_a_result_not_a_gap(diverging):
    row = diverging.set_index("name").loc["WGAN-GP"]
    assert row["divergedFrac"] == pytest.approx(0.6, abs=0.002)
    assert (row["divergedLow"], row["divergedHigh"]) == pytest.approx(stats.wilson_interval(307, 512))
    # survivors only, the row is better (what the report said before) ...
    assert row["probSuperiorityOk"] < 0.2 and row["mwuPOk"] < 1e-6 and row["medianDiffOk"] < 0
    # ... counted in, a diverged config loses to any finished one: EBGAN is better
    assert row["probSuperiority"] > 0.5 and row["mwuP"] < 0.05
    assert row["pairingKeys"] == "nLayerG+nLayerD+sizeG+sizeD+dropoutD" and row["pairedN"] == 512
    wins = int(row["pairedWins"])  # every diverged point, and the few survivors EBGAN beats
    assert 307 < wins < 512 - 150 and row["pairedLosses"] == 512 - wins and row["pairedTies"] == 0
    assert row["pairedWinFrac"] == pytest.approx(wins / 512)
    assert row["pairedP"] == pytest.approx(sps.binomtest(wins, 512).pvalue)
    assert row["pairedScoreLow"] < row["pairedScore"] < row["pairedScoreHigh"]
    assert row["verdict"] == compare.BETTER and row["verdictTest"] == "paired sign test"
    assert row["verdictPHolm"] == row["pairedPHolm"] < 0.05


def test_unpaired_statistics_equal_scipy_on_the_divergence_scale():
    configs = tables.aggregate_seeds(small(rng_seed=4))
    table = tables.summary_table(configs, n_resamples=200).set_index("name")
    eb, gan = (compare.scores(configs[configs["model"] == m]) for m in ("EBGAN", "GAN"))
    eb, gan = eb[~np.isnan(eb)], gan[~np.isnan(gan)]
    want = sps.mannwhitneyu(eb, gan, alternative="two-sided")
    assert table.loc["GAN", "mwuU"] == want.statistic and table.loc["GAN", "mwuP"] == want.pvalue
    ok = sps.mannwhitneyu(eb[np.isfinite(eb)], gan[np.isfinite(gan)], alternative="two-sided")
    assert table.loc["GAN", "mwuPOk"] == ok.pvalue
    assert table.loc["GAN", "medianDiffOk"] == pytest.approx(
        np.median(eb[np.isfinite(eb)]) - np.median(gan[np.isfinite(gan)]))
    # GAN as a whole: 12 partners per EBGAN point, so unpaired; each subgrid: paired
    assert table.loc["GAN", "pairingKeys"] == "" and np.isnan(table.loc["GAN", "pairedP"])
    sub = table[table["group"] == "subgrid"]
    assert (sub["pairingKeys"] == "nLayerG+nLayerD").all() and sub["pairedP"].notna().all()
    assert table.loc[["EBGAN", "EBGAN-PT"], "mwuP"].isna().all()  # EBGAN's own family: no test


def test_median_difference_bootstrap_is_deterministic_and_covers_a_shift():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 600)
    first, again = compare.median_difference(x, y), compare.median_difference(x, y)
    assert first == again
    assert 0 < first["medianDiffOkLow"] < 1.0 < first["medianDiffOkHigh"]
    assert compare.median_difference(x, y, seed=1)["medianDiffOkLow"] != first["medianDiffOkLow"]
    # survivors only: a diverged config (-inf) is left out
    assert compare.median_difference(np.r_[x, -np.inf], y)["medianDiffOk"] == first["medianDiffOk"]
    assert all(np.isnan(v) for v in compare.median_difference([], [1.0, 2.0]).values())


def test_pairing_keys_come_from_the_data():
    runs = make_trials(table1_configs(pt_points=0)[:16] + family_configs(), n_diverged=0, n_error=0)
    configs = tables.aggregate_seeds(runs)
    eb = configs[configs["model"] == "EBGAN"]
    wgan = configs[configs["model"] == "WGAN-GP"]
    assert compare.pairing_keys(eb, wgan) == []  # EBGAN's 16 points vary sizeD, WGAN-GP's do not
    small_eb = tables.aggregate_seeds(small(n_diverged=0, n_error=0)).query("model == 'EBGAN'")
    assert compare.pairing_keys(small_eb, wgan) == ["nLayerG", "nLayerD"]
    lsgan = configs[configs["model"] == "LSGAN"]  # two lr subgrids: two partners per point
    assert compare.pairing_keys(small_eb, lsgan) == []
    assert compare.pairing_keys(small_eb, lsgan[lsgan["lr"] == 0.001]) == ["nLayerG", "nLayerD"]
    margins = small_eb.assign(margin=np.resize([1.0, 10.0], len(small_eb)))
    assert compare.pairing_keys(pd.concat([margins, margins.assign(margin=5.0)]), wgan) == []
    out = compare.paired(small_eb, lsgan)
    assert out["pairingKeys"] == "" and np.isnan(out["pairedP"])


def test_settings_held_constant_at_other_values_do_not_pair():
    """EBGAN trained 2 epochs and GAN 25 on the same 16 grid points: other training, not the
    same points, so no row pairs; at equal epochs each GAN subgrid pairs point by point."""
    short = [c for c in table1_configs(SMALL_ARCH, epochs=2) if c.family == "ebgan"]
    long = [c for c in table1_configs(SMALL_ARCH, epochs=25) if c.family == "gan"]
    configs = tables.aggregate_seeds(make_trials(short + long, n_diverged=0, n_error=0))
    table = tables.summary_table(configs, n_resamples=50)
    compared = table[table["mwuP"].notna()]
    assert len(compared) == 13 and (compared["pairingKeys"] == "").all()   # GAN and its 12 subgrids
    assert compared[list(compare.PAIRED_COLUMNS)].isna().all().all()
    assert (compared["verdictTest"] == "Mann-Whitney U").all()
    equal = tables.summary_table(configs.assign(epochs=25), n_resamples=50)
    sub = equal[equal["group"] == "subgrid"]
    assert (sub["pairingKeys"] == "nLayerG+nLayerD").all() and (sub["pairedN"] == 16).all()
    eb, gan = (configs[configs["subgrid"] == "adam/adam/lr=0.001"].query(f"model == '{m}'")
               for m in ("EBGAN", "GAN"))
    assert compare.pairing_keys(eb, gan) == []
    assert compare.pairing_keys(eb, gan.assign(epochs=2)) == ["nLayerG", "nLayerD"]
    assert compare.pairing_keys(eb, gan.assign(epochs=2).drop(columns="nz")) == []  # on one side only
    # what the budget counts is the family's protocol (WGAN-GP counts G updates): it may differ
    assert compare.pairing_keys(eb, gan.assign(epochs=2, budgetCounts="gSteps")) == ["nLayerG", "nLayerD"]
    # a row written before `dataset` was recorded trained on the value every earlier run had
    assert compare.pairing_keys(eb.assign(dataset=None), gan.assign(epochs=2)) == ["nLayerG", "nLayerD"]


def test_holm_over_every_p_value_and_the_verdict_rule():
    table = pd.DataFrame({"mwuP": [0.001, 0.2, 0.004, np.nan], "mwuPOk": [0.5, 0.01, 0.3, np.nan],
                          "pairedP": [np.nan, np.nan, 0.002, np.nan],
                          "probSuperiority": [0.3, 0.9, 0.7, np.nan],
                          "pairedWins": [np.nan, np.nan, 40, np.nan],
                          "pairedLosses": [np.nan, np.nan, 10, np.nan]})
    out = compare.adjust(table)
    p = table[list(compare.HOLM_OF)].to_numpy()
    np.testing.assert_allclose(out[["mwuPHolm", "mwuPOkHolm", "pairedPHolm"]].to_numpy(), stats.holm(p))
    assert out.attrs["holmM"] == 7
    # row 0: unpaired, significant, EBGAN loses; row 1: not significant after Holm (0.2 raw);
    # row 2: paired, so its sign test decides, EBGAN wins; row 3: no test
    assert out["verdict"].tolist() == [compare.WORSE, compare.NO_EVIDENCE, compare.BETTER, ""]
    assert out["verdictTest"].tolist() == ["Mann-Whitney U", "Mann-Whitney U", "paired sign test", ""]
    assert out.loc[2, "verdictPHolm"] == out.loc[2, "pairedPHolm"]


def test_where_nothing_diverged_the_survivors_only_p_value_is_counted_once():
    """mwuPOk is mwuP when no config diverged on either side: one test, one p-value in Holm's m."""
    table = pd.DataFrame({"mwuU": [10.0, 12.0, 30.0], "mwuP": [0.001, 0.2, 0.004],
                          "mwuUOk": [10.0, 14.0, 30.0], "mwuPOk": [0.001, 0.3, 0.004],
                          "pairedP": [np.nan] * 3, "probSuperiority": [0.3, 0.6, 0.8],
                          "pairedWins": [np.nan] * 3, "pairedLosses": [np.nan] * 3})
    out = compare.adjust(table)
    assert out.attrs["holmM"] == 4          # rows 0 and 2 once each, row 1 twice (a diverged config there)
    distinct = np.array([0.001, 0.2, 0.3, 0.004])
    np.testing.assert_allclose(out["mwuPHolm"], stats.holm(distinct)[[0, 1, 3]])
    np.testing.assert_allclose(out["mwuPOkHolm"], stats.holm(distinct)[[0, 2, 3]])


def test_summary_counts_and_g_updates(diverging):
    assert {"divergedFrac", "divergedLow", "divergedHigh", "gStepsMedian", "budgetCounts", "mwuPHolm",
            "mwuPOkHolm", "pairedPHolm", "verdict"} <= set(diverging.columns)
    assert (diverging["gStepsMedian"] == tables.NOT_RECORDED_VALUE).all()  # no gSteps column
    runs = diverging_family_runs()
    runs["gSteps"] = np.where(runs["model"] == "WGAN-GP", 10, 50)
    table = tables.summary_table(tables.aggregate_seeds(runs), n_resamples=50).set_index("name")
    assert table.loc["WGAN-GP", "gStepsMedian"] == 10 and table.loc["EBGAN", "gStepsMedian"] == 50
    assert table.loc["WGAN-GP", "budgetCounts"] == "dSteps"
    old = tables.summary_table(tables.aggregate_seeds(runs.drop(columns=["budgetCounts"])), n_resamples=50)
    assert (old["budgetCounts"] == tables.NOT_RECORDED_VALUE).all()
