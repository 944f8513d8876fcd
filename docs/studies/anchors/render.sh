#!/usr/bin/env bash
# The anchors' side-by-side table and figure from their committed results tables (no training):
#   bash docs/studies/anchors/render.sh [RESULTS]
# RESULTS (default: results/ beside this script) holds one folder per anchor grid, as the sweep
# writes them (python -m harness.sweep grids/ring8_anchor.yaml --results RESULTS, ...).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="${1:-$here/results}"
tables=()
for grid in ring8_anchor ring8_anchor_100k ring8_anchor_100k_lr1e-4 ring8_anchor_batch500 grid25_anchor grid25_anchor_100k grid25_anchor_batch500; do
  if [[ -f "$results/$grid/trials.parquet" ]]; then
    tables+=("$results/$grid/trials.parquet")
  fi
done
python "$here/compare_published.py" "${tables[@]}" --plot "$here/anchors.png" > "$here/compare_published.md"
# each anchor's own report: its summary (what it stands on: chance, convergence) and best samples
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for table in "${tables[@]}"; do
  grid="$(basename "$(dirname "$table")")"
  mkdir -p "$out/$grid/in" && cp -r "$(dirname "$table")" "$out/$grid/in/"
  python -m harness.report "$out/$grid/in" --out "$out/$grid/report" > /dev/null
  cp "$out/$grid/report/summary.md" "$here/summary_$grid.md"
  cp "$out/$grid/report/fig4_best_samples.png" "$here/fig4_$grid.png"
done
cat "$here/compare_published.md"
