"""The paper's figures from the results: Fig. 2 (histograms of EBGAN against GAN at three
depth limits, of I' as in the paper or of a dataset's primary measure, a mixture's modes
captured; and one Fig. 2-style figure per further family against both), Fig. 3 (GAN's optimizer
subgrids against EBGAN), Fig. 4 (each model's best run's samples) and the training curves. Which
rows each panel draws is decided in harness.report.tables; here only the drawing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.ticker import MaxNLocator

from harness import families
from harness.config import TABLE1_SETTINGS
from harness.report import style
from harness.report.tables import (
    BASELINE,
    PANELS_FIG2,
    REFERENCE,
    best_runs,
    by_model,
    fig2_panels,
    histogram_percentages,
    ok_values,
    paper_models,
    quartile_runs,
    subgrid_panels,
)


def _draw_histograms(ax, groups: dict[str, pd.DataFrame], bins: np.ndarray,
                     colors: dict[str, Any], measure: str = "Iprime") -> None:
    """Overlaid percent histograms of `measure`, one per group, with the diverged bar at the left."""
    span = bins[-1] - bins[0]
    slot, slot_width = bins[0] - 0.14 * span, 0.07 * span  # the diverged bar's place
    bar = slot_width / max(len(groups), 1)
    for i, (label, g) in enumerate(groups.items()):
        color = colors[g["model"].iloc[0]] if len(g) else "gray"
        diverged = int((g["status"] == "diverged").sum())
        errors = int((g["status"] == "error").sum())
        pct, div_pct = histogram_percentages(ok_values(g, measure), bins, diverged)
        text = f"{label} (n={len(g) - errors}, {diverged} diverged"
        text += f"; {errors} error(s), not in %)" if errors else ")"
        ax.stairs(pct, bins, fill=True, alpha=0.35, color=color)
        ax.stairs(pct, bins, color=color, linewidth=1.2, label=text)
        ax.bar(slot - slot_width / 2 + (i + 0.5) * bar, div_pct, width=bar, color=color,
               alpha=0.6, hatch="//", edgecolor=color)
    ax.axvline(bins[0] - 0.06 * span, color="0.6", linestyle=":", linewidth=1)
    ticks = [t for t in MaxNLocator(5).tick_values(bins[0], bins[-1]) if bins[0] <= t <= bins[-1]]
    ax.set_xticks([slot, *ticks], ["diverged", *(f"{t:g}" for t in ticks)])
    ax.set_xlim(slot - 0.06 * span, bins[-1] + 0.02 * span)
    ax.set_xlabel("I' (final, modified inception score)" if measure == "Iprime" else f"{measure} (final)")
    ax.set_ylabel("% of models")
    if groups:
        ax.legend(fontsize="small", loc="upper left")


def draw_fig2(configs: pd.DataFrame, bins: np.ndarray, title: str, models: list[str] | None = None,
              what: str = "EBGAN against GAN", label: str = "Fig. 2", measure: str = "Iprime") -> Figure:
    """Fig. 2's three depth panels for `models` (default: the paper's), histograms of `measure`."""
    models = paper_models(configs) if models is None else models
    fig = style.new_figure((16, 4.8))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, len(PANELS_FIG2), sharex=True, sharey=True)
    for ax, (name, panel) in zip(axes, fig2_panels(configs).items()):
        _draw_histograms(ax, by_model(panel, models), bins, style.palette(configs["model"]), measure)
        ax.set_title(name)
    style.suptitle(fig, f"{label}: {measure_name(measure)} histograms, {what} — {title}")
    return fig


def draw_family_fig2(configs: pd.DataFrame, bins: np.ndarray, title: str, models: list[str],
                     measure: str = "Iprime") -> Figure:
    """A Fig. 2-style figure of one more family's models against EBGAN and GAN."""
    return draw_fig2(configs, bins, title, [*models, REFERENCE, BASELINE],
                     f"{', '.join(models)} against {REFERENCE} and {BASELINE}", "Fig. 2-style", measure)


def _grid_shape(panels: dict[str, pd.DataFrame]) -> tuple[int, int]:
    """Fig. 3's rows and columns: one column per learning rate where the lrs tile the panels."""
    n = len(panels)
    lrs = {g["lr"].iloc[0] for g in panels.values()}
    if 1 < len(lrs) <= 4 and n % len(lrs) == 0:
        return n // len(lrs), len(lrs)
    cols = min(4, n)
    return -(-n // cols), cols


def draw_fig3(configs: pd.DataFrame, bins: np.ndarray, title: str, measure: str = "Iprime") -> Figure | None:
    """Fig. 3: one panel per GAN optimizer subgrid, each against all of EBGAN, histograms of
    `measure` (None without GAN rows)."""
    panels = subgrid_panels(configs)
    if not panels:
        return None
    rows, cols = _grid_shape(panels)
    fig = style.new_figure((4.6 * cols, 3.3 * rows + 0.6))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    ref = configs[configs["model"] == REFERENCE]
    for ax, (name, gan) in zip(axes, panels.items()):
        groups = {BASELINE: gan, **({REFERENCE: ref} if len(ref) else {})}
        _draw_histograms(ax, groups, bins, style.palette(), measure)
        ax.set_title(f"{name} (n={len(gan)})", fontsize="medium")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes:
        ax.label_outer()
    style.suptitle(fig, f"Fig. 3: GAN optimizer subgrids against EBGAN — {title}")
    return fig


def config_caption(row: pd.Series) -> str:
    """A run's settings under the paper's names, as in Fig. 4's caption."""
    def fmt(v: Any) -> str:
        return str(v).lower() if isinstance(v, (bool, np.bool_)) else f"{v:g}" if isinstance(
            v, (float, np.floating)) else str(v)
    parts = [f"{k}={fmt(row[k])}" for k in TABLE1_SETTINGS]
    family = families.find(row["family"])
    parts += [f"{k}={fmt(row[k])}" for k in (family.settings if family else ()) if k in row.index]
    lines = [", ".join(parts[i:i + 3]) for i in range(0, len(parts), 3)]
    return "\n".join(lines + [f"seed={row['seed']}"])


def measure_name(column: str) -> str:
    """A score column as figures name it (Iprime: I')."""
    return "I'" if column == "Iprime" else column


def draw_fig4(runs: pd.DataFrame, folder: Path, title: str, by: tuple[str, ...] = ("Iprime",)) -> Figure | None:
    """Fig. 4: the samples of each model's best run (tables.best_runs, by `by`), captioned with its
    settings (None without an ok run)."""
    best = best_runs(runs, by)
    if not best:
        return None
    cols = min(3, len(best))
    rows = -(-len(best) // cols)
    fig = style.new_figure((4.3 * cols, 6.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(best):]:
        ax.set_visible(False)
    for ax, (label, (model, row)) in zip(axes, zip("abcdefghijklmnopqrstuvwxyz", best.items())):
        path = folder / str(row["samplesPath"])
        if row["samplesPath"] and path.exists():
            img = imread(path)
            ax.imshow(img, **({"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}))
        else:
            ax.text(0.5, 0.5, f"samples missing:\n{row['samplesPath']}", ha="center",
                    va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        values = ", ".join(f"{measure_name(b)} = {row[b]:.3g}" for b in dict.fromkeys((*by, "Iprime")))
        ax.set_title(f"({label}) {model}\n{values}", fontsize="medium")
        ax.set_xlabel(config_caption(row), fontsize="small")
    style.suptitle(fig, f"Fig. 4: best runs by {', then '.join(measure_name(b) for b in by)} — {title}")
    return fig


def draw_curves(runs: pd.DataFrame, title: str, by: tuple[str, ...] = ("Iprime",)) -> Figure | None:
    """`by[0]` (I', or a dataset's primary measure) per scored epoch of each model's runs at the
    quartiles of its final value and its best run (None without a curve). Against G updates where the grid's budget
    counts them, so that families with several D steps per G update line up; else per epoch."""
    measure, name = by[0], measure_name(by[0])
    picked = quartile_runs(runs, by)
    if not picked:
        return None
    in_g = "budgetCounts" in runs and (runs["budgetCounts"] == "gSteps").all() and "gSteps" in runs
    cols = min(3, len(picked))
    rows = -(-len(picked) // cols)
    fig = style.new_figure((5 * cols, 4 * rows))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, sharey=True, squeeze=False).ravel()
    for ax in axes[len(picked):]:
        ax.set_visible(False)
    color = style.palette(runs["model"])
    for ax, (model, rows) in zip(axes, picked.items()):
        for (label, row), ls in zip(rows.items(), (":", "-", "--", "-.")):
            curve = np.asarray(row[f"{measure}PerEpoch"], dtype=float)
            x = np.arange(1, curve.size + 1) * (row["gSteps"] / curve.size if in_g else 1)
            ax.plot(x, curve, ls, color=color[model],
                    marker="o", ms=3,  # a marker: a one-epoch run's curve is a single point
                    label=f"{label} run (final {name} = {row[measure]:.3g})")
        ax.set_title(f"{model}: runs at the quartiles of final {name},\nand the best", fontsize="medium")
        ax.set_xlabel("G updates" if in_g else "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.legend(fontsize="small")
    style.suptitle(fig, f"{name} over training — {title}")
    return fig
