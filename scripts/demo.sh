#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the demo: fake native copies of every
# implemented source -> convert -> text sets -> validate -> summary in ./demo_out, then a few
# CPU training steps of the tiny Uni-Hema model on that corpus (demo_out/runs/tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate 2>/dev/null || true
out="${1:-demo_out}"
unihema-data demo --out "$out"
echo "training the tiny Uni-Hema model for 5 steps on $out/dataset (all six tasks, CPU):"
unihema-train train --recipe tiny --data "$out/dataset" --max-steps 5 --output "$out/runs/tiny"
