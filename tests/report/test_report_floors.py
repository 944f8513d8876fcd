"""What a verdict stands on (harness.report.floors): chance floors and convergence."""
import numpy as np
import pandas as pd
import pytest
from report_fixtures import SMALL_ARCH, make_trials, table1_configs, write_grid

from harness import datasets
from harness.report import floors
from harness.report.page import write_report
from harness.report.tables import aggregate_seeds, summary_table


def chance_like(dataset: str = "ring8", epochs: int = 5, seed: int = 0, arch: dict = SMALL_ARCH) -> pd.DataFrame:
    """A mixture grid whose every run scores like a structureless sample of the ring: I' near its
    ceiling ln 8 and no mode captured, EBGAN's and GAN's values drawn alike."""
    runs = make_trials(table1_configs(arch, epochs=epochs), rng_seed=seed, n_diverged=0, n_error=0)
    rng = np.random.default_rng(seed)
    runs["dataset"] = dataset
    runs["scoreSamples"] = 500
    runs["Iprime"] = 2.07 + rng.normal(0, 0.003, len(runs))
    runs["modesCaptured"] = 0.0
    runs["highQualityFrac"] = rng.uniform(0, 0.008, len(runs))
    runs["modesCapturedPerEpoch"] = [[0.0] * epochs for _ in range(len(runs))]
    return runs


def test_a_mixture_s_references_capture_no_mode_and_are_drawn_alike_each_time(no_mnist_unless_passed):
    runs = chance_like()
    chance, text = floors.chance_floor(runs, draws=3)
    assert set(chance["reference"]) == set(datasets.get("ring8").chance_references(10, 0))
    assert (chance["modesCapturedMax"] == 0).all() and (chance["IprimeMax"] > 2.0).all()
    assert "3 draws of 500 samples" in text
    again, _ = floors.chance_floor(runs, draws=3)            # seeded draws: the same rows
    pd.testing.assert_frame_equal(chance, again)


def test_a_table_that_scores_like_chance_gets_no_evidence_and_says_it_does_not_beat_chance(no_mnist_unless_passed):
    runs = chance_like()
    configs = aggregate_seeds(runs)
    chance, text = floors.chance_floor(runs, draws=3)
    above = floors.above_chance(configs, chance, "modesCaptured")
    assert (above["aboveChance"] == 0).all() and (above["aboveChanceLow"] == 0).all()
    for measure in ("modesCaptured", "Iprime", "highQualityFrac"):
        verdicts = summary_table(configs.assign(Iprime=configs[measure]))["verdict"]
        assert set(verdicts) - {""} == {"no evidence"}, measure
    lines = floors.basis_lines(runs, configs, chance, text)
    assert any("EBGAN 0% [0%," in line for line in lines)
    assert any("do not beat chance" in line for line in lines)


def test_a_family_still_rising_is_counted_and_warned_about_and_a_short_grid_cannot_tell():
    runs = make_trials(table1_configs(SMALL_ARCH, epochs=25), rng_seed=2, n_diverged=0, n_error=0)
    rising = runs["model"] == "GAN"
    runs.loc[rising, "IprimePerEpoch"] = pd.Series([list(0.2 * np.arange(25)) for _ in range(rising.sum())],
                                                   index=runs.index[rising])
    runs.loc[~rising, "IprimePerEpoch"] = pd.Series([[5.0] * 25 for _ in range((~rising).sum())],
                                                    index=runs.index[~rising])
    conv = floors.convergence_table(runs).set_index("model")
    assert conv.loc["GAN", "stillImproving"] == 1 and conv.loc["EBGAN", "stillImproving"] == 0
    lines = floors.basis_lines(runs, aggregate_seeds(runs), None, "chance rows not computed: no MNIST")
    assert any(line.startswith("Warning") and "GAN" in line and "EBGAN" not in line for line in lines)
    assert any("Chance floor unknown: chance rows not computed" in line for line in lines)
    recorded = runs.assign(stillImproving=False)        # the curves win over a column recorded by an older rule ...
    assert floors.convergence_table(recorded).set_index("model").loc["GAN", "stillImproving"] == 1
    no_curves = recorded.assign(IprimePerEpoch=[[] for _ in range(len(runs))])   # ... which stands where none are
    assert floors.convergence_table(no_curves)["stillImproving"].eq(0).all()
    short = make_trials(table1_configs(SMALL_ARCH, epochs=5), n_diverged=0, n_error=0)
    line = floors.basis_lines(short, aggregate_seeds(short), None, "-")[-1]
    assert "cannot be told" in line and "at most 5 scored epochs" in line


def test_runs_flat_at_chance_do_not_hide_learners_still_learning():
    """Most of a family's runs sit at 0 modes from the first epoch ("stopped improving"), the few
    that learn are still climbing: the share over all runs passes, the share among the runs above
    chance is reported beside it and warned about."""
    runs = chance_like(epochs=25)
    learners = runs.index[runs["model"] == "GAN"][:4]
    for i in learners:
        runs.at[i, "modesCapturedPerEpoch"] = [float(min(8, e // 3)) for e in range(25)]   # 0 ... 8, rising to the end
        runs.at[i, "modesCaptured"] = 8.0
    chance = pd.DataFrame({"reference": ["uniformBox"], "modesCapturedMax": [0.0]})
    conv = floors.convergence_table(runs, chance).set_index("model")
    gan = conv.loc["GAN"]
    assert gan["stillImproving"] == pytest.approx(4 / gan["told"]) and gan["stillImproving"] <= 0.2
    assert (gan["aboveChanceRuns"], gan["aboveChanceTold"], gan["aboveChanceStillImproving"]) == (4, 4, 1.0)
    assert conv.loc["EBGAN", "aboveChanceRuns"] == 0 and np.isnan(conv.loc["EBGAN", "aboveChanceStillImproving"])
    lines = floors.basis_lines(runs, aggregate_seeds(runs), chance, "-", conv.reset_index())
    assert "Of the runs above chance, still improving: GAN 4 of 4 (100% [" in "\n".join(lines)
    warned = [line for line in lines if line.startswith("Warning: more than 20% of the runs above chance")]
    assert len(warned) == 1 and "GAN" in warned[0] and "EBGAN" not in warned[0]
    assert "aboveChanceRuns" not in floors.convergence_table(runs)        # without chance rows: no split


def test_the_page_and_summary_say_what_the_verdict_stands_on(tmp_path, no_mnist_unless_passed):
    four_points = {**SMALL_ARCH, "nLayerG": (2, 3), "nLayerD": (2, 3)}     # a page renders in seconds
    folder = write_grid(tmp_path / "ring", chance_like(epochs=10, arch=four_points))
    out = tmp_path / "out"
    write_report(folder, out)
    summary = (out / "summary.md").read_text()
    assert "### What the verdict stands on" in summary and "do not beat chance" in summary
    iprime = summary[summary.index("### Verdict on Iprime (secondary)"):]      # its chance, beside its verdict
    assert "Above chance (Iprime, above the highest of 3 structureless references" in iprime
    assert "its verdict ranks scores near chance" in iprime
    assert "uniformCircle" in summary and (out / "chance.csv").is_file() and (out / "convergence.csv").is_file()
    page = (out / "index.html").read_text()
    assert "What the verdict stands on" in page
    # the paper's histograms are of the verdict's measure, not of I' (at its ceiling here)
    assert "<h2>Fig. 2: modesCaptured histograms</h2>" in page and "Fig. 2: I&#x27; histograms" not in page
    assert page.index("<h2>Robustness: modesCaptured</h2>") < page.index("<h2>Robustness curves</h2>")  # I' after


def test_a_secondary_measure_near_its_chance_ceiling_is_warned_about_and_one_far_above_is_not():
    """I' on a mixture: a structureless cloud over every mode scores near ln M, the best a config
    can, so a verdict on it ranks noise; the high-quality share of the same runs beats chance by far."""
    runs = chance_like(epochs=5)
    rng = np.random.default_rng(1)
    runs["Iprime"] = 2.0 + rng.uniform(0, 0.079, len(runs))          # up to ln 8 = 2.079
    runs["highQualityFrac"] = rng.uniform(0, 0.9, len(runs))
    configs = aggregate_seeds(runs)
    chance = pd.DataFrame({"reference": ["uniformCircle"], "IprimeMax": [2.0786], "highQualityFracMax": [0.0856]})
    iprime = floors.measure_chance_lines(configs, chance, "Iprime")
    assert iprime[0].startswith("Above chance (Iprime, above the highest of 1 structureless references, 2.08; "
                                "the best config: 2.08)")
    assert iprime[1].startswith("Warning: structureless samples score 100% of the best config's Iprime")
    hq = floors.measure_chance_lines(configs, chance, "highQualityFrac")
    above = (configs["highQualityFrac"] > 0.0856).groupby(configs["model"]).mean()
    assert len(hq) == 1 and f"GAN {above['GAN']:.0%} [" in hq[0]          # no warning: far above chance
    below = floors.measure_chance_lines(configs.assign(highQualityFrac=0.05), chance, "highQualityFrac")
    assert below[1] == ("Warning: no config scores above structureless samples on highQualityFrac: its verdict "
                        "ranks scores near chance, not which family learns the data.")
    assert floors.measure_chance_lines(configs, None, "Iprime") == []
    assert floors.measure_chance_lines(configs, chance, "modeKL") == []       # no chance row for it


@pytest.mark.parametrize("dataset", ["mnist"])
def test_without_mnist_the_chance_rows_are_missing_with_the_reason(dataset, no_mnist_unless_passed, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", "/nonexistent/mnist")
    runs = make_trials(table1_configs(SMALL_ARCH), n_diverged=0, n_error=0)
    chance, text = floors.chance_floor(runs, "/nonexistent/mnist")
    assert chance is None and text.startswith("chance rows not computed:")


def test_the_report_names_the_families_whose_own_normalization_wins():
    from harness.report.analysis import norm_notes
    runs = pd.DataFrame({"family": ["gan", "wgan_gp", "began", "gan"], "normD": ["none", "none", "batch", None]})
    notes = norm_notes(runs)
    assert len(notes) == 2 and any(n.startswith("WGAN-GP") and "'none'" in n for n in notes)
    assert any(n.startswith("BEGAN") for n in notes)
    assert norm_notes(pd.DataFrame({"family": ["gan", "ebgan"]})) == []        # a table from before normD
