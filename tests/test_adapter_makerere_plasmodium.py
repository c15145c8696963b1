"""Makerere AI Lab sets (makerere_plasmodium, makerere_plasmodium_phone,
makerere_tuberculosis_phone; shared base ``adapters/_makerere.py``): float corners read by tag
name (extra <object> child), the 'person' class, <status><bad> flagged, empty images, stale
<filename> flagged, and the three sets told apart by content when they sit in one folder."""
from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

IDS = ["makerere_plasmodium", "makerere_plasmodium_phone", "makerere_tuberculosis_phone"]
CANON = {"makerere_plasmodium": "plasmodium", "makerere_plasmodium_phone": "plasmodium",
         "makerere_tuberculosis_phone": "tb_bacillus"}


def _rows(out, sid):
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == sid for r in pq.read_table(f).to_pylist()}


@pytest.mark.parametrize("sid", IDS)
def test_quirks(tmp_path, sid):
    truth = get_adapter(sid).fake(tmp_path / "raw" / sid, seed=8)
    rep = convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = _rows(tmp_path / "out", sid)
    assert len(rows) == 7
    bad = [r for r in rows.values() if "bad_image" in r["qc_flags"]]
    assert [r["sample_id"].rsplit("/", 1)[1] for r in bad] == [f"{get_adapter(sid).fake_prefix}0005.jpg"]
    assert [w for _, w in rep.inputs.of("flagged")] == ["<status><bad>1</bad>: marked bad by the authors"]
    empty = [r for r in rows.values() if not r["objects"]["bbox"]]
    assert len(empty) == 1
    assert {label_name(c) for r in rows.values() for c in r["objects"]["category"]} == {CANON[sid]}
    # float corners survive exactly (no rounding to integers)
    for rel, t in truth.samples.items():
        got = rows[f"{sid}/{rel}"]["objects"]["bbox"]
        assert all(g == pytest.approx(w, abs=1e-3) for g, w in zip(got, t.boxes))
    assert any(b != [round(v) for v in b] for r in rows.values() for b in r["objects"]["bbox"])


def test_person_is_the_parasite_class(tmp_path):
    sid = "makerere_plasmodium"
    get_adapter(sid).fake(tmp_path / "raw" / sid, seed=1)
    convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    cats = {c for r in _rows(tmp_path / "out", sid).values() for c in r["objects"]["source_category"]}
    assert cats == {"person"}


def test_sets_side_by_side_are_told_apart(tmp_path):
    """All three zips extracted into one raw folder (no per-source sub-folders): each adapter
    finds its own set by the object names inside the XMLs."""
    raw = tmp_path / "raw"
    for sid in IDS:
        t = get_adapter(sid).fake(tmp_path / "gen" / sid, seed=2)
        shutil.copytree(t.root, raw / t.root.name)
    for sid in IDS:
        root = get_adapter(sid).locate(raw)
        assert root.name == {"makerere_plasmodium": "plasmodium-images",
                             "makerere_plasmodium_phone": "plasmodium-phonecamera",
                             "makerere_tuberculosis_phone": "tuberculosis-phonecamera"}[sid]


def test_stale_filename_flagged(tmp_path):
    sid = "makerere_plasmodium_phone"
    truth = get_adapter(sid).fake(tmp_path / "raw" / sid, seed=3)
    x = truth.root / "plasmodium-phone-0002.xml"
    x.write_text(x.read_text().replace("<filename>plasmodium-phone-0002", "<filename>IMG_1234"))
    rep = convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert ("plasmodium-phone-0002.jpg", "<filename> 'IMG_1234.jpg' does not match the annotation file name") \
        in rep.inputs.of("flagged")
