#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results table (no training):
#   bash docs/studies/ring8_table1/render.sh
# The results come from the sweep (hours on 2 cores, see docs/benchmarks.md):
#   python -m harness.sweep grids/ring8_table1.yaml --results RESULTS
#   python docs/studies/commit_results.py RESULTS/ring8_table1 docs/studies/ring8_table1/results
# then this script. The study's checks: tests/test_mixture_studies.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$here/results" --out "$out/study"
# The report's text and tables, and the figures the study's README cites (the page has them all).
for f in summary.md summary.csv measures.csv summary_Iprime.csv summary_highQualityFrac.csv \
         chance.csv convergence.csv importance_modesCaptured.csv \
         fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png curves.png \
         robustness_modesCaptured.png ecdf_modesCaptured.png; do
  cp "$out/study/$f" "$here/$f"
done
python "$here/../../screenshot.py" "$out/study" "$here/page.png"
