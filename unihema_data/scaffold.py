"""``unihema-data new-adapter <id> --family F``: write the skeleton of a new source adapter.

Like ``tfds new``: for a catalog id it writes

* ``unihema_data/adapters/<id>.py`` - a subclass of the family base
  (:mod:`unihema_data.adapters.families`) with its declaration, the per-record hooks to fill in
  and a working synthetic generator (``fake``) of the family's layout;
* an alias-table stub ``sources.<id>`` in ``taxonomy.yaml`` when there is none yet (``labels: {}``,
  the fake's native labels listed in a comment: until they are mapped, conversion fails loudly
  naming them); an existing table is kept;
* ``adapter: implemented`` on the catalog entry, so the generic harness
  (``tests/test_adapters.py``) covers the source at once.

Nothing is overwritten: an existing adapter module is an error. The id must be
in the catalog (add the entry first; ``unihema-data info <id>`` shows it).
"""
from __future__ import annotations

import re
from pathlib import Path

FAMILIES = ("class_folders", "voc", "yolo", "image_mask", "instance_mask", "coco", "cvat")


class ScaffoldError(Exception):
    """The skeleton cannot be written; the message says why."""


_HEAD = '''"""{name}: TODO one-line description, citation and DOI.

Native layout (TODO: check every name against the real download; ``locate`` accepts up to two
levels above the root)::

{layout}

Conventions (TODO: fill in from the research notes, mark guesses UNCONFIRMED):
* Labels: verbatim native strings, mapped by ``sources.{id}`` in ``taxonomy.yaml``.
* Split: {split}
* ``group_id``: TODO patient / slide id if the source has one (grouped splits hold).

Quirks handled: TODO.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import _synthetic as syn
from .base import FakeSample, FakeTruth
'''

_BODY = {
    "class_folders": ('''    <root>/<class>/<image>.png''', "none published (grouped fallback split).", '''from .families import ClassFolderAdapter, FileRecord

CLASSES = ("class_a", "class_b")  # TODO: the real class folder names


class {cls}(ClassFolderAdapter):
    id = "{id}"
    version = "1"
    markers = CLASSES[:1]  # TODO: folders/files that must exist at the root
    classes = CLASSES

    def group_id(self, rec: FileRecord) -> str:
        return ""  # TODO

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """TODO: reproduce the real quirks (hidden files, odd sizes, duplicates...)."""
        root = Path(out) / "{id}"
        truth = {{}}
        for k, cls in enumerate(CLASSES):
            rel = f"{{cls}}/{{cls}}_{{k:04d}}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            syn.single_cell(64, "wbc", seed * 100 + k).save(root / rel)
            truth[rel] = FakeSample(rel_path=rel, label=cls)
        return FakeTruth(root=root, samples=truth)
''', ["class_a", "class_b"]),
    "voc": ('''    <root>/Annotations/<stem>.xml
    <root>/JPEGImages/<stem>.jpg
    <root>/ImageSets/Main/{{train,val,test}}.txt''', "the ImageSets/Main lists.", '''from ..formats.voc import VocObject, write_voc
from .families import VocAdapter


class {cls}(VocAdapter):
    id = "{id}"
    version = "1"
    markers = ("Annotations", "JPEGImages")

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        rng = np.random.default_rng(seed)
        root = Path(out) / "{id}"
        for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (root / d).mkdir(parents=True, exist_ok=True)
        W, H = 320, 240
        truth, splits = {{}}, {{"train": [], "test": []}}
        for k in range(4):
            stem = f"img_{{k:04d}}"
            boxes = syn.random_boxes(rng, W, H, 3)
            names = ["class_a", "class_b", "class_a"]
            (root / "JPEGImages" / f"{{stem}}.jpg").write_bytes(
                syn.encode(syn.smear(W, H, [(b, "wbc") for b in boxes], seed + k), "JPEG", quality=90))
            write_voc(root / "Annotations" / f"{{stem}}.xml", f"{{stem}}.jpg", W, H,
                      [VocObject(n, (x + 1, y + 1, x + w, y + h)) for n, (x, y, w, h) in zip(names, boxes)])
            split = "test" if k == 3 else "train"
            splits[split].append(stem)
            truth[f"JPEGImages/{{stem}}.jpg"] = FakeSample(f"JPEGImages/{{stem}}.jpg", boxes=boxes, categories=names,
                                                         source_split=split, group_id=stem)
        for split, stems in splits.items():
            (root / "ImageSets" / "Main" / f"{{split}}.txt").write_text("\\n".join(stems) + "\\n")
        return FakeTruth(root=root, samples=truth)
''', ["class_a", "class_b"]),
    "yolo": ('''    <root>/data.yaml                      names: [...]
    <root>/images/{{train,val,test}}/<stem>.jpg
    <root>/labels/{{train,val,test}}/<stem>.txt   cls xc yc w h (normalized)''', "the images/<split> folder.", '''from ..formats import yolo
from .families import YoloAdapter

NAMES = ["class_a", "class_b"]  # TODO: from the real data.yaml


class {cls}(YoloAdapter):
    id = "{id}"
    version = "1"
    markers = ("images", "labels", "data.yaml")

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        rng = np.random.default_rng(seed)
        root = Path(out) / "{id}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "data.yaml").write_text(f"nc: {{len(NAMES)}}\\nnames: {{NAMES}}\\n")
        W, H = 320, 240
        truth = {{}}
        for k, split in enumerate(("train", "train", "val", "test")):
            stem = f"img_{{k:04d}}"
            boxes = syn.random_boxes(rng, W, H, 3)
            classes = [0, 1, 0]
            lines = [yolo.format_row(c, yolo.coco_to_yolo(b, W, H)) for c, b in zip(classes, boxes)]
            coco = [yolo.yolo_to_coco([float(t) for t in ln.split()[1:5]], W, H) for ln in lines]
            img = root / "images" / split / f"{{stem}}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            img.write_bytes(syn.encode(syn.smear(W, H, [(b, "wbc") for b in boxes], seed + k), "JPEG", quality=90))
            yolo.write_yolo(root / "labels" / split / f"{{stem}}.txt", lines)
            rel = f"images/{{split}}/{{stem}}.jpg"
            truth[rel] = FakeSample(rel, boxes=coco, categories=[NAMES[c] for c in classes], source_split=split)
        return FakeTruth(root=root, samples=truth)
''', ["class_a", "class_b"]),
    "image_mask": ('''    <root>/images/<stem>.png
    <root>/masks/<stem>.png      8-bit, native values in MASK_VALUES''', "none published (grouped fallback split).", '''from .families import ImageMaskPairAdapter

MASK_VALUES = {{0: "background", 255: "nucleus"}}  # TODO: native value -> native class name


class {cls}(ImageMaskPairAdapter):
    id = "{id}"
    version = "1"
    markers = ("images", "masks")
    mask_values = MASK_VALUES

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        rng = np.random.default_rng(seed)
        root = Path(out) / "{id}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        truth = {{}}
        for k in range(3):
            syn.single_cell(48, "wbc", seed * 10 + k).save(root / "images" / f"{{k:03d}}.png")
            mask = np.zeros((48, 48), np.uint8)
            y, x = (int(v) for v in rng.integers(8, 30, size=2))
            mask[y:y + 12, x:x + 10] = 255
            Image.fromarray(mask).save(root / "masks" / f"{{k:03d}}.png")
            truth[f"images/{{k:03d}}.png"] = FakeSample(f"images/{{k:03d}}.png", semantic_mask=mask)
        return FakeTruth(root=root, samples=truth)
''', ["background", "nucleus"]),
    "instance_mask": ('''    <root>/images/<stem>.png
    <root>/masks/<stem>.png      16-bit instance ids, 0 = background''', "none published (grouped fallback split).", '''from .families import InstanceMaskPairAdapter


class {cls}(InstanceMaskPairAdapter):
    id = "{id}"
    version = "1"
    markers = ("images", "masks")

    def instance_category(self, rec, value) -> str:
        return "cell"  # TODO: the native class of an instance

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        root = Path(out) / "{id}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        truth = {{}}
        for k in range(2):
            Image.fromarray(np.full((60, 80, 3), 220, np.uint8)).save(root / "images" / f"{{k:03d}}.png")
            inst = np.zeros((60, 80), np.uint16)
            inst[5:20, 5:25], inst[30:50, 40:70] = 1, 2
            Image.fromarray(inst).save(root / "masks" / f"{{k:03d}}.png")
            truth[f"images/{{k:03d}}.png"] = FakeSample(
                f"images/{{k:03d}}.png", categories=["cell", "cell"], boxes=[[5, 5, 20, 15], [40, 30, 30, 20]],
                object_masks=[inst == 1, inst == 2])
        return FakeTruth(root=root, samples=truth)
''', ["cell"]),
    "coco": ('''    <root>/annotations/instances.json      COCO instances (polygons / RLE)
    <root>/images/<file_name>''', "per annotation file (annotation_files).", '''import json

from pycocotools import mask as mask_utils

from .families import CocoJsonAdapter


class {cls}(CocoJsonAdapter):
    id = "{id}"
    version = "1"
    markers = ("annotations/instances.json",)
    annotation_files = {{"train": ("annotations/instances.json", "images")}}

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        root = Path(out) / "{id}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(exist_ok=True)
        W, H = 80, 60
        Image.fromarray(np.full((H, W, 3), 220, np.uint8)).save(root / "images" / "a.png")
        poly = [10.0, 10.0, 30.0, 10.0, 30.0, 25.0, 10.0, 25.0]
        data = {{"images": [{{"id": 1, "file_name": "a.png", "width": W, "height": H}}],
                "categories": [{{"id": 1, "name": "class_a"}}],
                "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 15],
                                 "segmentation": [poly], "iscrowd": 0}}]}}
        (root / "annotations" / "instances.json").write_text(json.dumps(data))
        m = mask_utils.decode(mask_utils.frPyObjects([poly], H, W)[0])
        return FakeTruth(root=root, samples={{"images/a.png": FakeSample(
            "images/a.png", boxes=[[10, 10, 20, 15]], categories=["class_a"], object_masks=[m], source_split="train")}})
''', ["class_a"]),
    "cvat": ('''    <root>/annotations.xml     CVAT for images 1.1 (boxes, polygons)
    <root>/images/<name>''', "none published (grouped fallback split).", '''from .families import CvatXmlAdapter


class {cls}(CvatXmlAdapter):
    id = "{id}"
    version = "1"
    markers = ("annotations.xml", "images")

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        root = Path(out) / "{id}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((60, 80, 3), 220, np.uint8)).save(root / "images" / "a.png")
        (root / "annotations.xml").write_text(
            '<annotations><version>1.1</version><image id="0" name="a.png" width="80" height="60">'
            '<box label="class_a" xtl="4" ytl="5" xbr="24" ybr="20"/></image></annotations>')
        return FakeTruth(root=root, samples={{"images/a.png": FakeSample(
            "images/a.png", boxes=[[4, 5, 20, 15]], categories=["class_a"])}})
''', ["class_a"]),
}


def class_name(sid: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in sid.split("_")) + "Adapter"


def render_adapter(sid: str, family: str, name: str = "") -> str:
    if family not in FAMILIES:
        raise ScaffoldError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    layout, split, body, _labels = _BODY[family]
    head = _HEAD.format(name=name or sid, layout=layout.replace("{{", "{").replace("}}", "}"), id=sid, split=split)
    return head + body.format(cls=class_name(sid), id=sid) + f"\n\nADAPTER = {class_name(sid)}\n"


def _catalog_path(root: Path) -> Path:
    for p in (root / "unihema_data" / "catalog.yaml", root / "catalog.yaml"):
        if p.is_file():
            return p
    raise ScaffoldError(f"no catalog.yaml under {root}")


def set_catalog_status(text: str, sid: str) -> str:
    """``adapter: implemented`` on the entry ``sid`` of a catalog YAML text (format kept)."""
    m = re.search(rf"^([ \t]*)- id: {re.escape(sid)}[ \t]*$", text, flags=re.M)
    if not m:
        raise ScaffoldError(f"{sid!r} is not in the catalog: add its entry first")
    indent = m.group(1) + "  "
    start = m.end()
    nxt = re.search(rf"^{re.escape(m.group(1))}- id: ", text[start:], flags=re.M)
    end = start + nxt.start() if nxt else len(text)
    entry = text[start:end]
    if re.search(rf"^{indent}adapter:", entry, flags=re.M):
        entry = re.sub(rf"^{indent}adapter:.*$", f"{indent}adapter: implemented", entry, count=1, flags=re.M)
    else:
        body = entry.rstrip("\n")
        entry = body + f"\n{indent}adapter: implemented\n" + entry[len(body) + 1:]
    return text[:start] + entry + text[end:]


def add_alias_stub(text: str, sid: str, labels: list[str], family: str) -> str:
    if re.search(rf"^  {re.escape(sid)}:", text, flags=re.M):
        raise ScaffoldError(f"taxonomy.yaml already has an alias table for {sid!r}")
    key = "mask_classes" if family == "image_mask" else "labels"
    stub = (f"\n  {sid}:\n    notes: \"TODO: evidence for every native string (research notes).\"\n"
            f"    # TODO: map every native {'mask class' if key == 'mask_classes' else 'label'} to a canonical name; "
            f"the generated fake uses: {', '.join(labels)}\n"
            f"    labels: {{}}\n" + ("    mask_classes: {}\n" if key == "mask_classes" else ""))
    return text.rstrip("\n") + "\n" + stub


def new_adapter(sid: str, family: str, root: Path) -> list[Path]:
    """Write the skeleton under the repository ``root``; returns the files written or changed."""
    import yaml

    if not re.fullmatch(r"[a-z][a-z0-9_]*", sid):
        raise ScaffoldError(f"{sid!r} is not a valid source id (lowercase letters, digits, _)")
    if family not in FAMILIES:
        raise ScaffoldError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    pkg = root / "unihema_data"
    module = pkg / "adapters" / f"{sid}.py"
    if module.exists():
        raise ScaffoldError(f"{module} already exists")
    cat_path = _catalog_path(root)
    cat_text = cat_path.read_text(encoding="utf-8")
    entry = next((d for d in yaml.safe_load(cat_text)["datasets"] if d.get("id") == sid), None)
    if entry is None:
        raise ScaffoldError(f"{sid!r} is not in {cat_path}: add its catalog entry first")
    tax_path = pkg / "taxonomy.yaml"
    tax_text = tax_path.read_text(encoding="utf-8")
    has_table = sid in (yaml.safe_load(tax_text).get("sources") or {})
    new_tax = tax_text if has_table else add_alias_stub(tax_text, sid, _BODY[family][3], family)
    new_cat = set_catalog_status(cat_text, sid)
    module.write_text(render_adapter(sid, family, entry.get("name", sid)), encoding="utf-8")
    written = [module, cat_path]
    if not has_table:  # an existing alias table (research already mapped the source) is kept
        tax_path.write_text(new_tax, encoding="utf-8")
        written.insert(1, tax_path)
    cat_path.write_text(new_cat, encoding="utf-8")
    return written


__all__ = ["FAMILIES", "ScaffoldError", "new_adapter", "render_adapter"]
