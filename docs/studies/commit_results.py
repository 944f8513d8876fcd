"""Copy a sweep's results into a study's committed folder: its table, its grid files, and the
samples of the runs the report's Fig. 4 shows (not every run's picture: those stay in the sweep's
folder).

    python docs/studies/commit_results.py RESULTS/<grid> docs/studies/<study>/results [--name NAME]

The table is read as the report reads it (trials.parquet and the parts not yet merged), so rows of
a sweep still running are copied too. --name gives the grid the study's name where the sweep ran
it under another (its grid file renamed since): the rows' `grid` column and grid.json follow, and
the configs stay the same ones (a config's id does not depend on the grid's name), so the sweep
of the renamed grid file resumes from the copy. Then render the study's report (its render.sh).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from harness.report import analysis
from harness.report.tables import best_runs
from harness.results import ResultsTable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="a sweep's grid folder, RESULTS/<grid>")
    p.add_argument("dest", type=Path, help="the study's results folder; the grid's folder goes inside it")
    p.add_argument("--name", help="the grid's name in the study (default: the sweep's)")
    args = p.parse_args(argv)
    if not (args.source / "grid.json").is_file():
        sys.exit(f"commit_results: {args.source}: no grid.json there; fix: pass a sweep's RESULTS/<grid> folder")
    grid = json.loads((args.source / "grid.json").read_text())
    name = args.name or grid["name"]
    df = ResultsTable(args.source).df
    if df.empty:
        sys.exit(f"commit_results: {args.source}: no rows yet; fix: let the sweep finish a pack first")
    out = args.dest / name
    if (out / "trials.parquet").is_file():    # the copy replaces the committed one: it must hold all of its rows
        lost = set(pd.read_parquet(out / "trials.parquet", columns=["configId"])["configId"]) - set(df["configId"])
        if lost:
            sys.exit(f"commit_results: {out}: {len(lost)} committed configs are not in {args.source}; "
                     "fix: resume the sweep from the committed rows (copy them into its results folder) first")
    if out.exists():
        shutil.rmtree(out)
    (out / "samples").mkdir(parents=True)
    df = df.assign(grid=name)
    df.to_parquet(out / "trials.parquet", index=False)
    (out / "grid.json").write_text(json.dumps({**grid, "name": name}, indent=2) + "\n")
    yaml = (args.source / "grid.yaml").read_text()
    (out / "grid.yaml").write_text(yaml.replace(f"name: {grid['name']}\n", f"name: {name}\n", 1))
    best = best_runs(df, (*analysis.report_metrics(df), "Iprime"))
    for row in best.values():
        if row["samplesPath"] and (args.source / row["samplesPath"]).is_file():
            shutil.copy(args.source / row["samplesPath"], out / row["samplesPath"])
    print(f"commit_results: {len(df)} rows of {grid['configs']} configs and {len(best)} best runs' samples -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
