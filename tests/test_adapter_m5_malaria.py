"""m5_malaria: domain folders (microscope x magnification x split) to subset / meta / split, one
group per field across the six domains, and the XML quirks of the authors' converter: inverted
boxes dropped and reported, repeated <filename>/<size>, spaces inside <filename>, empty XMLs."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "m5_malaria"


def _fake(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=7)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = {r["sample_id"]: r for f in all_parquet_files(tmp_path / "out") if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}
    return truth, rep, rows


def test_domains_and_groups(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    assert len(rows) == 12
    r = rows[f"{SID}/Images/LCM/train/1000x/Malaria_CM10_14Jul2021122109_0001_137.0_14.0_1000x.png"]
    assert r["subset"] == "L_1000x" and r["magnification"] == "1000x" and "LCM" in r["microscope"]
    assert r["group_id"] == "Malaria_CM10_14Jul2021122109_0001_137.0_14.0"
    assert {x["subset"] for x in rows.values()} == {"H_400x", "H_1000x", "L_400x", "L_1000x"}
    by_group: dict[str, set] = {}
    for x in rows.values():
        by_group.setdefault(x["group_id"], set()).add(x["split"])
    assert len(by_group) == 3 and all(len(v) == 1 for v in by_group.values())
    assert rep.inputs.info["domains"] == ("HCM/train/400x, HCM/train/1000x, HCM/test/400x, HCM/test/1000x, "
                                          "LCM/train/400x, LCM/train/1000x, LCM/test/400x, LCM/test/1000x")
    assert rep.inputs.info["split_lists"].startswith("Splits/test.txt, Splits/train.txt")
    names = {label_name(c) for x in rows.values() for c in x["objects"]["category"]}
    assert names <= {"plasmodium_ring", "plasmodium_trophozoite", "plasmodium_schizont", "plasmodium_gametocyte"}


def test_xml_quirks_reported(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    skipped = [w for _, w in rep.inputs.of("skipped")]
    assert len(skipped) == 1 and "xmax<xmin" in skipped[0]
    dropped = [f for r in rows.values() for f in r["qc_flags"] if f.startswith("inverted_box_dropped:")]
    assert len(dropped) == 1 and dropped[0].endswith(":50,60,40,80")
    flagged = [w for _, w in rep.inputs.of("flagged")]
    assert flagged == ["XML without objects: converted as an image without parasites"]  # space in <filename> is fine
    empty = [x for x in rows.values() if not x["objects"]["bbox"]]
    assert len(empty) == 1 and empty[0]["subset"] == "L_400x"


def test_stale_filename_is_flagged_not_fatal(tmp_path):
    def edit(root):
        x = next((root / "Annotations" / "HCM" / "test" / "1000x").glob("*.xml"))
        x.write_text(x.read_text().replace("<filename>", "<filename>other_", 1))
    _, rep, rows = _fake(tmp_path, edit)
    assert any("does not match the annotation file name" in w for _, w in rep.inputs.of("flagged"))
    assert len(rows) == 12


def test_xml_without_image_is_named(tmp_path):
    def edit(root):
        next((root / "Images" / "HCM" / "train" / "400x").glob("*.png")).unlink()
    with pytest.raises(ConversionError, match=r"_400x\.xml: image Images/HCM/train/400x/.*is missing"):
        _fake(tmp_path, edit)
