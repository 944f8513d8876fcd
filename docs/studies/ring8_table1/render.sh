#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results tables (no training):
#   bash docs/studies/ring8_table1/render.sh
# The results themselves come from the sweep (about 18 min on 2 cores, see docs/benchmarks.md):
#   python -m harness.sweep grids/ring8_table1.yaml --results RESULTS
# then copy RESULTS/ring8_table1/{grid.json,grid.yaml,trials.parquet} into results/ring8_table1/
# (and the samples/ pictures of Fig. 4's best runs) and run this script.
# steps8000/ (the same grid at 8,000 G updates) is a record of 2026-12-02, scored by the rule of
# that day (a mode counted with one high-quality sample): it is not re-rendered, since its table
# has no chance-proof mode count to render (steps8000/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$here/results" --out "$out/study"
# The report's text and tables, and the figures the study's README cites (the page has them all).
for f in summary.md summary.csv measures.csv summary_Iprime.csv summary_highQualityFrac.csv \
         chance.csv convergence.csv importance.csv importance_modesCaptured.csv \
         fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png \
         robustness_modesCaptured.png ecdf_modesCaptured.png; do
  cp "$out/study/$f" "$here/$f"
done
python "$here/../../screenshot.py" "$out/study" "$here/page.png"
