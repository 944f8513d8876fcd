"""The counts a mixture study's README quotes, tallied from its committed results table (no training):

    python docs/studies/tally_mixture.py docs/studies/<grid>

Prints markdown: each family's modes-captured counts beside its share above chance and its share
still improving (the report's rule); each optimizer subgrid's share above chance; the shares by
dropoutD and by sizeD; each family's best run; the grid point of the anchor's network; and the
wall time of the packs, from the rows' own `wallTime`. Above chance is one mode captured or more:
no structureless reference captures one (the report's chance.csv, checked by
tests/test_mixture_studies.py). tests/test_mixture_studies.py checks that the README's family
table is this script's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from harness.report import floors
from harness.report.stats import wilson_interval

MEASURE = "modesCaptured"
ORDER = ["GAN", "EBGAN", "LSGAN", "WGAN-GP", "BEGAN"]
# The anchors' network (docs/studies/anchors/): plain GAN, 3 weight layers of 128 in G and D, no dropout, Adam 1e-3.
ANCHOR_POINT = {"family": "gan", "subgrid": "adam/adam/lr=0.001", "nLayerG": 3, "nLayerD": 3,
                "sizeG": 128, "sizeD": 128, "dropoutD": False}


def load(study: Path) -> pd.DataFrame:
    """The study's rows, with stillImproving recounted by today's rule, by the report's own code."""
    runs = pd.read_parquet(study / "results" / study.name / "trials.parquet")
    return runs.assign(stillImproving=floors.still_improving(runs))


def pct(k: int, n: int) -> str:
    return f"{k / n:.0%}"


def ci(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{k / n:.0%} [{lo:.0%}, {hi:.0%}]"


def family_table(runs: pd.DataFrame) -> list[str]:
    """Per family: configs, above chance with its Wilson interval, mode counts in bins, still improving."""
    n_modes = len(runs["classHist"].iloc[0])
    lines = [f"| family | configs | above chance [95% CI] | modes captured: 0 / 1 / 2-{n_modes - 1} / {n_modes} "
             "| still improving, of all / of those above chance |",
             "|---|---|---|---|---|"]
    for model in ORDER:
        rows = runs[runs["model"] == model]
        m, above = rows[MEASURE], rows[rows[MEASURE] > 0]
        bins = [(m == 0).sum(), (m == 1).sum(), ((m >= 2) & (m < n_modes)).sum(), (m == n_modes).sum()]
        of_above = (pct(above["stillImproving"].sum(), len(above)) if len(above) > 9
                    else f"{int(above['stillImproving'].sum())} of {len(above)}")
        lines.append(f"| {model} | {len(rows)} | {ci(len(above), len(rows))} | {' / '.join(map(str, bins))} "
                     f"| {pct(rows['stillImproving'].sum(), len(rows))} / {of_above} |")
    return lines


def share_table(runs: pd.DataFrame, by: str) -> list[str]:
    """Share above chance per family and value of `by` (descriptive: no test behind it)."""
    values = sorted(runs[by].unique(), key=str)
    lines = ["| family | " + " | ".join(f"{by} {v}" for v in values) + " |", "|---" * (len(values) + 1) + "|"]
    for model in ORDER:
        rows = runs[runs["model"] == model]
        cells = [pct((rows.loc[rows[by] == v, MEASURE] > 0).sum(), (rows[by] == v).sum()) for v in values]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def subgrid_table(runs: pd.DataFrame) -> list[str]:
    lines = ["| family | subgrid | above chance | median modes | best modes |", "|---|---|---|---|---|"]
    for model in ORDER:
        for subgrid, rows in runs[runs["model"] == model].groupby("subgrid"):
            lines.append(f"| {model} | {subgrid} | {pct((rows[MEASURE] > 0).sum(), len(rows))} "
                         f"| {rows[MEASURE].median():g} | {rows[MEASURE].max():g} |")
    return lines


def best_table(runs: pd.DataFrame) -> list[str]:
    """Each family's best run: most modes, then the highest high-quality share."""
    lines = ["| family | modes captured | high quality | subgrid | G, D layers x width | dropoutD |",
             "|---|---|---|---|---|---|"]
    for model in ORDER:
        r = runs[runs["model"] == model].sort_values([MEASURE, "highQualityFrac"], ascending=False).iloc[0]
        lines.append(f"| {model} | {r[MEASURE]:g} | {r['highQualityFrac']:.1%} | {r['subgrid']} "
                     f"| {r['nLayerG']}x{r['sizeG']}, {r['nLayerD']}x{r['sizeD']} | {r['dropoutD']} |")
    return lines


def collapse_lines(runs: pd.DataFrame) -> list[str]:
    gan = runs[runs["model"] == "GAN"]
    one = gan[gan[MEASURE] == 1]
    return [f"- GAN configs above chance: {(gan[MEASURE] > 0).sum()}; with exactly 1 mode: {len(one)}; "
            f"of those, 90% or more of the samples of high quality: {(one['highQualityFrac'] >= 0.9).sum()}"]


def anchor_lines(runs: pd.DataFrame) -> list[str]:
    mask = pd.Series(True, index=runs.index)
    for k, v in ANCHOR_POINT.items():
        mask &= runs[k] == v
    r = runs[mask]
    if len(r) != 1:
        return ["- the anchor's grid point: not in this study"]
    r = r.iloc[0]
    return [f"- the anchor's grid point (GAN adam/adam lr 1e-3, 3 x 128 in G and D, no dropout): "
            f"{r[MEASURE]:g} modes at {r['highQualityFrac']:.1%} high quality, still improving: {r['stillImproving']}"]


def wall_table(runs: pd.DataFrame) -> list[str]:
    """Packs are the rows that finished together (model, finishedAt, wallTime): their wallTime is the pack's."""
    packs = runs.groupby(["model", "finishedAt", "wallTime"]).size().rename("configs").reset_index()
    lines = ["| family | packs | configs | pack wall time, median | slot-hours |", "|---|---|---|---|---|"]
    for model in ORDER:
        p = packs[packs["model"] == model]
        lines.append(f"| {model} | {len(p)} | {p['configs'].sum()} | {p['wallTime'].median():.0f} s "
                     f"| {p['wallTime'].sum() / 3600:.1f} |")
    lines.append(f"| all | {len(packs)} | {packs['configs'].sum()} | | {packs['wallTime'].sum() / 3600:.1f} |")
    resumed = runs["resumedAtEpoch"].notna().sum() if "resumedAtEpoch" in runs else 0
    lines.append("")
    lines.append(f"- rows of packs resumed from a checkpoint: {resumed}; first row finished "
                 f"{runs['finishedAt'].min()}, last {runs['finishedAt'].max()}")
    return lines


SECTIONS = {
    "Families": family_table,
    "Optimizer subgrids": subgrid_table,
    "By dropoutD": lambda r: share_table(r, "dropoutD"),
    "By sizeD": lambda r: share_table(r, "sizeD"),
    "Best runs": best_table,
    "Collapse": collapse_lines,
    "Anchor": anchor_lines,
    "Wall time": wall_table,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", type=Path, help="a study's folder, docs/studies/<grid>")
    args = p.parse_args(argv)
    if not (args.study / "results" / args.study.name / "trials.parquet").is_file():
        sys.exit(f"tally_mixture: {args.study}: no results/{args.study.name}/trials.parquet; "
                 "fix: pass a committed study's folder, e.g. docs/studies/ring8_table1")
    runs = load(args.study)
    for title, section in SECTIONS.items():
        print(f"## {title}\n")
        print("\n".join(section(runs)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
