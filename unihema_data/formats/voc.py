"""Pascal VOC XML annotations.

Boxes are returned verbatim as ``(xmin, ymin, xmax, ymax)`` floats in the VOC convention: 1-based,
inclusive pixel indices (:attr:`unihema_data.boxes.BoxFormat.VOC`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import CorruptInputError
from . import disk


@dataclass
class VocObject:
    name: str
    bbox: tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False


@dataclass
class VocAnnotation:
    path: Path
    filename: str
    width: Optional[int]
    height: Optional[int]
    objects: list[VocObject] = field(default_factory=list)


def parse_voc(path: Path, allow_inverted: bool = False) -> VocAnnotation:
    """Parse one VOC XML file (type checked before opening: a FIFO is refused, never read).
    A box with ``xmax < xmin`` or ``ymax < ymin`` is an error unless ``allow_inverted`` (then
    returned as-is for the caller to drop and report)."""
    data = disk.read_bytes(path, "VOC XML file")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError) as e:
        raise CorruptInputError(f"{path}: not a readable Pascal VOC XML file ({e})") from None
    if root.tag != "annotation":
        raise CorruptInputError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    width = _int(size, "width", path) if size is not None else None
    height = _int(size, "height", path) if size is not None else None
    ann = VocAnnotation(path, (root.findtext("filename") or "").strip(), width, height)
    for i, obj in enumerate(root.iter("object")):
        name = obj.findtext("name")
        if name is None or not name.strip():
            raise CorruptInputError(f"{path}: object {i} has no <name>")
        bb = obj.find("bndbox")
        if bb is None:
            raise CorruptInputError(f"{path}: object {i} ({name.strip()}) has no <bndbox>")
        coords = (_float(bb, "xmin", path, i), _float(bb, "ymin", path, i), _float(bb, "xmax", path, i),
                  _float(bb, "ymax", path, i))
        if (coords[2] < coords[0] or coords[3] < coords[1]) and not allow_inverted:
            raise CorruptInputError(f"{path}: object {i} ({name.strip()}) has xmax<xmin or ymax<ymin: {coords}")
        ann.objects.append(
            VocObject(name.strip(), coords, obj.findtext("difficult", "0").strip() == "1",
                      obj.findtext("truncated", "0").strip() == "1")
        )
    return ann


def _int(node, tag: str, path: Path) -> Optional[int]:
    txt = node.findtext(tag)
    if txt is None or not txt.strip():
        return None
    try:
        return int(float(txt))
    except ValueError:
        raise CorruptInputError(f"{path}: <{tag}> is not a number: {txt!r}") from None
    except OverflowError:  # int(float("inf"))
        raise CorruptInputError(f"{path}: <{tag}> is not finite: {txt!r}") from None


def _float(node, tag: str, path: Path, i: int) -> float:
    txt = node.findtext(tag)
    try:
        return float(txt)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CorruptInputError(f"{path}: object {i}: <{tag}> is missing or not a number: {txt!r}") from None


def write_voc(path: Path, filename: str, width: int, height: int, objects: list[VocObject], folder: str = "JPEGImages") -> None:
    """Write a VOC XML file (used by fake-data generators and exports)."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = folder
    ET.SubElement(ann, "filename").text = filename
    ET.SubElement(ann, "path").text = f"/home/pi/detection_dataset/{folder}/{filename}"
    src = ET.SubElement(ann, "source")
    ET.SubElement(src, "database").text = "Unknown"
    size = ET.SubElement(ann, "size")
    for k, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, k).text = str(v)
    ET.SubElement(ann, "segmented").text = "0"
    for o in objects:
        ob = ET.SubElement(ann, "object")
        ET.SubElement(ob, "name").text = o.name
        ET.SubElement(ob, "pose").text = "Unspecified"
        ET.SubElement(ob, "truncated").text = str(int(o.truncated))
        ET.SubElement(ob, "difficult").text = str(int(o.difficult))
        bb = ET.SubElement(ob, "bndbox")
        for k, v in zip(("xmin", "ymin", "xmax", "ymax"), o.bbox):
            ET.SubElement(bb, k).text = str(int(v)) if float(v).is_integer() else str(v)
    ET.indent(ann, space="\t")
    Path(path).write_text(ET.tostring(ann, encoding="unicode") + "\n", encoding="utf-8")
