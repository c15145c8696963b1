#!/usr/bin/env bash
# Build the wheel and check that a NON-editable install works from outside the repository:
#   1. a fresh virtualenv with only the data toolkit (no torch, transformers, accelerate, fiftyone):
#      `unihema-data --version`, `list`, `info BCCD`, a fake -> convert -> validate -> stats round;
#   2. the same venv plus torch==2.13.0 (CPU) and the `model` extra: `unihema-train --help` and the
#      packaged recipe resolved by name.
# Needs python3 with venv and access to PyPI (or a pip cache). Run by .ci/run after the test suite.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/unihema-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
PY=${PYTHON:-python3}
if [ -x "$repo/.venv/bin/python" ]; then PY="$repo/.venv/bin/python"; fi

echo "== building the wheel"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" "$repo"
whl="$(ls "$work"/dist/unihema-*.whl)"
"$PY" - "$whl" <<'PYEOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["unihema_data/catalog.yaml", "unihema_data/taxonomy.yaml", "unihema_model/recipes/tiny.yaml"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks package data: {missing}"
print("wheel has", ", ".join(need))
PYEOF

echo "== data toolkit only (no torch) in a fresh venv"
"${PYTHON:-python3}" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "$whl"
for m in torch transformers accelerate fiftyone; do
  if python -c "import $m" 2>/dev/null; then echo "FAIL: $m was installed with the data toolkit"; exit 1; fi
done
cd "$work"   # outside the repository: nothing may be read from the checkout
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1
unihema-data --version
unihema-data list | tail -n 3
unihema-data info BCCD --json | python -c "import json,sys; assert json.load(sys.stdin)['id'] == 'bccd'"
unihema-data fake bccd --out raw/bccd
unihema-data convert bccd --raw-dir raw --out corpus --num-proc 1
unihema-data validate corpus
unihema-data stats corpus --json | python -c "import json,sys; s=json.load(sys.stdin); assert sum(s['images']['bccd'].values()) == 8, s"
python -c "import unihema_data, sys; assert 'site-packages' in unihema_data.__file__, unihema_data.__file__"
if python -c "import unihema_model" 2>err.txt; then echo "FAIL: unihema_model imported without torch"; exit 1; fi
echo "without the model extra, importing unihema_model says: $(tail -n 1 err.txt)"

echo "== plus torch==2.13.0 and the model extra"
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet "${whl}[model]"
unihema-train --help > train-help.txt   # not piped into head: SIGPIPE would fail the step under pipefail
head -n 3 train-help.txt
unihema-predict --help > predict-help.txt
python -c "from unihema_model.recipe_files import resolve_recipe; p = resolve_recipe('tiny'); assert 'site-packages' in str(p), p; print('recipe tiny ->', p)"
echo "wheel check OK"
