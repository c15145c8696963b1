#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the demo (fake native copies of every
# implemented source -> convert -> validate -> summary) into ./demo_out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate 2>/dev/null || true
unihema-data demo --out "${1:-demo_out}"
