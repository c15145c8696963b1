"""wbcatt: every row of the real CSVs parsed and mapped through the taxonomy; end-to-end
conversion of the real rows whose PBC images are in the real samples; quirks (re-annotation
flags, PBC tree next to or inside raw/wbcatt, missing images, inconsistent rows); and the
pbc + wbcatt duplicate handling in one OUT."""
from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.schema import label_name
from unihema_data.adapters.base import CorruptInputError, MissingInputError
from unihema_data.convert import ConversionError, ConvertOptions, convert, link_sources
from unihema_data.outdir import all_parquet_files
from unihema_data.splits import normalize_split
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate

SID = "wbcatt"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
REAL = SHARED / SID / "submission"
REAL_PBC = SHARED / "pbc"
ATTRS = ["cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio", "chromatin_density",
         "cytoplasm_vacuole", "cytoplasm_texture", "cytoplasm_colour", "granule_type", "granule_colour",
         "granularity"]


def _rows(out: Path, source: str = SID) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == source for r in pq.read_table(f).to_pylist()]


def _convert(sid: str, raw: Path, out: Path):
    return convert([sid], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _need_real():
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")


# ---------------------------------------------------------------- real CSVs, all rows
def test_real_csvs_all_rows_parse_and_map():
    _need_real()
    adapter = get_adapter(SID)
    tax = load_taxonomy()
    samples = adapter.samples(REAL, Path("/nonexistent-pbc"))
    want = [(split, r) for split in ("train", "val", "test") for r in _read(REAL / f"pbc_attr_v1_{split}.csv")]
    assert len(samples) == len(want) == 10298
    assert Counter(s.source_split for s in samples) == Counter(split for split, _ in want)
    second = {r["img_name"]: r for r in _read(REAL / "re-annotation" / "pbc_attr_reannotations.csv")}
    mapped_attrs: set[tuple[str, str]] = set()
    for s, (split, r) in zip(samples, want):
        assert s.rel_path == r["path"] and s.source_split == split
        assert s.label == r["label"] and s.attributes == {a: r[a] for a in ATTRS}
        assert list(s.attributes) == ATTRS
        tax.map_label(SID, s.label)  # raises when unmapped
        for a, v in s.attributes.items():
            mapped_attrs.add(tax.map_attribute(SID, a, v))
        other = second.get(r["img_name"])
        if other is None:
            assert s.qc_flags == []
        else:
            diffs = [f"reannotation_differs:{a}={other[a]}" for a in ATTRS if other[a] != r[a]]
            assert s.qc_flags == ["reannotated", *diffs]
    # every native attribute value seen maps to a distinct canonical (name, value)
    native_pairs = {(a, r[a]) for _, r in want for a in ATTRS}
    assert len(mapped_attrs) == len(native_pairs)
    assert sum("reannotated" in s.qc_flags for s in samples) == len(second) == 1000
    assert {tax.map_label(SID, s.label) for s in samples} == {"neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"}


def test_real_layout_with_incomplete_pbc_names_missing_images():
    """Pointed at the real samples (CSVs for 10,298 images, 8 PBC images), conversion stops and
    says how many images are missing and where the first one was expected."""
    _need_real()
    if not REAL_PBC.is_dir():
        pytest.skip("real pbc sample absent")
    adapter = get_adapter(SID)
    root = adapter.locate(SHARED)
    assert root.resolve() == REAL.resolve()
    link_sources(adapter, ["pbc"], SHARED)  # what convert does for catalog images_from
    assert adapter.pbc_parent(root) == REAL_PBC.resolve()
    with pytest.raises(MissingInputError) as ei:
        list(adapter.iter_samples(root))
    msg = str(ei.value)
    present = sum((REAL_PBC / r["path"]).is_file() for s in ("train", "val", "test") for r in _read(REAL / f"pbc_attr_v1_{s}.csv"))
    assert f"{10298 - present} of 10298" in msg
    assert str(REAL_PBC.resolve() / "PBC_dataset_normal_DIB") in msg and "pbc_attr_v1_train.csv:" in msg


@pytest.fixture(scope="module")
def real_joined(tmp_path_factory):
    """raw/wbcatt/submission holds the real CSV lines whose image is in the real pbc sample
    (header + verbatim lines); raw/pbc links to the real pbc sample."""
    _need_real()
    if not REAL_PBC.is_dir():
        pytest.skip("real pbc sample absent")
    base = tmp_path_factory.mktemp("wbcatt_real")
    sub = base / "raw" / SID / "submission"
    (sub / "re-annotation").mkdir(parents=True)
    kept = {}
    for rel in ("pbc_attr_v1_train.csv", "pbc_attr_v1_val.csv", "pbc_attr_v1_test.csv",
                "re-annotation/pbc_attr_reannotations.csv"):
        lines = (REAL / rel).read_text(encoding="utf-8").splitlines(keepends=True)
        body = [ln for ln in lines[1:] if (REAL_PBC / ln.rstrip("\n").split(",")[-1]).is_file()]
        (sub / rel).write_text(lines[0] + "".join(body), encoding="utf-8")
        kept[rel] = body
    if not any(kept[k] for k in kept if k.startswith("pbc_attr")):
        pytest.skip("no WBCAtt row has its PBC image in the real samples")
    (base / "raw" / "pbc").symlink_to(REAL_PBC, target_is_directory=True)
    report = _convert(SID, base / "raw", base / "out")
    return base, kept, report, _rows(base / "out")


def _refined(label: str, name: str) -> str:
    """WBCAtt's label refined like PBC's from the file-name prefix (written out independently)."""
    prefix = name.split("_", 1)[0]
    if label == "Neutrophil":
        return {"BNE": "neutrophil_band", "SNE": "neutrophil_segmented"}.get(prefix, "neutrophil")
    return label.lower()


def test_real_rows_end_to_end(real_joined):
    base, kept, report, rows = real_joined
    tax = load_taxonomy()
    by_id = {r["sample_id"]: r for r in rows}
    n = 0
    for split in ("train", "val", "test"):
        header = (REAL / f"pbc_attr_v1_{split}.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
        for line in kept[f"pbc_attr_v1_{split}.csv"]:
            r = dict(zip(header, line.rstrip("\n").split(",")))
            row = by_id[f"{SID}/{r['path']}"]
            n += 1
            assert row["source_split"] == split and row["split"] == normalize_split(split)
            assert row["source_label"] == r["label"] and label_name(row["label"]) == _refined(r["label"], r["img_name"])
            got = {a["name"]: a["value"] for a in row["attributes"]}
            assert got == dict(tax.map_attribute(SID, a, r[a]) for a in ATTRS)
            data = (REAL_PBC / r["path"]).read_bytes()
            assert row["image"]["bytes"] == data and row["image_sha256"] == hashlib.sha256(data).hexdigest()
            assert row["tasks"] == ["classification", "attributes"]
    assert n == len(rows) == report.total > 0
    assert validate(base / "out").ok


# ---------------------------------------------------------------- quirks on the fake layout
@pytest.fixture
def fake(tmp_path):
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=3)
    return adapter, truth, tmp_path


def test_reannotation_flags(fake):
    adapter, truth, tmp = fake
    _convert(SID, tmp / "raw", tmp / "out")
    rows = _rows(tmp / "out")
    second = {r["path"]: r for r in _read(truth.root / "re-annotation" / "pbc_attr_reannotations.csv")}
    flagged = [r for r in rows if "reannotated" in r["qc_flags"]]
    assert len(flagged) == len(second) == 2
    for r in flagged:
        rel = r["sample_id"].split("/", 1)[1]
        t = truth.samples[rel]
        diffs = [f"reannotation_differs:{a}={second[rel][a]}" for a in ATTRS if second[rel][a] != t.attributes[a]]
        assert [f for f in r["qc_flags"] if f.startswith("reannotation_differs:")] == diffs
        # the official v1 value is kept
        assert {a["name"]: a["value"] for a in r["attributes"]}["cell_size"] == \
            load_taxonomy().map_attribute(SID, "cell_size", t.attributes["cell_size"])[1]
    assert sum(bool([f for f in r["qc_flags"] if f.startswith("reannotation_differs:cell_size=")]) for r in rows) == 1


def test_pbc_tree_as_sibling_raw_pbc(tmp_path):
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=4, pbc_out=tmp_path / "raw" / "pbc")
    assert not (tmp_path / "raw" / SID / "PBC").exists()
    report = _convert(SID, tmp_path / "raw", tmp_path / "out")
    assert report.total == truth.num_images
    link_sources(adapter, ["pbc"], tmp_path / "raw")
    assert adapter.pbc_parent(truth.root) == (tmp_path / "raw" / "pbc").resolve()


def test_missing_pbc_tree_names_expected_path(tmp_path):
    adapter = get_adapter(SID)
    adapter.fake(tmp_path / "raw" / SID, seed=4, pbc_out=tmp_path / "elsewhere")
    with pytest.raises(ConversionError) as ei:
        _convert(SID, tmp_path / "raw", tmp_path / "out")
    msg = str(ei.value)
    assert "PBC images not found" in msg and "PBC_dataset_normal_DIB/" in msg and "raw/pbc" in msg


def test_one_missing_image(fake):
    adapter, truth, tmp = fake
    rel = sorted(truth.samples)[0]
    (tmp / "raw" / SID / "PBC" / rel).unlink()
    with pytest.raises(ConversionError) as ei:
        _convert(SID, tmp / "raw", tmp / "out")
    assert f"1 of {truth.num_images}" in str(ei.value) and rel in str(ei.value)


def test_inconsistent_rows_rejected(fake):
    adapter, truth, _ = fake
    train = truth.root / "pbc_attr_v1_train.csv"
    original = train.read_text()
    lines = original.splitlines()
    first = lines[1].split(",")
    train.write_text("\n".join([lines[0], ",".join(["XX_1.jpg", *first[1:]]), *lines[2:]]) + "\n")
    with pytest.raises(CorruptInputError, match=r"pbc_attr_v1_train.csv:2: img_name 'XX_1.jpg' does not match path"):
        adapter.read_rows(truth.root)
    test_csv = truth.root / "pbc_attr_v1_test.csv"
    train.write_text(original)
    test_csv.write_text(test_csv.read_text() + lines[1] + "\n")
    with pytest.raises(CorruptInputError, match="pbc_attr_v1_test.csv:.*already listed at .*pbc_attr_v1_train.csv:2"):
        adapter.read_rows(truth.root)
    train.write_text(original.replace("img_name,label", "name,label", 1))
    with pytest.raises(CorruptInputError, match="pbc_attr_v1_train.csv:1: unexpected header"):
        adapter.read_rows(truth.root)
    train.write_text(original.replace(",light blue,", ",,", 1))
    with pytest.raises(CorruptInputError, match="empty value in column.*cytoplasm_colour"):
        adapter.read_rows(truth.root)


# ---------------------------------------------------------------- pbc + wbcatt in one OUT
def test_pbc_then_wbcatt_share_images(tmp_path):
    raw = tmp_path / "raw"
    pbc_truth = get_adapter("pbc").fake(raw / "pbc", seed=6)
    truth = get_adapter(SID).fake(raw / SID, seed=6, pbc_out=pbc_truth.root.parent)
    out = tmp_path / "out"
    pbc_report = _convert("pbc", raw, out)
    assert pbc_report.total == pbc_truth.num_images + truth.num_images  # the WBCAtt images are PBC's
    report = _convert(SID, raw, out)
    # one group per shared image, plus pbc's own cross-class pair
    assert report.total == truth.num_images and report.duplicates == truth.num_images + 1
    pbc_rows = {r["image_sha256"]: r for r in _rows(out, "pbc")}
    for r in _rows(out):  # the published WBCAtt split beats pbc's generated one (policy in integrity.py)
        copy = pbc_rows[r["image_sha256"]]
        assert r["split"] == normalize_split(r["source_split"]) == copy["split"]
        assert f"duplicate_of:{r['sample_id']}" in copy["qc_flags"]
        assert not any(f.startswith(("duplicate_of:", "split_moved:")) for f in r["qc_flags"])
    rep = validate(out)
    assert rep.ok, rep.summary()


def test_reannotation_file_next_to_the_split_csvs_is_read(tmp_path):
    """``unihema-data fetch`` puts the catalog's files flat in raw/wbcatt/: the re-annotation CSV is
    then next to the split CSVs, and must still be read (not silently ignored)."""
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=5)
    (truth.root / "re-annotation" / "pbc_attr_reannotations.csv").rename(truth.root / "pbc_attr_reannotations.csv")
    _convert(SID, tmp_path / "raw", tmp_path / "out")
    assert sum("reannotated" in r["qc_flags"] for r in _rows(tmp_path / "out")) == 2
    (truth.root / "re-annotation" / "pbc_attr_reannotations.csv").write_bytes((truth.root / "pbc_attr_reannotations.csv").read_bytes())
    with pytest.raises(ConversionError, match="second copy of the re-annotation file"):
        _convert(SID, tmp_path / "raw", tmp_path / "out2")
