"""harness.report.paper_figures and extra_figures with every family: a Fig. 2-style figure per
family against EBGAN and GAN, one colour per model everywhere, captions with each family's own
settings, partial dependence only where a model predicts, the anchor without a stretched axis."""
from __future__ import annotations

import html

import pandas as pd
from matplotlib.colors import to_rgba
from report_fixtures import write_grid

from harness import families
from harness.report import paper_figures, style, tables
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
    # the registry's labels, in the report's colour-blind-safe colours (style.palette)
    registry = {m: to_rgba(c) for m, c in style.palette().items()}
    assert list(registry) == list(families.colors())
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


def test_no_partial_dependence_where_no_setting_predicts():
    from report_fixtures import importance_grid

    from harness.report import estimates, extra_figures
    table = pd.concat([importance_grid(2.0, 0, "LSGAN"), importance_grid(0.0, 1, "BEGAN")])
    imp, fits = estimates.importance(table, known=("LSGAN", "BEGAN"))
    assert [f.predicts for f in fits] == [True, False]
    fig = extra_figures.draw_importance(imp, fits, "t")
    pd_axes = [ax for ax in fig.axes if ax.get_visible() and "partial dependence" in ax.get_ylabel()]
    assert pd_axes and all(ax.get_title().startswith("LSGAN") for ax in pd_axes)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.replace("\n", " ").startswith(f"BEGAN: {estimates.NO_PREDICTION}") for t in texts)


def test_the_anchor_beyond_the_data_does_not_stretch_the_axis(family_runs):
    from harness.report import extra_figures
    configs = tables.aggregate_seeds(family_runs)
    top = tables.ok_values(configs).max()
    fig = extra_figures.draw_ecdf(configs, 11.9, "t")
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < top + 1  # not stretched to 11.9
    assert any("real MNIST test set (I' = 11.90)" in t.get_text() for t in ax.texts)  # an arrow says where
    near = extra_figures.draw_ecdf(configs, top - 1, "t").axes[0]  # within the data: a line
    assert any("real MNIST" in str(line.get_label()) for line in near.get_lines())
    assert not near.texts


def test_a_mixture_s_curves_show_its_primary_measure_against_g_updates_with_each_model_s_best_run():
    """Where the budget counts G updates (WGAN-GP, scored once per pass of its critic, has 5 times
    GAN's scored epochs: EBGAN stands in for it here), the curves line up on G updates; the
    measure is the verdict's (modes captured), and the best run shows whether the runs that learn
    have stopped, where the quartiles sit at 0."""
    import numpy as np
    from report_fixtures import make_trials, table1_configs
    runs = make_trials(table1_configs(epochs=5), rng_seed=1, n_diverged=0, n_error=0)
    rng = np.random.default_rng(1)
    epochs = np.where(runs["model"] == "GAN", 5, 25)
    runs["budgetCounts"], runs["gSteps"] = "gSteps", 5000
    runs["modesCapturedPerEpoch"] = [list(rng.integers(0, 3, n).astype(float)) for n in epochs]
    runs["modesCaptured"] = [c[-1] for c in runs["modesCapturedPerEpoch"]]
    fig = paper_figures.draw_curves(runs, "t", ("modesCaptured", "Iprime"))
    drawn = [ax for ax in fig.axes if ax.get_visible()]
    assert {ax.get_title().split(":")[0] for ax in drawn} == set(runs["model"])
    for ax in drawn:
        model = ax.get_title().split(":")[0]
        assert ax.get_xlabel() == "G updates" and ax.get_ylabel() == "modesCaptured"
        lines = {line.get_label().split(" run")[0]: line for line in ax.get_lines()}
        assert list(lines) == ["q25", "median", "q75", "best"]
        best = tables.best_runs(runs[runs["model"] == model], ("modesCaptured", "Iprime"))[model]
        assert list(lines["best"].get_ydata()) == best["modesCapturedPerEpoch"]
        x = lines["best"].get_xdata()
        assert x[-1] == 5000 and len(x) == len(best["modesCapturedPerEpoch"])     # every scored epoch, to the end
    # where the budget counts D updates (the paper's epochs), the x axis stays in epochs
    mnist = paper_figures.draw_curves(make_trials(table1_configs(epochs=5), rng_seed=1), "t")
    assert {ax.get_xlabel() for ax in mnist.axes if ax.get_visible()} == {"epoch"}
