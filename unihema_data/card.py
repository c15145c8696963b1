"""Dataset card (``OUT/README.md``) with one YAML ``configs`` entry per source plus ``all``.

The card is rendered from the output folder's manifest and the catalog, never edited by hand.
``all`` unions every *source* config (derived text sets such as ``wbcatt_vqa`` keep their own
configs only, since their rows repeat images of their parent source).
"""
from __future__ import annotations

from pathlib import Path

import yaml
from datasets import DatasetInfo, SplitDict, SplitInfo

from .catalog import load_catalog
from .outdir import atomic_write_text, read_manifest, source_files
from .schema import SCHEMA_VERSION, SPLITS

TEXTSET_NOTICE = (
    "The text sets (`wbcatt_vqa`, `wbcatt_caption`, `leukemiaattri_mlm`) are **semi-synthetic**: they are "
    "generated from ground-truth morphology annotations by deterministic templates and verified by "
    "parsing each text back into (attribute, value) pairs. They are for research only and are **not for "
    "medical use**."
)


def build_dataset_info(out: Path, configs: list[dict]) -> list[dict]:
    """``dataset_info`` per config: features, split sizes (rows, Parquet bytes) and total size.

    Besides documenting the data for the Hub viewer, this makes the card change whenever a source
    is reconverted: ``datasets`` keys its local cache on the card's configs and infos, so stale
    cached rows are never served after a reconversion."""
    from .schema import FEATURES

    manifest = read_manifest(out)
    infos = []
    for cfg in configs:
        name = cfg["config_name"]
        members = [s for s in manifest["sources"]
                   if name == s or (name == "all" and manifest["sources"][s].get("kind", "source") == "source")]
        splits = SplitDict()
        total = 0
        for split in SPLITS:
            rows = nbytes = 0
            for s in members:
                files = source_files(out, s).get(split, [])
                nbytes += sum(f.stat().st_size for f in files)
                rows += manifest["sources"][s].get("counts", {}).get(split, 0) if files else 0
            if rows:
                splits.add(SplitInfo(split, num_bytes=nbytes, num_examples=rows))
                total += nbytes
        info = DatasetInfo(features=FEATURES, splits=splits, dataset_size=total, download_size=total)
        infos.append({"config_name": name, **info._to_yaml_dict()})
    return infos


def build_configs(out: Path) -> list[dict]:
    manifest = read_manifest(out)
    configs: list[dict] = []
    all_splits: dict[str, list[str]] = {}
    for source in sorted(manifest["sources"]):
        files = source_files(out, source)
        if not files:
            continue
        data_files = [{"split": s, "path": f"data/{source}/{s}-*.parquet"} for s in SPLITS if s in files]
        configs.append({"config_name": source, "data_files": data_files})
        if manifest["sources"][source].get("kind", "source") == "source":
            for s in files:
                all_splits.setdefault(s, []).append(f"data/{source}/{s}-*.parquet")
    if all_splits:
        configs.insert(
            0,
            {
                "config_name": "all",
                "data_files": [{"split": s, "path": all_splits[s]} for s in SPLITS if s in all_splits],
                "default": True,
            },
        )
    return configs


_TASK_CATEGORIES = {
    "detection": "object-detection", "segmentation": "image-segmentation", "classification": "image-classification",
    "attributes": "image-classification", "vqa": "visual-question-answering", "mlm": "fill-mask",
    "caption": "image-to-text",
}


def _task_categories(manifest: dict) -> list[str]:
    """Hub task categories of the sources present (catalog tasks; text sets by their task)."""
    catalog = load_catalog()
    tasks: list[str] = []
    for sid, m in sorted(manifest["sources"].items()):
        if m.get("task"):
            tasks.append(m["task"])
        elif sid in catalog.ids():
            tasks.extend(catalog.get(sid).tasks)
    return sorted({_TASK_CATEGORIES[t] for t in tasks if t in _TASK_CATEGORIES})


SPLIT_POLICY = (
    "Published splits are kept; sources without one get a seeded grouped split. Rows showing the same "
    "picture (byte-identical, or near-duplicates such as resized or re-encoded copies) across all sources "
    "form a group that takes one split: the strongest of its members (published test > validation > train > "
    "generated), so no image of a published test split is trained on. Such rows carry `duplicate_of:` / "
    "`near_duplicate_of:`, moved rows `split_moved:<from>-><to>:<why>:<sample_id>`, and identical images "
    "whose annotations disagree `label_conflict:<sample_id>:<its label>`; `source_split` is never changed."
)


def render_card(out: Path) -> str:
    out = Path(out)
    manifest = read_manifest(out)
    catalog = load_catalog()
    known = set(catalog.ids())
    licenses = sorted({manifest["sources"][s].get("license", "unknown") for s in manifest["sources"]})
    configs = build_configs(out)
    header = {
        "configs": configs,
        "dataset_info": build_dataset_info(out, configs),
        "license": licenses[0].lower() if len(licenses) == 1 and licenses[0] not in ("other", "unknown") else "other",
        "tags": ["hematology", "microscopy", "blood-cells", "unihema", "medical"],
        "task_categories": _task_categories(manifest),
        "pretty_name": "UniHema unified hematology corpus",
    }
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             "# UniHema unified hematology corpus", "",
             f"Converted by `unihema-data` (schema version {SCHEMA_VERSION}). One row per image; see the "
             "schema conventions in `unihema_data/schema.py` (COCO `[x, y, w, h]` absolute boxes, RLE masks, "
             "`label`/`objects.category` as `ClassLabel` ids of the canonical taxonomy (stable across corpora) "
             "with verbatim `source_label`).", "",
             "| config | kind | license | train | validation | test |", "|---|---|---|---|---|---|"]
    for source in sorted(manifest["sources"]):
        m = manifest["sources"][source]
        c = m.get("counts", {})
        lines.append(f"| {source} | {m.get('kind', 'source')} | {m.get('license', '')} | "
                     f"{c.get('train', 0)} | {c.get('validation', 0)} | {c.get('test', 0)} |")
    lines += ["", "## Splits and duplicates", "", SPLIT_POLICY]
    moved = [(s, m["moved"]) for s, m in sorted(manifest["sources"].items()) if m.get("moved")]
    if moved:
        lines += ["", "Rows moved from their published or generated split by this policy:", ""]
        lines += [f"- `{s}`: " + ", ".join(f"{k}: {n}" for k, n in d.items()) for s, d in moved]
    if any(m.get("kind") == "textset" for m in manifest["sources"].values()):
        lines += ["", "## Text sets", "", TEXTSET_NOTICE]
    lines += ["", "## Sources", ""]
    for source in sorted(manifest["sources"]):
        if source not in known:
            continue
        e = catalog.get(source)
        lines += [f"### {e.name} (`{e.id}`)", "", f"- Citation: {e.citation}" + (f" DOI: {e.doi}" if e.doi else ""),
                  f"- Homepage: {e.homepage}", f"- License: {e.license}" + (f" ({e.license_note})" if e.license_note else ""),
                  f"- Redistributable: {e.redistributable}"]
        for issue in e.known_issues:
            lines.append(f"- Known issue: {issue}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_card(out: Path) -> None:
    atomic_write_text(Path(out) / "README.md", render_card(out))
