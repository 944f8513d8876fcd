#!/usr/bin/env bash
# Re-renders this study's committed report from its committed results table (no training):
#   bash docs/studies/grid25_table1/render.sh
# (docs/studies/render_mixture.sh says where the results come from.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../render_mixture.sh" "$here"
