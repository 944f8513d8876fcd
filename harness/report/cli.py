"""The grid study's report: Fig. 2, Fig. 3, Fig. 4, training curves, a summary table, one page,
and what the paper's histograms cannot show, from the command line.

    python -m harness.report RESULTS_DIR [--out DIR] [--seed-agg mean|median|max] [--grid NAME]
                             [--data-dir MNIST] [--classifier WEIGHTS]
                             [--allow-mixed-classifiers]

RESULTS_DIR is either one grid's results folder (it holds `trials.parquet`, one row per
(config, seed), plus `grid.json` and `grid.yaml` from the sweep) or a folder of such folders.
Each grid's report goes to `<grid folder>/report/` (or `--out`; `--out/<grid>/` when several).
Input the user can fix (a ReportError) exits 2 with one line on stderr naming the fix.

The first line of this docstring is `--help`'s description.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import report
from harness.report.anchor import check_anchor_options
from harness.report.page import write_report
from harness.report.tables import (
    SEED_AGGS,
    ReportError,
    find_grid_folders,
)


def main(argv: list[str] | None = None) -> int:
    """Every grid's report under RESULTS_DIR; returns the exit status (0, or 2 on a ReportError)."""
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", type=Path, help="RESULTS or RESULTS/<grid name>")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default <grid folder>/report; <out>/<grid> if several)")
    parser.add_argument("--seed-agg", choices=SEED_AGGS, default="mean",
                        help="how a config's I' is taken over its seeds (default mean)")
    parser.add_argument("--grid", default=None, help="only this grid (folder or grid.json name)")
    parser.add_argument("--allow-mixed-classifiers", action="store_true",
                        help="draw runs scored by different classifier weights (classifierSha256) "
                             "together instead of refusing")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST folder for the real-data anchor of I' (default: $HARNESS_DATA_DIR, "
                             "else the harness's cache; never downloads; without MNIST the line is omitted)")
    parser.add_argument("--classifier", default=None,
                        help="ConvNet weights the runs were scored with (default: the committed ones)")
    args = parser.parse_args(argv)
    try:
        check_anchor_options(args.data_dir, args.classifier)
        folders = find_grid_folders(args.results_dir, args.grid)
        for folder in folders:
            if args.out is None:
                out = folder / "report"
            else:
                out = args.out / folder.name if len(folders) > 1 else args.out
            write_report(folder, out, args.seed_agg, args.data_dir, args.classifier, args.allow_mixed_classifiers)
            print(f"report: {folder.name} -> {out / 'index.html'}")
    except ReportError as e:
        return report(e)
    return 0
