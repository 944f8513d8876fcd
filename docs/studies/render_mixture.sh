#!/usr/bin/env bash
# Re-renders a Table 1-shaped 2D-mixture study's committed report from its committed results
# table (no training), into the study's folder:
#   bash docs/studies/render_mixture.sh docs/studies/<grid>      (each study's render.sh calls it)
# The results come from the sweep (hours on 2 cores, see docs/benchmarks.md):
#   python -m harness.sweep grids/<grid>.yaml --results RESULTS
#   python docs/studies/commit_results.py RESULTS/<grid> docs/studies/<grid>/results
# The studies' checks: tests/test_mixture_studies.py.
set -euo pipefail
study="$(cd "${1:?usage: bash docs/studies/render_mixture.sh docs/studies/<grid>}" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
python -m harness.report "$study/results" --out "$out/study"
# The report's text and tables, and the figures the study's README cites (the page has them all).
for f in summary.md summary.csv measures.csv summary_Iprime.csv summary_highQualityFrac.csv \
         chance.csv convergence.csv importance_modesCaptured.csv \
         fig2_histograms.png fig3_optimizer_subgrids.png fig4_best_samples.png curves.png \
         robustness_modesCaptured.png ecdf_modesCaptured.png; do
  cp "$out/study/$f" "$study/$f"
done
python "$here/../screenshot.py" "$out/study" "$study/page.png"
