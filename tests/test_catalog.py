"""catalog.yaml: loads and validates, covers the implemented adapters and real samples, and
docs/datasets.md is in sync; broken catalogs fail with the entry id and field in the message."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from unihema_data.catalog import CatalogError, load_catalog, load_catalog_file
from unihema_data.catalog_docs import DOCS_PATH, PAPER_LIST_ROWS, render_datasets_md, render_datasets_table, render_entry

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
FIRST_ADAPTERS = {"bccd", "txl_pbc", "leukemiaattri", "zheng2018_wbc", "pbc", "wbcatt", "aml_cytomorphology_lmu"}

MINIMAL = dict(
    id="lab_set", name="Lab set", citation="Us, 2025.", homepage="https://example.org", license="MIT",
    redistributable=True, access="http", tasks=["detection"], disease=["normal"], granularity="field_of_view",
    native_format="yolo",
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _write(tmp_path: Path, entries: list[dict], name: str = "extra.yaml") -> Path:
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump({"version": 1, "datasets": entries}, sort_keys=False), encoding="utf-8")
    return p


def test_catalog_loads_with_unique_ids(catalog):
    ids = catalog.ids()
    assert len(ids) == len(set(ids)) >= 46
    assert sum(e.in_paper for e in catalog) >= 40


def test_first_adapters_are_exactly_the_implemented_ones(catalog):
    implemented = {e.id for e in catalog if e.adapter == "implemented"}
    assert FIRST_ADAPTERS <= implemented  # and every adapter added since
    from unihema_data.adapters import adapter_ids
    from unihema_data.taxonomy import load_taxonomy

    assert implemented == set(adapter_ids()), "catalog adapter status must match the adapter registry"
    assert all(load_taxonomy().has_source(i) for i in implemented)


def test_registered_adapters_have_catalog_entries(catalog):
    from unihema_data.adapters import adapter_ids

    assert set(adapter_ids()) <= set(catalog.ids())


def test_manual_entries_have_instructions_and_files(catalog):
    for e in catalog:
        if e.access == "manual":
            assert e.manual_instructions and len(e.manual_instructions) > 40, e.id
            assert e.files, f"{e.id}: the manual resolver needs the expected file names"


def test_pinned_checksums_are_complete_pairs(catalog):
    # a sha256 without a size (or vice versa) would look half-verified
    for e in catalog:
        for f in e.files:
            if f.sha256 is not None:
                assert f.size is not None, (e.id, f.name)
    assert catalog.get("wbcatt").checksums_verified


def test_real_sample_folders_have_entries(catalog):
    if not REAL_SAMPLES.is_dir():
        pytest.skip("../shared/real-samples not present")
    folders = {p.name for p in REAL_SAMPLES.iterdir() if p.is_dir()}
    assert folders, "real-samples folder is empty"
    missing = folders - set(catalog.ids())
    assert not missing, f"real-sample folders without a catalog entry: {sorted(missing)}"


def test_wbcatt_pinned_checksums_match_real_sample(catalog):
    import hashlib

    base = REAL_SAMPLES / "wbcatt" / "submission"
    if not base.is_dir():
        pytest.skip("../shared/real-samples/wbcatt not present")
    for f in catalog.get("wbcatt").files:
        p = next(base.rglob(f.name))
        assert p.stat().st_size == f.size
        assert hashlib.sha256(p.read_bytes()).hexdigest() == f.sha256


def test_text_sets_are_generated_entries(catalog):
    for sid, task in (("wbcatt_vqa", "vqa"), ("leukemiaattri_mlm", "mlm")):
        e = catalog.get(sid)
        assert e.tasks == [task] and e.access == "derived" and e.files == [] and e.in_paper and e.derived_from
        assert "unihema-data generate" in (e.notes or "")


def test_paper_rows_map_to_in_paper_entries(catalog):
    ids = set(catalog.ids())
    mapped = {sid for _, _, sid in PAPER_LIST_ROWS}
    assert mapped <= ids
    assert all(catalog.get(s).in_paper for s in mapped)
    assert {e.id for e in catalog if e.in_paper} == mapped
    for table, _, sid in PAPER_LIST_ROWS:
        assert table in ("detection", "segmentation", "classification", "text")


def test_disease_tokens_are_snake_case(catalog):
    import re

    for e in catalog:
        assert e.disease, e.id
        for d in e.disease:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", d), (e.id, d)


def test_docs_are_up_to_date(catalog):
    assert DOCS_PATH.is_file(), "run: python -m unihema_data.catalog_docs"
    assert DOCS_PATH.read_text(encoding="utf-8") == render_datasets_md(catalog), (
        "docs/datasets.md is stale; run: python -m unihema_data.catalog_docs")


def test_table_and_entry_rendering(catalog):
    table = render_datasets_table(catalog)
    rows = table.strip().splitlines()
    assert len(rows) == 2 + len(catalog)
    assert all(r.count(" | ") == rows[0].count(" | ") for r in rows[2:])
    wbcatt_row = next(r for r in rows if r.startswith("| `wbcatt` |"))
    assert "| implemented | yes |" in wbcatt_row
    sec = render_entry(catalog.get("bccd"))
    assert sec.startswith("### BCCD") and "MIT" in sec and "zero-area" in sec


# ---------------------------------------------------------------- broken catalogs
@pytest.mark.parametrize(
    "change, field",
    [
        ({"access": "ftp"}, "access"),
        ({"files": [{"name": "a.zip", "url": "https://example.org/a.zip", "sha256": "xyz"}]}, "sha256"),
        ({"tasks": ["detection", "dance"]}, "tasks"),
        ({"granularity": "tissue"}, "granularity"),
        ({"access": "manual"}, "manual_instructions"),
    ],
)
def test_invalid_field_names_entry_and_field(tmp_path, change, field):
    bad = {**MINIMAL, **change}
    p = _write(tmp_path, [dict(MINIMAL, id="fine_set"), bad])
    with pytest.raises(CatalogError) as ei:
        load_catalog_file(p)
    msg = str(ei.value)
    assert "'lab_set'" in msg and field in msg


def test_missing_field_names_entry_and_field(tmp_path):
    bad = {k: v for k, v in MINIMAL.items() if k != "homepage"}
    with pytest.raises(CatalogError) as ei:
        load_catalog_file(_write(tmp_path, [bad]))
    assert "'lab_set'" in str(ei.value) and "homepage" in str(ei.value)


def test_duplicate_id_is_rejected(tmp_path):
    with pytest.raises(CatalogError) as ei:
        load_catalog_file(_write(tmp_path, [MINIMAL, dict(MINIMAL)]))
    assert "duplicate" in str(ei.value) and "lab_set" in str(ei.value)


def test_bad_yaml_is_a_catalog_error(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text(textwrap.dedent("""\
        datasets:
          - id: x
            name: [unclosed
        """), encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog_file(p)


def test_extra_catalog_is_merged(tmp_path, catalog):
    override = dict(MINIMAL, id="bccd", name="BCCD (lab mirror)")
    p = _write(tmp_path, [MINIMAL, override])
    merged = load_catalog(extra=[p])
    assert len(merged) == len(catalog) + 1
    assert merged.get("lab_set").name == "Lab set"
    assert merged.get("bccd").name == "BCCD (lab mirror)"
    assert load_catalog().get("bccd").name != "BCCD (lab mirror)"  # the built-in catalog is untouched


def test_taxonomy_source_tables_name_catalog_ids(catalog):
    """Alias tables are keyed by catalog id (``unihema`` holds Uni-Hema's own label strings, a
    cross-check table, not a source)."""
    from unihema_data.taxonomy import load_taxonomy

    ids = set(catalog.ids())
    assert sorted(s for s in load_taxonomy().sources if s not in ids and s != "unihema") == []
