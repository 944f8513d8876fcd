"""The cost model against the committed studies' packs: each pack's measured wall time (its rows'
`wallTime`) over what harness/costmodel.py predicts for it (harness/rates.json), by family and
shape. The sweep's projection and ETA are the cost model's; where it misjudges one kind of pack
against another, the ETA drifts as the sweep moves from one kind to the next.

    PYTHONPATH=. python docs/pack_times.py [docs/studies/<study> ...]   (default: every committed study)

The wall times were measured with 2 trials at a time and, for much of the ring study, tests
beside them (docs/benchmarks.md): a ratio above 1 is partly that load. What tells is how the ratio
varies between families and shapes of the same study.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from harness.config import total_steps
from harness.costmodel import Rates
from harness.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ["mnist_table1_corner", "ring8_table1", "grid25_table1"]


def packs(study: Path) -> pd.DataFrame:
    """One row per pack of the study: its family and shape, measured and predicted seconds."""
    name = study.name
    rows = pd.read_parquet(study / "results" / name / "trials.parquet")
    configs = {c.config_id: c for c in load_grid(ROOT / "grids" / f"{name}.yaml").configs}
    rates = Rates.load("cpu")
    out = []
    for (model, _, wall), p in rows.groupby(["model", "finishedAt", "wallTime"]):   # a pack's rows share these
        pack = [configs[i] for i in p["configId"]]
        c = pack[0]
        resumed = p["resumedAtEpoch"].notna().any() if "resumedAtEpoch" in p else False
        out.append({"study": name, "model": model, "K": len(pack), "D": f"{c.nLayerD}x{c.sizeD}",
                    "G": f"{c.nLayerG}x{c.sizeG}", "steps": total_steps(c), "resumed": resumed,
                    "wall_s": wall, "model_s": rates.pack_seconds(pack)})
    out = pd.DataFrame(out)
    out["ms_per_step"] = 1e3 * out["wall_s"] / out["steps"]
    out["measured_over_model"] = out["wall_s"] / out["model_s"]
    return out


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [ROOT / "docs" / "studies" / s for s in STUDIES]
    missing = [f for f in folders if not (f / "results" / f.name / "trials.parquet").is_file()]
    if missing:
        sys.exit(f"pack_times: {missing[0]}: no results/{missing[0].name}/trials.parquet; "
                 "fix: pass a committed study's folder, e.g. docs/studies/ring8_table1")
    table = pd.concat([packs(f) for f in folders])
    fresh = table[~table["resumed"]]          # a resumed pack's wallTime is since its resume
    pd.set_option("display.width", 200)
    print(f"Rates: {Rates.load('cpu').measured}\n")
    print("measured / model, per pack (packs not resumed), by study and family:")
    print(fresh.groupby(["study", "model"])["measured_over_model"].describe()[["count", "min", "50%", "max"]]
          .round(2).to_string())
    print("\nby study, family and D's shape (median ms per step, median measured / model):")
    print(fresh.groupby(["study", "model", "D"]).agg(packs=("K", "size"), K=("K", "first"),
                                                     ms_per_step=("ms_per_step", "median"),
                                                     ratio=("measured_over_model", "median")).round(2).to_string())
    print("\nwhole studies, sum of measured / sum of model (every pack):")
    print((table.groupby("study")["wall_s"].sum() / table.groupby("study")["model_s"].sum()).round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
