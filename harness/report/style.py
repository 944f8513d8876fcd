"""What the report's figures share: one colour per model in every figure (the family
registry's, kept apart for colour-blind readers), line styles for subgrids, a headless figure,
its wrapped title, the real-data anchor, and writing a figure as PNG (and PDF) atomically."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # a report is drawn headless, also where a display exists
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from harness import families
from harness.atomic import write_atomic

FALLBACK_COLOR = "#949494"     # a model no registered family names (results of an unloaded plugin)
# Colour-blind-safe qualitative colours (Okabe & Ito 2008, then Tol's bright for more): where a
# family's declared colour is too close to one already taken, the first of these that is not.
SAFE_COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#000000", "#56B4E9",
               "#F0E442", "#4477AA", "#66CCEE", "#228833", "#CCBB44", "#EE6677", "#AA3377")
# Two colours are told apart when their CIELAB distance (CIE76) is at least this, for normal
# vision and under each simulated dichromacy (Machado et al. 2009, severity 1).
MIN_DELTA_E = 15.0
ANCHOR_COLOR = "0.35"          # the real-data anchor: dark grey, dashed (no family is grey)
_DICHROMACY = {  # linear-RGB matrices of Machado, Oliveira & Fernandes 2009, severity 1.0
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def _lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear_rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def color_views(color: Any) -> dict[str, np.ndarray]:
    """A colour in CIELAB as seen with normal vision and with each dichromacy."""
    c = np.asarray(to_rgb(color))
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    views = {"normal": _lab(linear)}
    for name, m in _DICHROMACY.items():
        views[name] = _lab(np.clip(np.array(m) @ linear, 0.0, 1.0))
    return views


def color_distance(a: Any, b: Any) -> float:
    """The smallest CIELAB distance between two colours over normal vision and the dichromacies."""
    va, vb = color_views(a), color_views(b)
    return float(min(np.linalg.norm(va[k] - vb[k]) for k in va))


def distinct_colors(declared: dict[str, Any]) -> dict[str, str]:
    """{label: colour}, labels in their order: a label keeps its declared colour where that is at
    least MIN_DELTA_E (color_distance) from every declared colour kept before it; the others
    then take, in order, the first of SAFE_COLORS at that distance from every colour taken (the
    first unused one if none is)."""
    kept: dict[str, str] = {}

    def free(c: Any) -> bool:
        return all(color_distance(c, t) >= MIN_DELTA_E for t in kept.values())

    for label, color in declared.items():
        if free(color):
            kept[label] = color  # as declared: palette() is then the registry's own colours
    for label in declared:
        if label not in kept:
            taken = {to_hex(c) for c in kept.values()}
            unused = [c for c in SAFE_COLORS if to_hex(c) not in taken]
            kept[label] = next((c for c in unused if free(c)), unused[0] if unused else FALLBACK_COLOR)
    return {label: kept[label] for label in declared}


def palette(extra: Any = ()) -> dict[str, Any]:
    """{model label: colour}: each family's declared colour (harness/families) in registry order,
    where a colour-blind reader can tell it from the ones before (distinct_colors), the same in
    every figure; labels in `extra` that no registered family names get a neutral grey."""
    return {**{m: FALLBACK_COLOR for m in extra}, **distinct_colors(families.colors())}


def colors(labels) -> dict[str, Any]:
    """palette() for the known models, further colours for any other label."""
    out = palette()
    extra = [m for m in labels if m not in out]
    out.update(zip(extra, sns.color_palette("dark", len(extra) + len(out))[len(out):]))
    return out


def subgrid_styles(labels: list[str]) -> dict[str, tuple[Any, str]]:
    """{subgrid label: (colour, line style)}: subgrids of one family told apart on one axis."""
    pal = sns.color_palette("husl", max(len(labels), 1))
    return {s: (pal[i], ("-", "--", ":", "-.")[i % 4]) for i, s in enumerate(labels)}


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure with constrained layout on the Agg canvas, outside pyplot (nothing to close)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def suptitle(fig: Figure, text: str) -> None:
    """The figure's title, wrapped to the figure's width (a one-family figure is narrow)."""
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


def chance_line(ax, floor: float | None) -> None:
    """The highest score of the dataset's structureless references (harness.report.floors), as a
    dotted vertical line on an axis whose limits are set, where it lies within them."""
    lo, hi = sorted(ax.get_xlim())
    if floor is not None and lo <= floor <= hi:
        ax.axvline(floor, color=ANCHOR_COLOR, ls=":", lw=1.2, label=f"highest chance reference ({floor:.3g})")


def anchor_line(ax, anchor: float | None, vertical: bool = True, at: float = 0.5) -> None:
    """The real MNIST test set's I' on an axis whose limits are set (call it last): a dashed
    line where it lies within them, else a labelled arrow at the edge it lies beyond, `at` that
    fraction along the edge, so that the anchor never stretches the axis (none when the anchor
    is missing)."""
    if anchor is None:
        return
    label = f"real MNIST test set (I' = {anchor:.2f})"
    lo, hi = sorted(ax.get_xlim() if vertical else ax.get_ylim())
    if lo <= anchor <= hi:
        (ax.axvline if vertical else ax.axhline)(anchor, color=ANCHOR_COLOR, ls="--", lw=1.2,
                                                 label=label)
        return
    above = anchor > hi
    edge = 1.0 if above else 0.0
    # vertical: the arrow points right (or left) at mid-height; else up (or down) at the right
    xy, offset = ((edge, at), (-40 if above else 40, 0)) if vertical else ((at, edge), (0, -28 if above else 28))
    ax.annotate(f"{label}\n{'beyond the axis' if above else 'below the axis'}", xy=xy,
                xycoords="axes fraction", xytext=offset, textcoords="offset points",
                ha=("right" if above else "left") if vertical else
                ("left" if at < 0.3 else "right" if at > 0.7 else "center"),
                va="center" if vertical else ("top" if above else "bottom"), fontsize="small",
                color=ANCHOR_COLOR, arrowprops={"arrowstyle": "->", "color": ANCHOR_COLOR},
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1})


def render(fig: Figure, fmt: str) -> bytes:
    """The figure's bytes in `fmt` (png, pdf) at the report's resolution."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    return buf.getvalue()


def write_figure(fig: Figure | None, out: Path, stem: str, written: list[Path], pdf: bool = False) -> bytes | None:
    """`stem`.png (and .pdf) of a figure into `out`, atomically, their paths added to `written`;
    returns the PNG's bytes (None, and nothing written, for no figure)."""
    if fig is None:
        return None
    import matplotlib.pyplot as plt
    data = render(fig, "png")
    write_atomic(out / f"{stem}.png", data)
    written.append(out / f"{stem}.png")
    if pdf:
        write_atomic(out / f"{stem}.pdf", render(fig, "pdf"))
        written.append(out / f"{stem}.pdf")
    plt.close(fig)  # a no-op for figures not made by pyplot
    return data
