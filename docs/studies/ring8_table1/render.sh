#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results table (no training):
#   bash docs/studies/ring8_table1/render.sh
# The results themselves come from the sweep (about 18 min on 2 cores, see docs/benchmarks.md):
#   python -m harness.sweep grids/ring8_table1.yaml --results RESULTS
# then copy RESULTS/ring8_table1/{grid.json,grid.yaml,trials.parquet} into results/ring8_table1/
# (and the samples/ pictures of Fig. 4's best runs) and run this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$here/results" --out "$out"
# The report's text and tables, and the figures the study's README cites (the page has them all).
for f in summary.md summary.csv measures.csv summary_modesCaptured.csv summary_highQualityFrac.csv \
         importance.csv importance_modesCaptured.csv \
         fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png \
         robustness_modesCaptured.png ecdf_modesCaptured.png; do
  cp "$out/$f" "$here/$f"
done
sed -i "s#$here/##g; s#$out#report#g" "$here/summary.md"
python "$here/../../screenshot.py" "$out" "$here/page.png"
