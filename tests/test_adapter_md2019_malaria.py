"""md2019_malaria: `<stem>_GT.png` pairing for .png and .jpg images, pre-augmented copies grouped
into one split, orphans, 1- and 3-channel binary masks, bad mask values; parasite components as
objects with their LifeStages.xlsx stage (centre inside), points outside the mask, ambiguous
components, header variants and damaged workbooks. No real sample exists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.md2019_malaria import MASKS_DIR, STAGES_FILE, base_name
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_rle, decode_semantic
from unihema_data.schema import label_name
from unihema_data.outdir import all_parquet_files

SID = "md2019_malaria"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_base_name_rule():
    assert base_name("Trip 053 Day 2 19-11-05 Image 10 add_4") == "Trip 053 Day 2 19-11-05 Image 10"
    assert base_name("Trip 053 Day 2 19-11-05 Image 10_3") == "Trip 053 Day 2 19-11-05 Image 10"
    assert base_name("Trip 053 Day 2 19-11-05 Image 10") == "Trip 053 Day 2 19-11-05 Image 10"


def test_copies_share_a_group_and_a_split(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 5
    by_group: dict[str, set] = {}
    for r in rows:
        by_group.setdefault(r["group_id"], set()).add(r["split"])
    assert set(by_group) == {"Trip 053 Day 2 19-11-05 Image 10", "Trip 061 Day 4 20-01-14 Image 3"}
    assert all(len(s) == 1 for s in by_group.values())
    assert report.info["augmented_copies"] == "3"
    assert report.info["life_stages"] == ("LifeStages.xlsx: sheet 'Sheet1', columns image='imageName', "
                                          "stage='stage', x='center_x', y='center_y'")
    assert sorted(p for p, _ in report.inputs.of("orphaned")) == [
        f"{MASKS_DIR}/Trip 070 Day 1 20-02-02 Image 1_GT.png", "LifeStages.xlsx:Trip 099 Day 9 20-03-03 Image 9"]
    # the .jpg copy pairs with `<stem>_GT.png` and its mask is exact
    r = next(r for r in rows if r["sample_id"].endswith("Image 3_1.jpg"))
    gt = np.asarray(Image.open(truth.root / MASKS_DIR / "Trip 061 Day 4 20-01-14 Image 3_1_GT.png"))
    idx = decode_semantic(r["semantic_mask"]["bytes"])
    assert np.array_equal(np.array([c == "parasite" for c in r["mask_classes"]])[idx], gt == 255)


def _sheet(path: Path) -> list[list]:
    import openpyxl

    wb = openpyxl.load_workbook(path)
    rows = [list(r) for r in wb.active.iter_rows(values_only=True)]
    wb.close()
    return rows


def _write_sheet(path: Path, rows: list[list], title: str = "Sheet1") -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = title
    for r in rows:
        wb.active.append(r)
    wb.save(path)


def test_stages_by_centre_point(tmp_path):
    """Every staged parasite component carries the stage of the xlsx centre inside it, checked
    against an independent reading of the workbook and the mask."""
    from scipy import ndimage

    truth = get_adapter(SID).fake(tmp_path / "raw")
    _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    table = _sheet(truth.root / STAGES_FILE)[1:]
    for name in {r[0] for r in table if not r[0].startswith("Trip 099")}:
        row = rows[f"{SID}/Giemsa stained images/{name}"]
        gt = np.asarray(Image.open(truth.root / MASKS_DIR / name.replace(".png", "_GT.png")).convert("L"))
        labels, _ = ndimage.label(gt == 255, structure=np.ones((3, 3)))
        H, W = gt.shape
        cats, boxes = row["objects"]["source_category"], row["objects"]["bbox"]
        n_comp = int(labels.max())
        assert row["objects"]["bbox_source"][:n_comp] == ["from_mask"] * n_comp
        for stage, x, y in [(r[1], r[2], r[3]) for r in table if r[0] == name]:
            k = labels[int(y), int(x)]
            if k:
                i = [j for j in range(n_comp) if np.array_equal(decode_rle(row["objects"]["mask_rle"][j], H, W), labels == k)]
                assert len(i) == 1 and cats[i[0]] == stage
            else:  # a centre off the mask: a point object of its stage
                assert [stage, [x, y, 0.0, 0.0], "from_point"] in [
                    [c, b, s] for c, b, s in zip(cats, boxes, row["objects"]["bbox_source"])]
        assert "parasite" in cats  # the component without a centre
        assert "stage_points_outside_mask:1" in row["qc_flags"]
        assert row["tasks"] == ["detection", "segmentation"]
    copy = rows[f"{SID}/Giemsa stained images/Trip 053 Day 2 19-11-05 Image 10 add_1.png"]
    assert set(copy["objects"]["source_category"]) == {"parasite"} and "no_life_stages" in copy["qc_flags"]
    assert [label_name(c) for c in copy["objects"]["category"]][0] == "plasmodium_falciparum"


def test_ambiguous_component_flagged(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    path = truth.root / STAGES_FILE
    table = _sheet(path)
    first = table[1]
    table.append([first[0], "Gam" if first[1] != "Gam" else "R", first[2], first[3]])  # a second stage, same spot
    _write_sheet(path, table)
    _convert(tmp_path / "raw", tmp_path / "out")
    row = next(r for r in _rows(tmp_path / "out") if r["sample_id"].endswith("/" + first[0]))
    flag = [f for f in row["qc_flags"] if f.startswith("stage_ambiguous:")]
    assert len(flag) == 1 and flag[0].endswith("/".join(sorted({first[1], table[-1][1]})))
    i = int(flag[0].split(":")[1])
    assert row["objects"]["source_category"][i] == "parasite"


def test_header_variants_and_errors(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    path = truth.root / STAGES_FILE
    table = _sheet(path)
    # another spelling on a second sheet, after a sheet without the columns
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "notes"
    wb.active.append(["comment"])
    ws = wb.create_sheet("stages")
    ws.append(["Image Name", "Life stage", "Center X", "Center Y"])
    for r in table[1:]:
        ws.append(r)
    wb.save(path)
    report = _convert(tmp_path / "raw", tmp_path / "out")
    assert report.info["life_stages"].startswith("LifeStages.xlsx: sheet 'stages', columns image='Image Name'")
    # a non-numeric centre: an error naming the file, sheet and row
    bad = [list(r) for r in table]
    bad[2][2] = "n/a"
    _write_sheet(path, bad)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out2")
    assert "LifeStages.xlsx: sheet 'Sheet1' row 3" in str(ei.value) and "'n/a'" in str(ei.value)
    # no usable sheet: the header seen is named
    _write_sheet(path, [["file", "kind"], ["a.png", "R"]])
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out3")
    assert "no sheet has image, stage, center_x and center_y" in str(ei.value) and "'file'" in str(ei.value)
    # not a workbook at all
    path.write_bytes(b"PK\x03\x04 placeholder")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out4")
    assert "LifeStages.xlsx: not a readable .xlsx workbook" in str(ei.value)


def test_without_life_stages(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / STAGES_FILE).unlink()
    report = _convert(tmp_path / "raw", tmp_path / "out")
    assert report.info["life_stages"] == "LifeStages.xlsx absent"
    for r in _rows(tmp_path / "out"):
        assert set(r["objects"]["source_category"]) == {"parasite"} and "no_life_stages" not in r["qc_flags"]


def test_case_twin_of_the_workbook_is_refused(tmp_path):
    import shutil

    truth = get_adapter(SID).fake(tmp_path / "raw")
    shutil.copyfile(truth.root / STAGES_FILE, truth.root / "lifestages.xlsx")
    with pytest.raises((ConversionError, AdapterError), match="differ only in case"):
        _convert(tmp_path / "raw", tmp_path / "out")


def test_image_without_mask_names_the_expected_mask(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / MASKS_DIR / "Trip 053 Day 2 19-11-05 Image 10 add_1_GT.png").unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "Image 10 add_1" in str(ei.value) and "missing" in str(ei.value)


def test_non_binary_mask_value_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = truth.root / MASKS_DIR / "Trip 053 Day 2 19-11-05 Image 10_GT.png"
    a = np.asarray(Image.open(m)).copy()
    a[0, 0] = 200
    Image.fromarray(a).save(m)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "Image 10_GT.png" in str(ei.value) and "200" in str(ei.value)
