"""``unihema-data new-adapter``: every family's skeleton imports, registers, and (once its labels
are mapped) converts its own fake through the generic pipeline, in a copy of the repository."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unihema_data.cli import app
from unihema_data.scaffold import FAMILIES, ScaffoldError, new_adapter, set_catalog_status

REPO = Path(__file__).resolve().parents[1]


def _ids_without_adapter() -> list[str]:
    """Catalog ids that have no adapter yet (adapters land branch by branch: never hard-code them)."""
    from unihema_data.adapters import adapter_ids
    from unihema_data.catalog import load_catalog

    done = set(adapter_ids())
    return [e.id for e in load_catalog() if e.adapter != "implemented" and e.id not in done and e.access != "derived"]


#: a catalog id without an adapter, per family (only the id matters here): real catalog ids while
#: enough are left, else test-only entries added to the copied catalog (``repo_copy``)
_FREE = _ids_without_adapter()
IDS = {f: (_FREE[i] if i < len(_FREE) else f"scaffold_test_{f}") for i, f in enumerate(sorted(FAMILIES))}
_EXTRA_ENTRY = """
  - id: {sid}
    name: Scaffold test source ({sid})
    citation: Test entry, not a dataset.
    homepage: https://example.org
    license: MIT
    redistributable: true
    access: http
    tasks: [detection]
    disease: [normal]
    granularity: field_of_view
    native_format: test
    in_paper: false
"""
CANON = {"class_a": "lymphocyte", "class_b": "neutrophil", "cell": "lymphocyte"}


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "unihema_data", root / "unihema_data", ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO / "catalog.yaml").is_file():
        shutil.copy(REPO / "catalog.yaml", root / "catalog.yaml")
    cat = root / "unihema_data" / "catalog.yaml"
    extra = [sid for sid in IDS.values() if sid.startswith("scaffold_test_")]
    if extra:
        cat.write_text(cat.read_text().rstrip("\n") + "\n" + "".join(_EXTRA_ENTRY.format(sid=s) for s in extra))
    return root


def test_all_families_scaffold_and_convert(repo_copy, tmp_path):
    for family, sid in IDS.items():
        res = CliRunner().invoke(app, ["new-adapter", sid, "--family", family, "--root", str(repo_copy)])
        assert res.exit_code == 0, res.output
        assert (repo_copy / "unihema_data" / "adapters" / f"{sid}.py").is_file()
    # map the fakes' placeholder labels (what the developer does next)
    tax_path = repo_copy / "unihema_data" / "taxonomy.yaml"
    tax = yaml.safe_load(tax_path.read_text())
    for family, sid in IDS.items():
        table = tax["sources"].setdefault(sid, {})
        table["labels"] = {**(table.get("labels") or {}), **CANON}
        if family == "image_mask":
            table["mask_classes"] = {"background": "background", "nucleus": "nucleus"}
    tax_path.write_text(yaml.safe_dump(tax, allow_unicode=True))
    script = f"""
import sys
from pathlib import Path
from unihema_data.adapters import adapter_ids, get_adapter
from unihema_data.catalog import load_catalog
from unihema_data.convert import ConvertOptions, convert
ids = {sorted(IDS.values())!r}
assert set(ids) <= set(adapter_ids()), adapter_ids()
assert all(load_catalog().get(i).adapter == "implemented" for i in ids)
raw, out = Path(sys.argv[1]) / "raw", Path(sys.argv[1]) / "out"
for sid in ids:
    truth = get_adapter(sid).fake(raw / sid, seed=1)
    rep = convert([sid], raw, out, ConvertOptions(num_proc=1, progress=False))[0]
    assert rep.total == truth.num_images, (sid, rep.total, truth.num_images)
print("ok", len(ids))
"""
    env = {**os.environ, "PYTHONPATH": str(repo_copy)}
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == f"ok {len(IDS)}"


def test_scaffold_refuses_unknown_id_existing_module_and_family(tmp_path, repo_copy):
    with pytest.raises(ScaffoldError, match="not in"):
        new_adapter("no_such_source", "voc", repo_copy)
    with pytest.raises(ScaffoldError, match="already exists"):
        new_adapter("pbc", "class_folders", repo_copy)
    with pytest.raises(ScaffoldError, match="unknown family"):
        new_adapter(IDS["class_folders"], "hdf5", repo_copy)
    res = CliRunner().invoke(app, ["new-adapter", IDS["class_folders"], "--family", "nope", "--root", str(repo_copy)])
    assert res.exit_code == 2 and "unknown family" in res.output


def test_set_catalog_status_keeps_format():
    text = "datasets:\n  - id: a\n    name: A\n    adapter: planned\n    in_paper: true\n\n  - id: b\n    name: B\n"
    out = set_catalog_status(set_catalog_status(text, "a"), "b")
    data = yaml.safe_load(out)["datasets"]
    assert [d["adapter"] for d in data] == ["implemented", "implemented"]
    assert out.count("\n") == text.count("\n") + 1 and "in_paper: true" in out
    assert sorted(FAMILIES) == sorted(IDS)
