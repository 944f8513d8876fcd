"""The committed Table 1-shaped studies on the 2D mixtures (docs/studies/<grid>/): each is complete
and trained to the budget its grid names, and what its committed report states (the share of each
family above chance, how many runs stopped improving, the paired verdicts) is what direct counting
on its committed results table gives. A change to the report's tests or to a table that would
change a published verdict fails here."""
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest, mannwhitneyu

from docs.studies import tally_mixture
from harness import datasets
from harness.convergence import still_improving_any
from harness.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "docs" / "studies"
GRIDS = ["ring8_table1", "grid25_table1"]       # the complete studies
COMMITTED = [g for g in ("ring8_table1", "grid25_table1") if (STUDIES / g / "results" / g / "trials.parquet").is_file()]
FAMILIES = {"gan": 384, "ebgan": 32, "lsgan": 64, "wgan_gp": 64, "began": 128}
KEYS = ["nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD"]    # the points every subgrid runs
MEASURE = "modesCaptured"      # the verdict's (primary) measure on a mixture


@pytest.fixture(scope="module", params=GRIDS)
def study(request):
    folder = STUDIES / request.param
    runs = pd.read_parquet(folder / "results" / request.param / "trials.parquet")
    summary = pd.read_csv(folder / "summary.csv")
    return folder, runs, summary


def test_the_study_is_complete_and_trained_its_grid_s_budget(study):
    _, runs, _ = study
    assert len(runs) == runs["configId"].nunique() == sum(FAMILIES.values())
    assert runs.groupby("family").size().to_dict() == FAMILIES
    assert set(runs["status"]) <= {"ok", "diverged"}, runs.loc[runs["status"] == "error", "error"]
    ok = runs[runs["status"] == "ok"]
    assert (ok["budgetCounts"] == "gSteps").all() and (ok["gSteps"] == 25_000).all()
    assert (ok["modesCapturedPerEpoch"].map(len) >= 25).all()     # scored after every pass


def test_each_family_s_share_above_chance_is_the_report_s(study):
    folder, runs, _ = study
    chance = pd.read_csv(folder / "chance.csv")
    floor = chance[f"{MEASURE}Max"].max()
    assert floor == 0           # no structureless cloud captures a mode: above chance = one mode or more
    line = next(x for x in (folder / "summary.md").read_text().splitlines() if x.startswith("- Above chance"))
    for model, rows in runs.groupby("model"):
        share = (rows[MEASURE] > floor).mean()
        assert f"{model} {share:.0%} [" in line, (model, share, line)


def test_most_runs_stopped_improving_and_the_report_counts_them(study):
    folder, runs, _ = study
    conv = pd.read_csv(folder / "convergence.csv").set_index("model")
    # Today's rule on each run's curves, counted here apart from the report's code (which reads a row
    # recorded under an older rule alike).
    rule = datasets.get(runs["dataset"].iloc[0]).convergence_measures
    runs = runs.assign(stillImproving=[still_improving_any({m: list(r[f"{m}PerEpoch"]) for m in rule}, rule)
                                       for _, r in runs.iterrows()])
    for model, rows in runs.groupby("model"):
        above = rows[rows[MEASURE] > 0]
        assert conv.loc[model, "stillImproving"] == pytest.approx(rows["stillImproving"].mean())
        assert conv.loc[model, "aboveChanceRuns"] == len(above)
        if len(above):
            assert conv.loc[model, "aboveChanceStillImproving"] == pytest.approx(above["stillImproving"].mean())
    # The bar: at least 80% of the configs stopped improving (over the whole study).
    assert runs["stillImproving"].mean() <= 0.20


def test_the_paired_verdicts_are_the_summary_s(study):
    _, runs, summary = study
    ebgan = runs[runs["family"] == "ebgan"].set_index(KEYS)[MEASURE]
    paired = summary[summary["pairedN"] > 0]
    assert len(paired) == 20        # GAN's 12 subgrids, LSGAN's and WGAN-GP's 2, BEGAN's 4
    for _, row in paired.iterrows():
        subgrid = row["name"].removeprefix(f"{row['model']} ")
        rows = runs[(runs["model"] == row["model"]) & (runs["subgrid"] == subgrid)]
        both = pd.concat([ebgan.rename("e"), rows.set_index(KEYS)[MEASURE].rename("g")], axis=1, join="inner")
        wins, losses = int((both["e"] > both["g"]).sum()), int((both["e"] < both["g"]).sum())
        assert (len(both), wins, losses) == (row["pairedN"], row["pairedWins"], row["pairedLosses"]), row["name"]
        assert binomtest(wins, wins + losses).pvalue == pytest.approx(row["pairedP"], rel=1e-9)
        better = row["pairedPHolm"] < 0.05 and wins > losses
        assert row["verdict"] == ("EBGAN better" if better else "no evidence"), row["name"]


def test_ebgan_against_each_family_is_the_summary_s_mann_whitney_u(study):
    _, runs, summary = study
    e = runs.loc[runs["family"] == "ebgan", MEASURE].to_numpy()
    for _, row in summary[(summary["group"] == "model") & (summary["name"] != "EBGAN")].iterrows():
        g = runs.loc[runs["model"] == row["name"], MEASURE].to_numpy()
        u = (e[:, None] > g[None, :]).sum() + 0.5 * (e[:, None] == g[None, :]).sum()   # U by counting pairs
        assert u == row["mwuU"] == mannwhitneyu(e, g, alternative="two-sided").statistic
        assert mannwhitneyu(e, g, alternative="two-sided").pvalue == pytest.approx(row["mwuP"], rel=1e-9)


@pytest.mark.parametrize("grid", COMMITTED)
def test_the_committed_rows_are_their_grid_file_s_configs(grid):
    """A study's rows, complete or still coming in, are runs of the configs grids/<grid>.yaml
    expands to now: editing the grid file (a setting, a value) after its rows were trained fails here."""
    expected = {c.config_id for c in load_grid(ROOT / "grids" / f"{grid}.yaml").configs}
    rows = pd.read_parquet(STUDIES / grid / "results" / grid / "trials.parquet", columns=["configId", "grid"])
    assert set(rows["configId"]) <= expected and rows["configId"].is_unique
    assert (rows["grid"] == grid).all()
    if grid in GRIDS:
        assert set(rows["configId"]) == expected


@pytest.mark.parametrize("grid", GRIDS)
def test_the_readme_s_family_table_is_the_tally_of_the_committed_rows(grid):
    """The study README's per-family table (above chance, mode counts, still improving) is what
    docs/studies/tally_mixture.py counts on the committed table: a README left behind by a re-run fails."""
    table = tally_mixture.family_table(tally_mixture.load(STUDIES / grid))
    readme = (STUDIES / grid / "README.md").read_text()
    assert "\n".join(table) in readme, "\n".join(table)
