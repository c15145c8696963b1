"""wbcmor_vqa: both JSON forms (raw cell_image/q<n>/a<n> and COCO-like Question/Answer), one row
per QA pair and language stored like the generated VQA text sets, compared with an independent
reading of the fake's JSON files; bad input refused naming the file."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.adapters.wbcmor_vqa import split_of
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files, read_manifest

SID = "wbcmor_vqa"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str = "out"):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def _independent(root: Path) -> set[tuple]:
    """(image path, language, question without 'Q: ', answer, split) of every pair, read with json
    directly (file forms known from the fake)."""
    out = set()
    for js in sorted(root.rglob("*.json")):
        data = json.loads(js.read_text(encoding="utf-8"))
        split = "test" if "test" in js.name.lower() else "train" if "train" in js.parent.name else ""
        if isinstance(data, list):
            for s in data:
                img = next(root.rglob(s["cell_image"])).relative_to(root).as_posix()
                for k, v in s.items():
                    m = re.fullmatch(r"q(\d+)(_urdu)?", k)
                    if m:
                        out.add((img, "ur" if m.group(2) else "en", v.removeprefix("Q: "), s["a" + k[1:]], split))
        elif "annotations" in data:
            ims = {i["id"]: i for i in data["images"]}
            for a in data["annotations"]:
                img = (js.parent / ims[a["image_id"]]["file_name"]).relative_to(root).as_posix()
                out.add((img, "en", a["Question"].removeprefix("Q: "), a["Answer"], split))
                if "Question_urdu" in a:
                    out.add((img, "ur", a["Question_urdu"].removeprefix("Q: "), a["Answer_urdu"], split))
    return out


def test_pairs_match_an_independent_reading(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == rep.total
    got = {(r["group_id"], r["subset"], r["question"].removeprefix("Q: "), r["answer"], r["source_split"])
           for r in rows.values()}
    assert got == _independent(truth.root)
    for sid, r in rows.items():
        img_rel = sid[len(SID) + 1:].rsplit("#", 1)[0]
        data = (truth.root / img_rel).read_bytes()
        assert r["tasks"] == ["vqa"] and r["label"] == -1
        assert r["question"].startswith("Q: ") and r["prompt"] == r["question"]
        assert r["image"]["bytes"] == data and r["image_sha256"] == hashlib.sha256(data).hexdigest()
        assert r["image"]["path"] == Path(img_rel).name and r["group_id"] == img_rel
        assert r["subset"] == ("ur" if sid.endswith("-ur") else "en")
    # every pair of one image (both languages) in one split
    by_group: dict[str, set] = {}
    for r in rows.values():
        by_group.setdefault(r["group_id"], set()).add(r["split"])
    assert all(len(v) == 1 for v in by_group.values())
    # a question without 'Q: ' gets it, said on the row
    r = rows[f"{SID}/test/test_resize_images/LY_101.jpg#qa-1"]
    assert r["question"] == "Q: What is the colour of the cytoplasm?" and "question_prefixed" in r["qc_flags"]
    assert "question_prefixed" not in rows[f"{SID}/test/test_resize_images/LY_101.jpg#qa-0"]["qc_flags"]
    # the pair repeated by the merged file is kept once and flagged
    r = rows[f"{SID}/train/train_images/BNE_201.jpg#qa-0"]
    assert "duplicate_qa_in:train/WBC_leukemia_ATT_VQA.json" in r["qc_flags"]
    info = read_manifest(tmp_path / "out")["sources"][SID]
    assert "raw" in json.dumps(info) and "coco" in json.dumps(info)
    skipped = [e["path"] for e in info["inputs"]["skipped"]]
    assert "config.json" in skipped and sum("WBC_leukemia_ATT_VQA.json" in p for p in skipped) == 2


def test_split_tokens():
    assert split_of("Q_A_test_large.json") == "test"
    assert split_of("train/Q_A.json") == "train"
    assert split_of("URDU/merge_test_english.json") == "test"
    assert split_of("Train_cleaned_validated_dataset_singleQA.json") == "train"
    assert split_of("WBC_leukemia_ATT_VQA.json") == ""
    assert split_of("contest/x.json") == ""  # a token, not a substring


def _coco(truth) -> Path:
    return truth.root / "train" / "Q_A_train.json"


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=4), encoding="utf-8")


@pytest.mark.parametrize("case, words", [
    ("no_answer", ["Q_A_train.json", "annotations[0]", "'Answer' is missing"]),
    ("unknown_image", ["Q_A_train.json", "unknown image_id 999"]),
    ("size", ["Q_A_train.json", "BNE_201.jpg", "224x224", "225x224"]),
    ("missing_image", ["Q_A_train.json", "nope.jpg", "missing"]),
    ("raw_unpaired", ["Test_cleaned_validated_dataset.json", "'q1' has no matching answer"]),
    ("raw_empty", ["Test_cleaned_validated_dataset.json", "'a1' is empty"]),
    ("escape", ["Q_A_train.json", "leaves the dataset folder"]),
    ("nan", ["Q_A_train.json", "NaN"]),
])
def test_bad_input_names_the_file(tmp_path, case, words):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    raw = truth.root / "test" / "Test_cleaned_validated_dataset.json"
    if case == "no_answer":
        _edit(_coco(truth), lambda d: d["annotations"][0].pop("Answer"))
    elif case == "unknown_image":
        _edit(_coco(truth), lambda d: d["annotations"][0].update(image_id=999))
    elif case == "size":
        _edit(_coco(truth), lambda d: d["images"][0].update(width=225))
    elif case == "missing_image":
        _edit(_coco(truth), lambda d: d["images"][0].update(file_name="train_images/nope.jpg"))
    elif case == "raw_unpaired":
        _edit(raw, lambda d: d[0].pop("a1"))
    elif case == "raw_empty":
        _edit(raw, lambda d: d[0].update(a1="  "))
    elif case == "escape":
        _edit(_coco(truth), lambda d: d["images"][0].update(file_name="../../../../etc/passwd.jpg"))
    elif case == "nan":
        p = _coco(truth)
        p.write_text(p.read_text(encoding="utf-8").replace('"width": 224', '"width": NaN', 1), encoding="utf-8")
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    for w in words:
        assert w in str(ei.value)
    assert not all_parquet_files(tmp_path / "out")


def test_unknown_json_shape_with_qa_key_is_refused(tmp_path):
    """A JSON holding a Question key but neither form is reported, not guessed at; with no other
    VQA file the conversion fails naming the source."""
    root = tmp_path / "raw" / SID / "pkg"
    root.mkdir(parents=True)
    (root / "Q_A_test.json").write_text(json.dumps({"Question": "Q: x?", "Answer": "y"}))
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert SID in str(ei.value) and "no WBCMor-VQA JSON" in str(ei.value)


def test_allow_partial_skips_absent_images(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    (truth.root / "train" / "train_images" / "EO_202.jpg").unlink()
    rep = convert([SID], tmp_path / "raw", tmp_path / "out",
                  ConvertOptions(num_proc=1, progress=False, allow_partial=True))[0]
    rows = _rows(tmp_path / "out")
    assert rep.status == "converted"
    assert not any("EO_202" in s for s in rows) and len(rows) == truth.num_images - 4


def test_raw_form_extra_keys_reported_and_sample_without_image_refused(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    raw = truth.root / "test" / "Test_cleaned_validated_dataset.json"
    _edit(raw, lambda d: d[0].update(id=7, label="LY"))
    rep = _convert(tmp_path)
    assert ("test/Test_cleaned_validated_dataset.json",
            "keys other than cell_image/q<n>/a<n> ignored: id, label") in rep.inputs.of("flagged")
    _edit(raw, lambda d: d[1].pop("cell_image"))
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path, "out2")
    assert "Test_cleaned_validated_dataset.json: sample 1 has no 'cell_image'" in str(ei.value)
