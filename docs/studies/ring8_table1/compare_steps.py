"""Is 2,000 G updates enough? The runs of steps8000.yaml (the same grid at 8,000) against the
study's own runs (results/ring8_table1/trials.parquet), paired by grid point and subgrid:

    python docs/studies/ring8_table1/compare_steps.py R/ring8_steps8000/trials.parquet

Per model and per optimizer subgrid (of a model with several): the share of configs capturing all 8 modes at each budget
(Wilson 95% interval), median modes captured, and the exact sign test of modes captured, longer
against shorter, over the points where they differ, Holm-corrected over every row's test. A
diverged or failed run counts as 0 modes.
"""
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

from harness.report.stats import holm, wilson_interval
from harness.report.verdict import markdown_table

POINT = ["model", "subgrid", "nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD"]
STUDY = Path(__file__).parent / "results" / "ring8_table1" / "trials.parquet"
MODES = 8


def runs(path: str | Path, budget: str) -> pd.DataFrame:
    r = pd.read_parquet(path)
    modes = r["modesCaptured"].where(r["status"] == "ok", 0).fillna(0)
    return r[POINT].assign(**{f"modes{budget}": modes, f"gSteps{budget}": r["gSteps"]})


def row(name: str, g: pd.DataFrame) -> dict:
    out = {"rows": name, "points": len(g)}
    for b in ("2000", "8000"):
        k = int((g[f"modes{b}"] >= MODES).sum())
        lo, hi = wilson_interval(k, len(g))
        out[f"all {MODES} modes at {b}"] = f"{k}/{len(g)} = {k / len(g):.0%} [{lo:.0%}, {hi:.0%}]"
        out[f"median modes {b}"] = g[f"modes{b}"].median()
    up, down = int((g["modes8000"] > g["modes2000"]).sum()), int((g["modes8000"] < g["modes2000"]).sum())
    out["more / fewer at 8000"] = f"{up} / {down}"
    out["p"] = binomtest(up, up + down).pvalue if up + down else float("nan")
    return out


def main(longer: str) -> None:
    both = runs(STUDY, "2000").merge(runs(longer, "8000"), on=POINT, validate="one_to_one")
    print(f"{len(both)} grid points run at both budgets; median G updates "
          f"{both['gSteps2000'].median():.0f} and {both['gSteps8000'].median():.0f}\n")
    rows = [row(m, g) for m, g in both.groupby("model", sort=False)]
    several = both.groupby("model")["subgrid"].nunique().loc[lambda n: n > 1].index
    rows += [row(f"{m} {s}", g) for (m, s), g in both.groupby(["model", "subgrid"], sort=False) if m in several]
    table = pd.DataFrame(rows)
    table["Holm p"] = holm(table["p"].to_numpy())
    print(markdown_table(table))


if __name__ == "__main__":
    main(sys.argv[1])
