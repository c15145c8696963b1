"""parasite_roboflow: the Roboflow COCO base (tested in depth in test_adapter_raabin_wbc_det.py)
with Uni-Hema's parasite names; an unexpected class name fails naming it."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "parasite_roboflow"


def test_parasite_names_map(tmp_path):
    get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = [r for f in all_parquet_files(tmp_path / "out") for r in pq.read_table(f).to_pylist()]
    assert rep.total == len(rows) == 7
    got = {(s, label_name(c)) for r in rows for s, c in zip(r["objects"]["source_category"], r["objects"]["category"])}
    assert got and all(c == {"leukocyte": "wbc"}.get(s, s) for s, c in got)


def test_unknown_class_fails_naming_it(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    p = truth.root / "train" / "_annotations.coco.json"
    d = json.loads(p.read_text())
    d["categories"][1]["name"] = "Babesia-microti"
    p.write_text(json.dumps(d))
    with pytest.raises(ConversionError, match="unmapped label 'Babesia-microti'"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
