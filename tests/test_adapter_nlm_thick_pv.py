"""nlm_thick_pv: the P. vivax release read by the shared NLM reader (format tests in
test_adapter_nlm_thick_pf.py cover both ids); here the PV-specific facts: ``Parasitized`` labels,
the ``count,W,H`` header order detected from the image, '_'-differing names paired and reported,
and the thin-smear ``Polygon`` variant (mask -> ``from_mask`` box).

Opt-in full check: ``UNIHEMA_NLM_PV_FULL=<folder holding All_PvTk/ and All_annotations/>``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_rle
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "nlm_thick_pv"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=5)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep, _rows(tmp_path / "out")


def test_pv_quirks(tmp_path):
    truth, rep, rows = _convert(tmp_path)
    assert rep.inputs.info["header_order"].startswith("count,W,H: 4 files")
    assert ("All_PvTk/P07/IMG_0101.jpg", "paired with All_annotations/P07/IMG0101.txt (names differ only by '_')") \
        in rep.inputs.of("repaired")
    r = rows[f"{SID}/All_PvTk/P01/IMG_0001.jpg"]
    cats = {label_name(c) for c in r["objects"]["category"]}
    assert cats <= {"plasmodium_vivax", "wbc"} and "plasmodium_vivax" in cats
    assert set(r["objects"]["source_category"]) <= {"Parasitized", "White_Blood_Cell"}


def test_polygon_variant_gives_a_mask(tmp_path):
    def mutate(root):
        f = root / "All_annotations" / "P01" / "IMG_0001.txt"
        lines = f.read_text().splitlines()
        lines[0] = f"{int(lines[0].split(',')[0]) + 1},{','.join(lines[0].split(',')[1:])}"
        f.write_text("\n".join(lines + ["9-1,Uninfected,No_Comment,Polygon,4,10,10,40,10,40,30,10,30"]) + "\n")
    truth, rep, rows = _convert(tmp_path, mutate)
    o = rows[f"{SID}/All_PvTk/P01/IMG_0001.jpg"]["objects"]
    assert o["bbox_source"][-1] == "from_mask" and label_name(o["category"][-1]) == "rbc"
    assert o["bbox"][-1] == pytest.approx([10, 10, 30, 20], abs=1.0)
    row = rows[f"{SID}/All_PvTk/P01/IMG_0001.jpg"]
    m = decode_rle(o["mask_rle"][-1], row["height"], row["width"])
    assert 500 <= int(np.count_nonzero(m)) <= 700


def test_polygon_with_two_points_is_an_error(tmp_path):
    def mutate(root):
        f = root / "All_annotations" / "P01" / "IMG_0001.txt"
        f.write_text(f.read_text() + "9-1,Uninfected,No_Comment,Polygon,2,10,10,40,10\n")
    with pytest.raises(ConversionError, match=r"IMG_0001\.txt:\d+: Polygon with point count 2"):
        _convert(tmp_path, mutate)


@pytest.mark.skipif(not os.environ.get("UNIHEMA_NLM_PV_FULL"), reason="set UNIHEMA_NLM_PV_FULL to the full release")
def test_full_release(tmp_path):
    from test_adapter_nlm_thick_pf import _check  # noqa: E402

    rep = convert([SID], Path(os.environ["UNIHEMA_NLM_PV_FULL"]), tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    assert _check(Path(rep.root), tmp_path / "out", SID) > 0
    print(rep.inputs.info)
