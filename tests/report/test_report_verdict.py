"""harness.report.verdict: the first screen's table and sentences, generated from the summary's
rows, and the notes of summary.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import diverging_family_runs, small

from harness.report import compare, stats, tables, verdict


@pytest.fixture(scope="module")
def diverging() -> pd.DataFrame:
    runs = diverging_family_runs()
    runs["gSteps"] = np.where(runs["model"] == "WGAN-GP", 200, 1000)
    return tables.summary_table(tables.aggregate_seeds(runs), n_resamples=100)


def test_verdict_table_states_divergence_wins_and_the_holm_verdict(diverging):
    cells = verdict.verdict_table(diverging).set_index("against EBGAN")
    assert list(cells.index) == ["EBGAN", "WGAN-GP"]
    w = cells.loc["WGAN-GP"]
    row = diverging.set_index("name").loc["WGAN-GP"]
    assert w["diverged [95% CI]"] == (f"{100 * row['divergedFrac']:.0f}% [{100 * row['divergedLow']:.0f}%, "
                                      f"{100 * row['divergedHigh']:.0f}%]") == "60% [56%, 64%]"
    assert w["EBGAN wins / ties / losses"].endswith("of 512 points")
    assert w["paired score [95% CI]"] == (f"{row['pairedScore']:.2f} [{row['pairedScoreLow']:.2f}, "
                                          f"{row['pairedScoreHigh']:.2f}]")
    assert w["verdict"] == compare.BETTER and w["test"] == "paired sign test"
    assert w["G updates per run"] == "200 (dSteps)" and cells.loc["EBGAN", "G updates per run"] == "1,000 (dSteps)"
    assert cells.loc["EBGAN", "verdict"] == "reference"


def test_headline_answers_the_papers_question():
    table = tables.summary_table(tables.aggregate_seeds(small(rng_seed=4)), n_resamples=50)
    words = verdict.headline(table)
    gan = table.set_index("name").loc["GAN"]
    assert words[0].startswith("Does EBGAN train more reliably than GAN across the grid")
    answer = {compare.BETTER: "Yes: EBGAN beats GAN", compare.WORSE: "No: GAN beats EBGAN",
              compare.NO_EVIDENCE: "no evidence either way"}[gan["verdict"]]
    assert answer in words[0] and "Diverged: EBGAN" in words[0]
    assert words[1].startswith("Against the other 12 rows:")
    flipped = table.assign(verdict=np.where(table["name"] == "GAN", compare.BETTER, table["verdict"]))
    assert "Yes: EBGAN beats GAN" in verdict.headline(flipped)[0]
    assert "not recorded" in verdict.verdict_table(table)["G updates per run"].iloc[0]


def test_without_ebgan_the_table_gives_divergence_rates_only():
    runs = small(rng_seed=5)
    table = tables.summary_table(tables.aggregate_seeds(runs[runs["model"] != "EBGAN"]), n_resamples=50)
    assert "No EBGAN configs" in verdict.headline(table)[0]
    cells = verdict.verdict_table(table)
    assert list(cells["against EBGAN"]) == ["GAN", "EBGAN-PT"] and (cells["verdict"] == verdict.DASH).all()


def test_rule_and_notes_name_the_tests_and_the_correction(diverging):
    rule = verdict.rule_text(diverging.attrs["holmM"])
    for name in (stats.PAIRED_TEST, stats.UNPAIRED_TEST, stats.PAIRED_INTERVAL, stats.ADJUSTMENT,
                 compare.VERDICT_RULE, f"all {diverging.attrs['holmM']} p-values"):
        assert name in rule
    md = verdict.summary_markdown(diverging, "t", "mean")
    assert md.index("## Verdict against EBGAN") < md.index("## Every row")
    assert "pairedScoreLow, pairedScoreHigh" in md and "divergedFrac" in md and "gStepsMedian" in md


def test_the_rule_and_notes_name_the_measure_the_table_compares(diverging):
    """On a mixture the first screen compares modes captured, not I': its 'above pooled median'
    column and the pctAbove note must say so."""
    on_modes = diverging.copy()
    on_modes.attrs = {**diverging.attrs, "measure": "modesCaptured"}
    md = verdict.summary_markdown(on_modes, "t", "mean")
    assert "above the median modesCaptured of all ok configs" in md
    assert "with modesCaptured above the XXth percentile" in md and "median I'" not in md
    assert "above the median I' of all ok configs" in verdict.summary_markdown(diverging, "t", "mean")
