"""bbbc041: real-annotation conformance (the real test.json, every box against an independent
reading of minimum/maximum {r, c}), row/column order, exclusive maxima reaching the image size,
objects without a box, checksum check, shape check and malformed JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy

SID = "bbbc041"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID / "malaria" / "test.json"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}


def test_real_annotations(tmp_path):
    """The real test.json (annotation-only sample): the entries whose boxes touch the image border
    plus the first few, with blank stand-in images of the declared shape."""
    if not REAL.is_file():
        pytest.skip(f"real sample absent: {REAL}")
    entries = json.loads(REAL.read_text())
    assert len(entries) == 120 and sum(len(e["objects"]) for e in entries) == 5922
    def touches(e):
        s = e["image"]["shape"]
        return any(o["bounding_box"]["maximum"]["r"] == s["r"] or o["bounding_box"]["maximum"]["c"] == s["c"]
                   for o in e["objects"])
    chosen = [e for e in entries if touches(e)][:6] + [e for e in entries if not touches(e)][:3]
    assert len(chosen) == 9
    root = tmp_path / "raw" / "malaria"
    (root / "images").mkdir(parents=True)
    for e in chosen:
        s = e["image"]["shape"]
        Image.new("RGB", (s["c"], s["r"]), (230, 220, 225)).save(root / e["image"]["pathname"].lstrip("/"), quality=80)
    (root / "test.json").write_text(json.dumps(chosen))
    (root / "training.json").write_text("[]")
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = _rows(tmp_path / "out")
    tax = load_taxonomy()
    assert len(rows) == len(chosen) == rep.total
    border = 0
    for e in chosen:
        r = rows[f"{SID}/{e['image']['pathname'].lstrip('/')}"]
        assert (r["width"], r["height"]) == (e["image"]["shape"]["c"], e["image"]["shape"]["r"])
        assert r["source_split"] == "test" and r["split"] == "test"
        want = []
        for o in e["objects"]:
            mn, mx = o["bounding_box"]["minimum"], o["bounding_box"]["maximum"]
            want.append([mn["c"], mn["r"], mx["c"] - mn["c"], mx["r"] - mn["r"]])  # x = column, y = row
            border += mx["r"] == r["height"] or mx["c"] == r["width"]
        got = r["objects"]["bbox"]
        assert len(got) == len(want)
        assert all(g == pytest.approx(w, abs=0.5) for g, w in zip(got, want)), e["image"]["pathname"]
        assert r["objects"]["source_category"] == [o["category"] for o in e["objects"]]
        assert [label_name(c) for c in r["objects"]["category"]] == [tax.map_label(SID, o["category"]) for o in e["objects"]]
        assert not any(f.startswith(("clipped_box", "degenerate")) for f in r["qc_flags"])  # exclusive max: inside
    assert border > 0
    # stand-in images: the MD5 checksum check notices every one of them
    assert len(rep.inputs.of("flagged")) == len(chosen)
    assert all("does not match the file's MD5" in why for _, why in rep.inputs.of("flagged"))


def _fake(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep, _rows(tmp_path / "out")


def test_fake_quirks_reported(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    assert ("images/not-in-any-json.png", "image listed in no JSON file (not converted)") in rep.inputs.of("orphaned")
    skipped = [why for _, why in rep.inputs.of("skipped")]
    assert sum("has no bounding_box" in w for w in skipped) == 2
    assert not rep.inputs.of("flagged")  # real checksums: no mismatch
    assert rep.inputs.info["annotation_files"] == "training.json, test.json"
    assert {r["split"] for r in rows.values()} <= {"train", "test"}


def _edit_json(name, fn):
    def edit(root):
        data = json.loads((root / name).read_text())
        fn(data)
        (root / name).write_text(json.dumps(data))
    return edit


def test_shape_mismatch_is_an_error(tmp_path):
    def swap(data):
        s = data[1]["image"]["shape"]
        s["r"], s["c"] = s["c"], s["r"]
    with pytest.raises(ConversionError, match=r"training\.json: entry 1: shape says 300x400"):
        _fake(tmp_path, _edit_json("training.json", swap))


def test_missing_image_and_duplicate_pathname(tmp_path):
    with pytest.raises(ConversionError, match=r"test\.json: entry 0: image images/nope\.jpg is missing"):
        _fake(tmp_path, _edit_json("test.json", lambda d: d[0]["image"].__setitem__("pathname", "/images/nope.jpg")))
    with pytest.raises(ConversionError, match="already listed"):
        _fake(tmp_path / "b", _edit_json("test.json", lambda d: d.append(d[0])))


@pytest.mark.parametrize("text, what", [("[{\"image\": ", "not valid JSON"), ("{}", "expected a JSON list"),
                                        ("[{\"objects\": []}]", "expected image.pathname")])
def test_malformed_json(tmp_path, text, what):
    def edit(root):
        (root / "test.json").write_text(text)
    with pytest.raises(ConversionError) as ei:
        _fake(tmp_path, edit)
    assert "test.json" in str(ei.value) and what in str(ei.value)


def test_malformed_box(tmp_path):
    def bad(data):
        data[0]["objects"][0]["bounding_box"] = {"minimum": {"r": 1}}
    with pytest.raises(ConversionError, match="entry 0: object 0 has a malformed bounding_box"):
        _fake(tmp_path, _edit_json("training.json", bad))
