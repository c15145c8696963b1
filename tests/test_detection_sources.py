"""Every source the catalog lists under ``detection`` yields boxes, and every adapter whose rows
carry the detection task is listed there (``unihema-data list --task detection`` tells the truth).

Detection views of segmentation sources come from their masks (``bbox_source = from_mask``:
erythrocytesidb, nuclick_wbc, rv_pbs) or from a box file (mp_idb's Falciparum CSV); anerbc is not
listed (semantic masks only: touching cells merge, no per-cell objects); point sources (chula_rbc12, all_idb1) give
points (``from_point``); NLM thick smears give circles (``from_circle``) and points."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import adapter_ids, get_adapter
from unihema_data.catalog import load_catalog
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import all_parquet_files

CATALOG = load_catalog()
DETECTION = sorted(e.id for e in CATALOG.filter("detection") if e.adapter == "implemented")
#: what each source's detection objects are made of (checked on its fake)
SOURCES_OF_BOXES = {"erythrocytesidb": {"from_mask"}, "mp_idb": {"annotated"}, "nuclick_wbc": {"from_mask"},
                    "rv_pbs": {"from_mask"}, "chula_rbc12": {"from_point"}, "nlm_thick_pf": {"from_circle", "from_point"},
                    "nlm_thick_pv": {"from_circle", "from_point"}}


def test_catalog_and_adapters_agree_on_detection():
    ids = set(adapter_ids())
    listed = {e.id for e in CATALOG.filter("detection")}
    for sid in DETECTION:
        assert sid in ids, f"{sid}: catalog says implemented but no adapter is registered"
        assert "detection" in get_adapter(sid).tasks, f"{sid}: listed under detection but its adapter has no detection task"
    emitting = {sid for sid in ids if "detection" in get_adapter(sid).tasks}
    assert emitting <= listed, f"adapters with a detection task missing from the catalog's detection list: {sorted(emitting - listed)}"


@pytest.mark.parametrize("sid", DETECTION)
def test_detection_source_yields_boxes(sid, tmp_path):
    truth = get_adapter(sid).fake(tmp_path / "raw" / sid, seed=1)
    convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    rows = [r for f in all_parquet_files(tmp_path / "out") if f.parent.name == sid for r in pq.read_table(f).to_pylist()]
    det = [r for r in rows if "detection" in r["tasks"]]
    assert det, f"{sid}: no converted row carries the detection task"
    n = sum(len(r["objects"]["bbox"]) for r in det)
    assert n > 0 and n <= truth.num_objects or truth.num_objects == 0
    kinds = {s for r in det for s in r["objects"]["bbox_source"]}
    assert kinds <= {"annotated", "from_mask", "from_point", "from_circle"}
    if sid in SOURCES_OF_BOXES:
        assert kinds == SOURCES_OF_BOXES[sid], (sid, kinds)
    for r in det:
        assert r["prompt"].startswith("This image is for the detection of "), (sid, r["prompt"])
        for b, src in zip(r["objects"]["bbox"], r["objects"]["bbox_source"]):
            assert len(b) == 4 and (src == "from_point" or (b[2] > 0 and b[3] > 0) or
                                     any(f.startswith(("zero_area_box", "degenerate_native_box")) for f in r["qc_flags"]))
