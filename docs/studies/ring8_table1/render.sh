#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results tables (no training):
#   bash docs/studies/ring8_table1/render.sh
# The results themselves come from the sweep (about 18 min on 2 cores, see docs/benchmarks.md):
#   python -m harness.sweep grids/ring8_table1.yaml --results RESULTS
# then copy RESULTS/ring8_table1/{grid.json,grid.yaml,trials.parquet} into results/ring8_table1/
# (and the samples/ pictures of Fig. 4's best runs) and run this script. The same for the study
# at 8,000 G updates (steps8000.yaml, into steps8000/results/ring8_steps8000/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$here/results" --out "$out/study"
# The report's text and tables, and the figures the study's README cites (the page has them all).
for f in summary.md summary.csv measures.csv summary_modesCaptured.csv summary_highQualityFrac.csv \
         importance.csv importance_modesCaptured.csv \
         fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png \
         robustness_modesCaptured.png ecdf_modesCaptured.png; do
  cp "$out/study/$f" "$here/$f"
done
python "$here/../../screenshot.py" "$out/study" "$here/page.png"
# The budget check: the same grid at 8,000 G updates, its verdict and its runs paired with the study's.
steps="$here/steps8000"
python -m harness.report "$steps/results" --out "$out/steps"
for f in summary.md measures.csv summary_modesCaptured.csv; do
  cp "$out/steps/$f" "$steps/$f"
done
python "$here/compare_steps.py" "$steps/results/ring8_steps8000/trials.parquet" > "$steps/compare.md"
