#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results table (no training):
#   bash docs/studies/mnist_table1_corner/render.sh
# The results come from the sweep (hours on 2 cores; the measured wall time and the projection
# are in docs/benchmarks.md; the same command resumes):
#   python -m harness.sweep grids/mnist_table1_corner.yaml --results RESULTS --data-dir DIR
# then copy RESULTS/mnist_table1_corner/{grid.json,grid.yaml,trials.parquet} into
# results/mnist_table1_corner/ (and the samples/ pictures of Fig. 4's best runs) and run this.
# mini/trials.parquet: grids/mnist_table1_mini.yaml's runs at this study's 104 points
# (sizeG 400, sizeD 128), for compare_mini.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$here/results" --out "$out/study" ${HARNESS_DATA_DIR:+--data-dir "$HARNESS_DATA_DIR"}
for f in summary.md summary.csv fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png curves.png; do
  cp "$out/study/$f" "$here/$f"
done
python "$here/../../screenshot.py" "$out/study" "$here/page.png"
python "$here/compare_mini.py" "$here/mini/trials.parquet" > "$here/compare_mini.md"
