"""Tests of the unified taxonomy (``unihema_data/taxonomy.yaml`` + ``taxonomy.py``).

The real-sample tests read the unmodified native files under ``../shared/real-samples`` (relative to
the repository root) and are skipped when that folder is absent.
"""
from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from unihema_data.taxonomy import (
    DEFAULT_PATH,
    NOT_ANNOTATED,
    TaxonomyError,
    UnmappedLabelError,
    load_taxonomy,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
DEFAULT_YAML = DEFAULT_PATH


def real(sub: str) -> Path:
    p = REAL / sub
    if not p.exists():
        pytest.skip(f"real sample {p} not available")
    return p


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


# ---------------------------------------------------------------------------- structure
# Section A of research/taxonomy.md plus the parasite stages/species added here.
EXPECTED_LABELS = """
wbc neutrophil neutrophil_segmented neutrophil_band eosinophil eosinophil_abnormal basophil
immature_granulocyte promyelocyte promyelocyte_bilobed promyelocyte_abnormal faggot_cell myelocyte
metamyelocyte myeloblast monoblast promonocyte monocyte blast lymphoblast b_lymphoid_precursor
lymphocyte lymphocyte_atypical lymphocyte_immature prolymphocyte hairy_cell plasma_cell smudge_cell
erythroblast proerythroblast rbc rbc_normal rbc_circular rbc_elongated sickle_cell macrocyte microcyte
spherocyte target_cell stomatocyte ovalocyte elliptocyte teardrop_cell burr_cell schistocyte keratocyte
acanthocyte hypochromic_rbc polychromatic_rbc rbc_other platelet platelet_giant platelet_aggregate
artifact not_identifiable other_cell unknown_precursor unlabeled plasmodium babesia leishmania
toxoplasma trichomonad trypanosome plasmodium_ring plasmodium_trophozoite plasmodium_schizont
plasmodium_gametocyte
""".split()

# Every dataset id with native class strings in the research notes.
EXPECTED_SOURCES = """
pbc wbcatt bloodmnist aml_cytomorphology_lmu bmc c_nmc_2019 aml_hehr rv_pbs apl_aml_kaggle bccd_kaggle
raabin_wbc warty_pig_wbc krd_wbc bodzas_hrls_wbc chula_rbc12 erythrocytesidb
leukemiaattri lld txl_pbc bccd bionet cbc_alam bcd_aslan m5_malaria bbbc041 makerere_plasmodium
makerere_plasmodium_phone nlm_thick_pf nlm_thick_pv raabin_wbc_det zheng2018_wbc mohamed_far_wbc
all_idb2 all_idb1 bbbc041seg md2019_malaria mp_idb nuclick_wbc anerbc elsafty_rbc sickle_tushabe
""".split()


def test_loads_with_all_canonical_labels(tax):
    missing = [lab for lab in EXPECTED_LABELS if not tax.is_known_label(lab)]
    assert not missing
    for name in ("background", "nucleus", "cytoplasm", "cell", "wbc", "rbc", "parasite"):
        assert name in tax.mask_classes
    assert tax.labels["neutrophil_band"].cl == "CL:0000776"
    assert tax.labels["neutrophil_band"].cl_status == "confirmed"
    assert tax.labels["neutrophil_band"].cl_parent == "CL:0000775"
    assert tax.labels["neutrophil_segmented"].cl_status == "recalled"
    assert tax.labels["blast"].cl is None and tax.labels["blast"].cl_status == "none"


def test_every_documented_source_has_a_table(tax):
    assert [s for s in EXPECTED_SOURCES if not tax.has_source(s)] == []
    assert not tax.has_source("no_such_dataset")


def test_every_alias_target_exists(tax):
    for sid in tax.sources:
        entry = tax.source_aliases(sid)
        for table in tax.label_tables(sid):
            for native, target in entry[table].items():
                assert target in tax.labels, (sid, table, native)
                assert tax.map_label(sid, native, table=table) == target
        for native, target in entry.get("mask_classes", {}).items():
            assert target in tax.mask_classes, (sid, native)
            assert tax.map_mask_class(sid, native) == target
        for native_name, spec in entry.get("attributes", {}).items():
            allowed = set(tax.attributes[spec["name"]].values) | {NOT_ANNOTATED}
            for nv, target in spec["values"].items():
                assert target in allowed, (sid, native_name, nv)
                assert tax.map_attribute(sid, native_name, nv) == (spec["name"], target)


def test_source_aliases_is_a_copy(tax):
    entry = tax.source_aliases("bccd")
    entry["labels"]["WBC"] = "rbc"
    assert tax.map_label("bccd", "WBC") == "wbc"


def test_groups_and_rollups_are_consistent(tax):
    for info in tax.labels.values():
        if info.rollup5 is not None:
            assert info.group == "wbc", info.name
            assert tax.labels[info.rollup5].rollup5 == info.rollup5
        assert (info.cl is None) == (info.cl_status == "none"), info.name


# ---------------------------------------------------------------------------- lookups
def test_unmapped_label_message_names_source_file_and_label(tax):
    with pytest.raises(UnmappedLabelError) as ei:
        tax.map_label("bccd", "Leukocyte", file="BCCD/Annotations/BloodImage_00007.xml")
    msg = str(ei.value)
    assert "bccd" in msg and "BloodImage_00007.xml" in msg and "'Leukocyte'" in msg
    assert "sources.bccd.labels" in msg
    assert isinstance(ei.value, TaxonomyError) and isinstance(ei.value, ValueError)


def test_unmapped_label_in_other_table_names_that_table(tax):
    with pytest.raises(UnmappedLabelError, match=r"sources\.pbc\.label_prefixes"):
        tax.map_label("pbc", "XYZ", file="f.jpg", table="label_prefixes")


def test_unknown_source_and_table(tax):
    with pytest.raises(TaxonomyError, match="no_such"):
        tax.map_label("no_such", "WBC")
    with pytest.raises(TaxonomyError, match="label_prefixes"):
        tax.map_label("bccd", "WBC", table="label_prefixes")
    with pytest.raises(TaxonomyError, match="mask_classes"):
        tax.map_mask_class("bccd", 0)


def test_case_and_whitespace_insensitive_fallback(tax):
    assert tax.map_label("bccd", "wbc") == "wbc"
    assert tax.map_label("bccd", "  PLATELETS ") == "platelet"
    assert tax.map_label("bbbc041", "Red  Blood\tCell") == "rbc"
    assert tax.map_label("m5_malaria", "Gametocyte") == "plasmodium_gametocyte"
    assert tax.map_attribute("wbcatt", "Cytoplasm_Colour", "Light  Blue") == ("cytoplasm_colour", "light_blue")
    assert tax.map_attribute("leukemiaattri", "nuclear chromatin", "coarse") == ("chromatin", "condensed")
    # underscores are not spaces
    with pytest.raises(UnmappedLabelError):
        tax.map_label("bbbc041", "red_blood_cell")


def test_integer_like_natives(tax):
    assert tax.map_label("txl_pbc", 2) == "platelet"
    assert tax.map_label("txl_pbc", np.int64(0)) == "wbc"
    assert tax.map_label("leukemiaattri", 13.0) == "basophil"
    assert tax.map_mask_class("zheng2018_wbc", np.uint8(128)) == "cytoplasm"
    assert tax.map_mask_class("mohamed_far_wbc", np.bool_(True)) == "nucleus"
    assert tax.map_label("leukemiaattri", "None") == "artifact"
    with pytest.raises(TaxonomyError, match="None"):
        tax.map_label("leukemiaattri", None)


def test_ignore_lists(tax):
    assert tax.is_ignored("rv_pbs", "bg")
    assert tax.is_ignored("aml_cytomorphology_lmu", "nan")
    assert not tax.is_ignored("rv_pbs", "basophil")
    with pytest.raises(UnmappedLabelError, match="ignore"):
        tax.map_label("rv_pbs", "bg", file="BASOPHILS/annotations.xml")


def test_diagnosis_tables(tax):
    assert tax.map_diagnosis("leukemiaattri", "APML") == "apl"
    assert tax.map_diagnosis("aml_hehr", "PML_RARA") == "apl_pml_rara"
    assert tax.map_label("aml_hehr", "PML_RARA") == "unlabeled"
    with pytest.raises(UnmappedLabelError, match="diagnosis"):
        tax.map_diagnosis("bccd", "x")


# ---------------------------------------------------------------------------- attributes
WBCATT_EXPECTED = {
    "cell_size": ("cell_size", {"small": "small", "big": "big"}),
    "cell_shape": ("cell_shape", {"round": "round", "irregular": "irregular"}),
    "nucleus_shape": ("nucleus_shape", {
        "segmented-bilobed": "segmented_bilobed", "segmented-multilobed": "segmented_multilobed",
        "unsegmented-band": "unsegmented_band", "unsegmented-round": "unsegmented_round",
        "unsegmented-indented": "unsegmented_indented", "irregular": "irregular"}),
    "nuclear_cytoplasmic_ratio": ("nc_ratio", {"low": "low", "high": "high"}),
    "chromatin_density": ("chromatin", {"densely": "condensed", "loosely": "open"}),
    "cytoplasm_vacuole": ("cytoplasm_vacuoles", {"no": "absent", "yes": "present"}),
    "cytoplasm_texture": ("cytoplasm_texture", {"clear": "clear", "frosted": "frosted"}),
    "cytoplasm_colour": ("cytoplasm_colour", {"light blue": "light_blue", "blue": "blue", "purple blue": "purple_blue"}),
    "granule_type": ("granule_type", {"small": "small", "round": "round", "coarse": "coarse", "nil": "none"}),
    "granule_colour": ("granule_colour", {"pink": "pink", "red": "red", "purple": "purple", "nil": "none"}),
    "granularity": ("granularity", {"yes": "present", "no": "absent"}),
}


def test_wbcatt_attribute_mapping(tax):
    for native, (canon, values) in WBCATT_EXPECTED.items():
        for nv, cv in values.items():
            assert tax.map_attribute("wbcatt", native, nv) == (canon, cv)
    with pytest.raises(TaxonomyError, match="unknown value 'huge'"):
        tax.map_attribute("wbcatt", "cell_size", "huge", file="pbc_attr_v1_train.csv")
    with pytest.raises(TaxonomyError, match="unknown attribute 'cell_colour'.*train.csv"):
        tax.map_attribute("wbcatt", "cell_colour", "blue", file="train.csv")


def _la_attrs(tax, source: str, line: str) -> dict[str, str]:
    """Map the attribute columns of one LeukemiaAttri YOLO label line (6 or 7 values after the box)."""
    parts = line.split()
    values = [float(v) for v in parts[5:]]
    names = tax.attribute_columns(source, len(values))
    return dict(tax.map_attribute(source, n, v) for n, v in zip(names, values))


def test_leukemiaattri_six_attribute_line(tax):
    got = _la_attrs(tax, "leukemiaattri", "1 0.5 0.5 0.1 0.1 0 1 1 0 0 2")
    assert got == {
        "chromatin": "open", "nucleus_regularity": "irregular", "nucleoli": "prominent",
        "cytoplasm_amount": "scanty", "cytoplasm_basophilia": "slight", "cytoplasm_vacuoles": NOT_ANNOTATED,
    }


def test_leukemiaattri_seven_attribute_line(tax):
    got = _la_attrs(tax, "leukemiaattri", "3 0.2 0.3 0.05 0.06 2 1 0 2 1 1 1")
    assert got == {
        "cell_size": "big", "chromatin": "condensed", "nucleus_regularity": "regular",
        "nucleoli": NOT_ANNOTATED, "cytoplasm_amount": "abundant", "cytoplasm_basophilia": "moderate",
        "cytoplasm_vacuoles": "present",
    }
    assert _la_attrs(tax, "lld", "3 0.2 0.3 0.05 0.06 1 0 0 0 0 0 0")["cell_size"] == "medium"
    with pytest.raises(TaxonomyError, match="unknown value '5'"):
        tax.map_attribute("leukemiaattri", "Nuclear Shape", 5)


def test_shared_attributes_agree_across_sources(tax):
    """Where WBCAtt and LeukemiaAttri mean the same thing they land on the same name and value."""
    assert tax.map_attribute("wbcatt", "cytoplasm_vacuole", "yes") == tax.map_attribute("leukemiaattri", "Cytoplasmic Vacuoles", 1)
    assert tax.map_attribute("wbcatt", "cytoplasm_vacuole", "no") == tax.map_attribute("leukemiaattri", "Cytoplasmic Vacuoles", 0)
    assert tax.map_attribute("wbcatt", "chromatin_density", "loosely") == tax.map_attribute("leukemiaattri", "Nuclear Chromatin", 0)
    assert tax.map_attribute("wbcatt", "cell_size", "small") == tax.map_attribute("leukemiaattri", "Cell Size", 0)
    # deliberately separate properties
    assert tax.map_attribute("wbcatt", "nucleus_shape", "irregular")[0] != tax.map_attribute("leukemiaattri", "Nuclear Shape", 1)[0]
    assert tax.map_attribute("wbcatt", "cytoplasm_colour", "blue")[0] != tax.map_attribute("leukemiaattri", "Cytoplasmic Basophilia", 1)[0]
    # Uni-Hema's COCO key spelling (sic) is an alias of the same attribute
    assert tax.map_attribute("leukemiaattri", "nuclear_chromatio", 1) == ("chromatin", "condensed")


# ---------------------------------------------------------------------------- rollups
def test_rollups(tax):
    assert tax.rollup("neutrophil_band") == "neutrophil"
    assert tax.rollup("lymphocyte_atypical") == "lymphocyte"
    assert tax.rollup("eosinophil_abnormal", "rollup5") == "eosinophil"
    assert tax.rollup("promyelocyte") is None
    assert tax.rollup("promyelocyte", "lineage") == "granulocyte_immature"
    assert tax.rollup("myeloblast", "lineage") == "blast_or_malignant"
    assert tax.rollup("plasmodium_ring", "group") == "parasite"
    assert tax.rollup("sickle_cell", "group") == "rbc"
    with pytest.raises(TaxonomyError, match="unknown canonical label"):
        tax.rollup("band")
    with pytest.raises(TaxonomyError, match="rollup level"):
        tax.rollup("neutrophil", "family")


# ---------------------------------------------------------------------------- validation on load
def _write_variant(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    edit(raw)
    p = tmp_path / "taxonomy.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return p


def test_load_is_cached_for_default_path():
    assert load_taxonomy() is load_taxonomy()
    assert load_taxonomy(DEFAULT_YAML) is load_taxonomy()


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda r: r["sources"]["bccd"]["labels"].__setitem__("WBC", "white_cell"), r"sources\.bccd\.labels: 'WBC' -> 'white_cell'"),
        (lambda r: r["labels"]["basophil"].__setitem__("group", "leukocyte"), r"labels\.basophil: group 'leukocyte'"),
        (lambda r: r["labels"]["basophil"].__setitem__("rollup5", "granulocyte"), r"labels\.basophil: rollup5 'granulocyte'"),
        (lambda r: r["sources"]["zheng2018_wbc"]["mask_classes"].__setitem__("128", "cyto"), r"sources\.zheng2018_wbc\.mask_classes: '128' -> 'cyto'"),
        (lambda r: r["sources"]["wbcatt"]["attributes"]["cell_size"]["values"].__setitem__("big", "large"), r"sources\.wbcatt\.attributes\.cell_size\.values: 'big' -> 'large'"),
        (lambda r: r["sources"]["wbcatt"]["attributes"]["cell_size"].__setitem__("name", "size"), r"sources\.wbcatt\.attributes\.cell_size: name 'size'"),
        (lambda r: r["sources"]["wbcatt"]["attributes"]["granularity"]["values"].__setitem__(True, "present"), r"sources\.wbcatt\.attributes\.granularity\.values: key True .*quote it"),
        (lambda r: r["sources"]["leukemiaattri"]["attribute_columns"]["6"].append("Cell Shape"), r"attribute_columns\.6: 'Cell Shape'"),
    ],
)
def test_invalid_taxonomy_fails_precisely(tmp_path, edit, pattern):
    p = _write_variant(tmp_path, edit)
    with pytest.raises(TaxonomyError, match=pattern):
        load_taxonomy(p)


def test_reload_after_edit(tmp_path):
    p = _write_variant(tmp_path, lambda r: None)
    a = load_taxonomy(p)
    p2 = _write_variant(tmp_path, lambda r: r["sources"]["bccd"]["labels"].__setitem__("Leukocyte", "wbc"))
    assert p2 == p
    b = load_taxonomy(p)
    assert b.map_label("bccd", "Leukocyte") == "wbc"
    with pytest.raises(UnmappedLabelError):
        a.map_label("bccd", "Leukocyte")


# ---------------------------------------------------------------------------- real native samples
def test_real_bccd_xml_names(tax):
    root = real("bccd")
    names = {o.findtext("name") for x in sorted(root.rglob("*.xml")) for o in ET.parse(x).getroot().iter("object")}
    assert names == {"WBC", "RBC", "Platelets"}
    assert {tax.map_label("bccd", n) for n in names} == {"wbc", "rbc", "platelet"}
    assert {tax.map_label("cbc_alam", n) for n in names} == {"wbc", "rbc", "platelet"}


def test_real_txl_pbc_class_lists(tax):
    root = real("txl_pbc")
    lists = sorted(root.rglob("classes.txt"))
    assert len(lists) == 4
    seen = set()
    for f in lists:
        names = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        mapped = [tax.map_label("txl_pbc", n, file=str(f)) for n in names]
        assert mapped == ["wbc", "rbc", "platelet"], f
        seen.update(names)
    data = yaml.safe_load((root / "TXL_PBC" / "data.yaml").read_text(encoding="utf-8"))
    assert [tax.map_label("txl_pbc", n) for n in data["names"]] == ["wbc", "rbc", "platelet"]
    seen.update(data["names"])
    assert {"Platelet", "Platelets", "PC"} <= seen
    ids = {ln.split()[0] for f in (root / "TXL_PBC" / "labels").rglob("*.txt") if f.name != "classes.txt" for ln in f.read_text().splitlines() if ln.strip()}
    assert ids and all(tax.map_label("txl_pbc", i) in {"wbc", "rbc", "platelet"} for i in ids)


def test_real_leukemiaattri_class_names(tax):
    root = real("leukemiaattri")
    names = yaml.safe_load((root / "data" / "WBC_v1.yaml").read_text(encoding="utf-8"))["names"]
    assert len(names) == 14
    for i, n in enumerate(names):
        assert tax.map_label("leukemiaattri", n) == tax.map_label("leukemiaattri", i), n
        assert tax.map_label("lld", n) == tax.map_label("leukemiaattri", n)
    assert tax.map_label("leukemiaattri", "Abnormal promyelocyte") == "promyelocyte_abnormal"
    # diagnosis suffix of the sample file names (<a>_<b>_<mag>_<disease>.png)
    for png in (root / "data" / "sample_data").glob("*.png"):
        assert tax.map_diagnosis("leukemiaattri", png.stem.split("_")[-1]) == "all"


def test_real_pbc_folders_and_prefixes(tax):
    root = real("pbc") / "PBC_dataset_normal_DIB"
    folders = sorted(d.name for d in root.iterdir() if d.is_dir())
    assert folders == ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"]
    for img in root.rglob("*.jpg"):
        folder_label = tax.map_label("pbc", img.parent.name, file=str(img))
        fine = tax.map_label("pbc", img.name.split("_")[0], file=str(img), table="label_prefixes")
        # the prefix refines the folder: same differential class and same group
        assert tax.rollup(fine, "group") == tax.rollup(folder_label, "group")
        assert tax.rollup(fine) == tax.rollup(folder_label)
    for prefix in "BA EO ERB PMY MY MMY IG LY MO BNE SNE NEUTROPHIL PLATELET".split():
        assert tax.map_label("pbc", prefix, table="label_prefixes") in tax.labels
    assert tax.map_label("pbc", "BNE", table="label_prefixes") == "neutrophil_band"
    assert tax.map_label("pbc", "MMY", table="label_prefixes") == "metamyelocyte"


def test_real_wbcatt_csvs(tax):
    root = real("wbcatt") / "submission"
    files = sorted(root.rglob("*.csv"))
    assert len(files) == 4
    attr_cols = list(WBCATT_EXPECTED)
    seen: dict[str, set[str]] = {c: set() for c in attr_cols}
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == ["img_name", "label", *attr_cols, "path"], f
            for row in reader:
                lab = tax.map_label("wbcatt", row["label"], file=str(f))
                fine = tax.map_label("wbcatt", row["img_name"].split("_")[0], file=str(f), table="label_prefixes")
                assert tax.rollup(fine) == tax.rollup(lab) == lab
                folder = row["path"].split("/")[1]
                assert tax.map_label("pbc", folder) == lab
                for c in attr_cols:
                    seen[c].add(row[c])
    for c in attr_cols:
        canon, values = WBCATT_EXPECTED[c]
        assert seen[c] == set(values), c  # every native value is covered, none invented
        for v in seen[c]:
            assert tax.map_attribute("wbcatt", c, v) == (canon, values[v])


def test_real_zheng2018_labels_and_masks(tax):
    from PIL import Image

    root = real("zheng2018_wbc")
    for f in sorted(root.glob("Class Labels of Dataset *.csv")):
        with f.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        values = {r[1].strip() for r in rows[1:] if r}
        assert values <= {"1", "2", "3", "4", "5"} and values
        assert {tax.map_label("zheng2018_wbc", v, file=str(f)) for v in values} <= set(tax.labels)
    assert [tax.map_label("zheng2018_wbc", i) for i in range(1, 6)] == ["neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"]
    for png in sorted(root.glob("Dataset */*.png")):
        vals = np.unique(np.asarray(Image.open(png)))
        assert {tax.map_mask_class("zheng2018_wbc", v, file=str(png)) for v in vals} <= {"background", "cytoplasm", "nucleus"}


def test_real_chula_rbc12(tax):
    root = real("chula_rbc12")
    types = {ln.split()[2] for f in (root / "Label").glob("*.txt") for ln in f.read_text().splitlines() if ln.strip()}
    assert {tax.map_label("chula_rbc12", t) for t in types} <= set(tax.labels)
    readme = (root / "README.md").read_text(encoding="utf-8")
    pairs = re.findall(r"^- (\d+) (.+?)\s*$", readme, flags=re.M)
    assert len(pairs) == 13
    for num, name in pairs:
        assert tax.map_label("chula_rbc12", name) == tax.map_label("chula_rbc12", num), name
    for d in (root / "RBC Diseases").iterdir():
        assert tax.map_diagnosis("chula_rbc12", d.name)


def test_real_aml_lmu_codes(tax):
    root = real("aml_cytomorphology_lmu")
    codes = re.findall(r"^([A-Z]{3}) ", (root / "abbreviations.txt").read_text(encoding="utf-8"), flags=re.M)
    assert len(codes) == 16  # 15 classes + UNC
    for c in codes:
        tax.map_label("aml_cytomorphology_lmu", c)
    tokens = set()
    for ln in (root / "annotations.dat").read_text(encoding="utf-8").splitlines():
        parts = ln.split()
        if parts:
            assert tax.map_label("aml_cytomorphology_lmu", parts[0].split("/")[0]) == tax.map_label("aml_cytomorphology_lmu", parts[1])
            tokens.update(parts[1:])
    for t in tokens:
        assert tax.is_ignored("aml_cytomorphology_lmu", t) or tax.map_label("aml_cytomorphology_lmu", t)


def test_real_bbbc041_categories(tax):
    data = json.loads((real("bbbc041") / "malaria" / "test.json").read_text(encoding="utf-8"))
    cats = {o["category"] for im in data for o in im["objects"]}
    assert "red blood cell" in cats
    mapped = {tax.map_label("bbbc041", c) for c in cats}
    assert "plasmodium_ring" in mapped and "rbc" in mapped


def test_real_segmentation_masks(tax):
    from PIL import Image

    for tif in sorted(real("all_idb2").glob("gt/*.tif")):
        colours = np.unique(np.asarray(Image.open(tif).convert("RGB")).reshape(-1, 3), axis=0)
        got = {tax.map_mask_class("all_idb2", ",".join(str(int(c)) for c in col), file=str(tif)) for col in colours}
        assert got == {"background", "nucleus", "cytoplasm"}
        assert tax.map_label("all_idb2", tif.stem.split("_")[-1]) in {"lymphoblast", "wbc"}
    for png in sorted(real("mohamed_far_wbc").glob("BloodImageSetS6NucSeg_masks/*.png")):
        vals = np.unique(np.asarray(Image.open(png)))
        assert {tax.map_mask_class("mohamed_far_wbc", v, file=str(png)) for v in vals} == {"background", "nucleus"}
    mask = np.asarray(Image.open(real("bbbc041seg") / "Mask.png"))
    assert {tax.map_mask_class("bbbc041seg", v) for v in np.unique(mask)} == {"background", "cell"}


# Stable class ids: the first 75 labels as released with SCHEMA_VERSION 2. Never edit this tuple;
# a new label appends to taxonomy.yaml with the next id and may be appended here.
RELEASED_CLASS_IDS = ('wbc', 'neutrophil', 'neutrophil_segmented', 'neutrophil_band', 'eosinophil',
    'eosinophil_abnormal', 'basophil', 'immature_granulocyte', 'promyelocyte', 'promyelocyte_bilobed',
    'promyelocyte_abnormal', 'faggot_cell', 'myelocyte', 'metamyelocyte', 'myeloblast', 'monoblast',
    'promonocyte', 'monocyte', 'blast', 'lymphoblast', 'b_lymphoid_precursor', 'lymphocyte',
    'lymphocyte_atypical', 'lymphocyte_immature', 'prolymphocyte', 'hairy_cell', 'plasma_cell',
    'unknown_precursor', 'smudge_cell', 'erythroblast', 'proerythroblast', 'rbc', 'rbc_normal',
    'rbc_circular', 'rbc_elongated', 'sickle_cell', 'macrocyte', 'microcyte', 'spherocyte',
    'target_cell', 'stomatocyte', 'ovalocyte', 'elliptocyte', 'teardrop_cell', 'burr_cell',
    'schistocyte', 'keratocyte', 'acanthocyte', 'hypochromic_rbc', 'polychromatic_rbc', 'rbc_other',
    'platelet', 'platelet_giant', 'platelet_aggregate', 'parasite', 'plasmodium', 'plasmodium_ring',
    'plasmodium_trophozoite', 'plasmodium_schizont', 'plasmodium_gametocyte', 'plasmodium_falciparum',
    'plasmodium_vivax', 'plasmodium_malariae', 'plasmodium_ovale', 'babesia', 'leishmania',
    'toxoplasma', 'trichomonad', 'trypanosome', 'blood_cell', 'tb_bacillus', 'artifact',
    'not_identifiable', 'other_cell', 'unlabeled')


def test_class_ids_are_stable_and_never_renumbered(tax):
    names = tax.class_names()
    assert names[: len(RELEASED_CLASS_IDS)] == RELEASED_CLASS_IDS
    for i, name in enumerate(names):
        assert tax.class_id(name) == i
    with pytest.raises(KeyError, match="no_such_cell"):
        tax.class_id("no_such_cell")


def test_duplicate_or_gapped_class_ids_are_refused(tmp_path):
    import unihema_data.taxonomy as taxmod
    raw = yaml.safe_load(Path(taxmod.__file__).with_name("taxonomy.yaml").read_text())
    raw["labels"]["neutrophil"]["id"] = 0  # same as wbc
    with pytest.raises(TaxonomyError, match="ids must be unique"):
        taxmod.Taxonomy(raw)
