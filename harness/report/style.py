"""What the report's figures share: one colour per model in every figure (the family
registry's), line styles for subgrids, a headless figure, its wrapped title, the real-data
line, and writing a figure as PNG (and PDF) atomically."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # a report is drawn headless, also where a display exists
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness import families
from harness.atomic import write_atomic

FALLBACK_COLOR = "#949494"     # a model no registered family names (results of an unloaded plugin)


def palette(extra: Any = ()) -> dict[str, Any]:
    """{model label: colour}: each family's declared colours (harness/families), the same in every
    figure; labels in `extra` that no registered family names get a neutral grey."""
    return {**{m: FALLBACK_COLOR for m in extra}, **families.colors()}


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


def anchor_line(ax, anchor: float | None, vertical: bool = True) -> None:
    """The real MNIST test set's I' as a dashed line (none when the anchor is missing)."""
    if anchor is not None:
        (ax.axvline if vertical else ax.axhline)(anchor, color="k", ls="--", lw=1.2,
                                                 label=f"real MNIST test set (I' = {anchor:.2f})")


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
