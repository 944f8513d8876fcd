"""The report with every family: a Fig. 2-style figure per family against EBGAN and GAN, summary
rows per family (and per subgrid of families with several), one colour per model everywhere."""
from __future__ import annotations

import html
import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from harness import families, report
from harness.config import TrainConfig
from report_fixtures import SMALL_ARCH, make_trials, table1_configs, write_grid

COMMON = dict(epochs=5, trainImages=640, scoreSamples=100, epochScoreSamples=50)


def family_configs() -> list[TrainConfig]:
    """16 architecture points for LSGAN (2 subgrids), WGAN-GP (1) and BEGAN (2 gammas)."""
    points = [dict(zip(SMALL_ARCH, v)) for v in itertools.product(*SMALL_ARCH.values())]
    out = [TrainConfig(family="lsgan", lr=lr, **p, **COMMON) for lr in (0.001, 0.0002) for p in points]
    out += [TrainConfig(family="wgan_gp", **p, **COMMON) for p in points]
    out += [TrainConfig(family="began", gamma=g, **p, **COMMON) for g in (0.3, 0.7) for p in points]
    return out


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = make_trials(table1_configs(SMALL_ARCH, pt_points=2) + family_configs(), rng_seed=3)
    df.loc[df["model"] == "WGAN-GP", "Iprime"] += 1.0      # a clear shift, for the statistics
    return df


def legend_colors(fig) -> dict[str, tuple]:
    out = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            out.setdefault(label.split(" (")[0], to_rgba(handle.get_edgecolor()))
    return out


def test_one_fig2_style_figure_per_family_with_one_colour_per_model_everywhere(runs, tmp_path):
    folder = write_grid(tmp_path / "g", runs, total=len(runs), configs=len(runs))
    written = {p.name for p in report.write_report(folder, tmp_path / "out")}
    assert {"fig2_histograms.png", "fig2_lsgan.png", "fig2_wgan_gp.png", "fig2_began.png"} <= written
    configs = report.aggregate_seeds(runs)
    bins = report.common_bins(configs["Iprime"])
    paper = legend_colors(report.draw_fig2(configs, bins, "t"))
    assert list(paper) == ["GAN", "EBGAN", "EBGAN-PT"]              # Fig. 2 is the paper's
    registry = {m: to_rgba(c) for m, c in families.colors().items()}
    for family, models in report.other_families(configs).items():
        drawn = legend_colors(report.draw_family_fig2(configs, bins, "t", models))
        assert list(drawn) == [*models, "EBGAN", "GAN"]
        assert all(drawn[m] == registry[m] for m in drawn)
    assert all(paper[m] == registry[m] for m in paper)
    curves = report.draw_curves(runs, "t")
    for ax in curves.axes:
        if ax.get_visible():
            model = ax.get_title().split(":")[0]
            assert all(to_rgba(line.get_color()) == registry[model] for line in ax.get_lines())
    page = (tmp_path / "out" / "index.html").read_text()
    for caption in ("Fig. 2: I' histograms", "Fig. 3: GAN optimizer subgrids", "Fig. 4: best samples",
                    "I' over training", *(f"Fig. 2-style: {', '.join(m)} against EBGAN and GAN"
                                          for m in report.other_families(configs).values())):
        assert f"<h2>{html.escape(caption)}</h2>" in page                  # each figure on the page


def test_summary_rows_per_family_compared_with_ebgan(runs):
    configs = report.aggregate_seeds(runs)
    table = report.summary_table(configs, n_resamples=200)
    models = table[table["group"] == "model"].set_index("name")
    assert list(models.index) == ["GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"]
    assert models.loc[["GAN", "LSGAN", "WGAN-GP", "BEGAN"], "mwuP"].notna().all()
    assert models.loc[["EBGAN", "EBGAN-PT"], "mwuP"].isna().all()        # EBGAN's own family
    assert models.loc["LSGAN", "n"] == 32 and models.loc["BEGAN", "n"] == 32
    eb = report.ok_values(configs[configs["model"] == "EBGAN"])
    wg = report.ok_values(configs[configs["model"] == "WGAN-GP"])
    assert models.loc["WGAN-GP", "medianDiff"] == pytest.approx(np.median(eb) - np.median(wg))
    subgrids = table[table["group"] == "subgrid"]["name"].tolist()
    assert len([s for s in subgrids if "/" in s and " " not in s]) == 12          # GAN's, as Fig. 3
    assert [s for s in subgrids if s.startswith("LSGAN ")] == ["LSGAN adam/adam/lr=0.001", "LSGAN adam/adam/lr=0.0002"]
    assert [s for s in subgrids if s.startswith("BEGAN ")] == ["BEGAN adam/adam/lr=0.001/gamma=0.3",
                                                              "BEGAN adam/adam/lr=0.001/gamma=0.7"]
    assert not [s for s in subgrids if s.startswith("WGAN-GP ")]                 # one subgrid: no rows


def test_captions_name_each_familys_own_settings(runs):
    best = report.best_runs(runs)
    assert list(best) == ["GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"]
    assert "lambdaGP=10" in report.config_caption(best["WGAN-GP"]) and "nCritic=5" in report.config_caption(best["WGAN-GP"])
    assert "gamma=" in report.config_caption(best["BEGAN"]) and "margin" not in report.config_caption(best["BEGAN"])
    assert "margin" not in report.config_caption(best["GAN"])
