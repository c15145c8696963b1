#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the test suite (CPU only, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate 2>/dev/null || true
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 FIFTYONE_DO_NOT_TRACK=true
exec python -m pytest -q -n "${PYTEST_WORKERS:-2}" "$@"
