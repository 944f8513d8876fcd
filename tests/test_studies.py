"""The committed MNIST corner study (docs/studies/mnist_table1_corner/): its verdicts, recomputed
from its committed results table by direct counting, are the ones its committed summary states.
A change to the report's tests or to the table that would change the published verdict fails here."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, mannwhitneyu

STUDY = Path(__file__).resolve().parents[1] / "docs" / "studies" / "mnist_table1_corner"
KEYS = ["nLayerG", "nLayerD", "dropoutD"]     # the points both families ran (sizeG, sizeD fixed)


@pytest.fixture(scope="module")
def study():
    runs = pd.read_parquet(STUDY / "results" / "mnist_table1_corner" / "trials.parquet")
    summary = pd.read_csv(STUDY / "summary.csv").set_index("name")
    return runs, summary


def test_the_corner_is_complete_and_every_run_finished(study):
    runs, _ = study
    assert len(runs) == runs["configId"].nunique() == 104
    assert (runs["status"] == "ok").all()
    assert runs.groupby("family").size().to_dict() == {"ebgan": 8, "gan": 96}


def test_ebgan_against_gan_as_a_whole_is_the_summary_s_mann_whitney_u(study):
    runs, summary = study
    e = runs.loc[runs["family"] == "ebgan", "Iprime"].to_numpy()
    g = runs.loc[runs["family"] == "gan", "Iprime"].to_numpy()
    u = (e[:, None] > g[None, :]).sum() + 0.5 * (e[:, None] == g[None, :]).sum()   # U by counting pairs
    row = summary.loc["GAN"]
    assert u == row["mwuU"] == mannwhitneyu(e, g, alternative="two-sided").statistic
    assert mannwhitneyu(e, g, alternative="two-sided").pvalue == pytest.approx(row["mwuP"], rel=1e-9)
    assert row["verdict"] == "EBGAN better" and row["mwuPHolm"] < 1e-6


def test_each_subgrid_s_paired_sign_test_is_the_summary_s(study):
    runs, summary = study
    ebgan = runs[runs["family"] == "ebgan"].set_index(KEYS)["Iprime"]
    subgrids = runs[runs["family"] == "gan"].groupby("subgrid")
    assert subgrids.ngroups == 12
    for name, rows in subgrids:
        gan = rows.set_index(KEYS)["Iprime"]
        both = pd.concat([ebgan.rename("e"), gan.rename("g")], axis=1, join="inner")
        wins, losses = int((both["e"] > both["g"]).sum()), int((both["e"] < both["g"]).sum())
        row = summary.loc[name]
        assert (len(both), wins, losses) == (row["pairedN"], row["pairedWins"], row["pairedLosses"])
        assert binomtest(wins, wins + losses).pvalue == pytest.approx(row["pairedP"], rel=1e-9)
    # EBGAN wins all 8 points against every subgrid, yet after Holm over the page's p-values no
    # subgrid row reaches 0.05: 8 pairs give the sign test no p below 2 / 2^8.
    paired = summary[summary["pairedN"] > 0]
    assert (paired["pairedWins"] == 8).all() and np.allclose(paired["pairedP"], 2 / 2 ** 8)
    assert (paired["verdict"] == "no evidence").all()
