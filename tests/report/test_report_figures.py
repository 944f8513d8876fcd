"""harness.report.paper_figures with every family: a Fig. 2-style figure per family against EBGAN
and GAN, one colour per model everywhere, captions with each family's own settings."""
from __future__ import annotations

import html

from matplotlib.colors import to_rgba
from report_fixtures import write_grid

from harness import families
from harness.report import paper_figures, tables
from harness.report.page import write_report


def legend_colors(fig) -> dict[str, tuple]:
    out = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            out.setdefault(label.split(" (")[0], to_rgba(handle.get_edgecolor()))
    return out


def test_one_fig2_style_figure_per_family_with_one_colour_per_model_everywhere(family_runs, tmp_path):
    folder = write_grid(tmp_path / "g", family_runs, total=len(family_runs), configs=len(family_runs))
    written = {p.name for p in write_report(folder, tmp_path / "out")}
    assert {"fig2_histograms.png", "fig2_lsgan.png", "fig2_wgan_gp.png", "fig2_began.png"} <= written
    configs = tables.aggregate_seeds(family_runs)
    bins = tables.common_bins(configs["Iprime"])
    paper = legend_colors(paper_figures.draw_fig2(configs, bins, "t"))
    assert list(paper) == ["GAN", "EBGAN", "EBGAN-PT"]              # Fig. 2 is the paper's
    registry = {m: to_rgba(c) for m, c in families.colors().items()}
    for models in tables.other_families(configs).values():
        drawn = legend_colors(paper_figures.draw_family_fig2(configs, bins, "t", models))
        assert list(drawn) == [*models, "EBGAN", "GAN"]
        assert all(drawn[m] == registry[m] for m in drawn)
    assert all(paper[m] == registry[m] for m in paper)
    curves = paper_figures.draw_curves(family_runs, "t")
    for ax in curves.axes:
        if ax.get_visible():
            model = ax.get_title().split(":")[0]
            assert all(to_rgba(line.get_color()) == registry[model] for line in ax.get_lines())
    page = (tmp_path / "out" / "index.html").read_text()
    for caption in ("Fig. 2: I' histograms", "Fig. 3: GAN optimizer subgrids", "Fig. 4: best samples",
                    "I' over training", *(f"Fig. 2-style: {', '.join(m)} against EBGAN and GAN"
                                          for m in tables.other_families(configs).values())):
        assert f"<h2>{html.escape(caption)}</h2>" in page                  # each figure on the page


def test_captions_name_each_familys_own_settings(family_runs):
    best = tables.best_runs(family_runs)
    assert list(best) == ["GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"]
    wgan, began = paper_figures.config_caption(best["WGAN-GP"]), paper_figures.config_caption(best["BEGAN"])
    assert "lambdaGP=10" in wgan and "nCritic=5" in wgan
    assert "gamma=" in began and "margin" not in began
    assert "margin" not in paper_figures.config_caption(best["GAN"])
