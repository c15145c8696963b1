"""Dataset card (``README.md``) of a converted corpus, built with ``huggingface_hub``'s
:class:`~huggingface_hub.DatasetCard` / :class:`~huggingface_hub.DatasetCardData`.

The card is rendered from the output folder's manifest, its Parquet shards and the catalog, never
edited by hand; ``convert`` and ``generate`` rewrite it after every change and ``publish`` renders
it for the staged upload (there with the excluded sources listed).

Metadata (YAML header)
    * ``configs``: one per source (``data/<source>/<split>-*.parquet``) plus ``all`` (the default),
      which unions every *source* config. Derived text sets (``wbcatt_vqa``...) keep their own config
      only, since their rows repeat images of their parent source.
    * ``dataset_info``: split sizes (rows, bytes) of every config; the features are written once (on
      the default config), not repeated per config; the other configs read the features from the
      Hugging Face metadata each Parquet shard carries. The split sizes also make the card change
      whenever a source is reconverted, so ``datasets``' cache of a local folder (keyed on the card's
      configs and infos) never serves stale rows.
    * ``license``: Hub license ids (https://huggingface.co/docs/hub/repositories-licenses), mapped
      from the catalog's SPDX ids by :func:`hub_license`; ``other`` comes with ``license_name`` and
      ``license_link`` (``LICENSE.md``, written next to the card, lists every source's terms).
    * ``size_categories``, ``language`` (``en``: prompts and text sets are English),
      ``annotations_creators``, ``language_creators``, ``source_datasets``, ``task_categories``,
      ``tags``, ``pretty_name``.

Body: summary, per-source table (license, redistributable, rows per split, what the conversion
changed), sample grid per source (``previews/<source>.png``, see :mod:`unihema_data.preview`),
split and de-duplication policy, QC summary from ``qc_flags``, the schema written out, BibTeX of
every source, the schema version and changelog, the not-for-clinical-use notice of the
semi-synthetic text sets, and (for ``publish``) the excluded sources with the rebuild command.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from .catalog import load_catalog
from .outdir import atomic_write_text, read_manifest, source_files
from .schema import SCHEMA_VERSION, SPLITS

if TYPE_CHECKING:  # datasets / huggingface_hub are imported where used (fast `import unihema_data`)
    from huggingface_hub import DatasetCardData

log = logging.getLogger(__name__)

PRETTY_NAME = "UniHema unified hematology corpus"
LICENSE_FILE = "LICENSE.md"

TEXTSET_NOTICE = (
    "The text sets ({textsets}) are **semi-synthetic**: they are "
    "generated from ground-truth morphology annotations by deterministic templates and verified by "
    "parsing each text back into (attribute, value) pairs. They are for research only and are **not for "
    "medical use**: not for clinical use, diagnosis or treatment decisions."
)

#: Schema version -> what changed. A schema change bumps ``schema.SCHEMA_VERSION`` and adds a line here
#: (``tests/test_publish.py`` checks the current version is listed).
SCHEMA_CHANGELOG: dict[str, str] = {
    "1.0.0": "First release: one row per image for every source and task; COCO absolute boxes, COCO "
             "RLE masks, canonical taxonomy labels with verbatim source labels, qc_flags.",
    "2.0.0": "`label` and `objects.category` are `ClassLabel` ids over the taxonomy's stable id table (identical "
             "across corpora); new columns `label_group`, `label_cl` (Cell Ontology id) and `image_phash`; one "
             "split policy over the whole corpus (duplicate and near-duplicate groups take their strongest "
             "published split); `label_conflict`, `near_duplicate_of`, `degenerate_native_box` flags.",
    "2.1.0": "Same columns. New `bbox_source` value `from_circle` (a box made as the square around an annotated "
             "circle, whose centre is kept in `point`: NLM thick smears); single-cell crop rows cut from a field "
             "of view share its `group_id` (chula_rbc12, erythrocytesIDB1), and a duplicate moved to another "
             "split takes its whole (source, `group_id`) group along (`split_moved:...:group:...`); published "
             "VQA sets (wbcmor_vqa) fill `question`/`answer` like the generated ones.",
}

#: License ids the Hub accepts in the ``license`` field: the table of
#: https://huggingface.co/docs/hub/repositories-licenses (hub-docs ``docs/hub/repositories-licenses.md``).
#: Newer ids the Hub may have added since are deliberately not used: a card with these validates everywhere.
HUB_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl
gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql
ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown other
""".split())

#: SPDX ids whose Hub id is not simply the lowercased SPDX id.
_SPDX_TO_HUB = {
    "gpl-3.0-only": "gpl-3.0", "gpl-3.0-or-later": "gpl-3.0", "gpl-2.0-only": "gpl-2.0",
    "gpl-2.0-or-later": "gpl-2.0", "lgpl-3.0-only": "lgpl-3.0", "lgpl-3.0-or-later": "lgpl-3.0",
    "lgpl-2.1-only": "lgpl-2.1", "lgpl-2.1-or-later": "lgpl-2.1", "agpl-3.0-only": "agpl-3.0",
    "agpl-3.0-or-later": "agpl-3.0", "odbl-1.0": "odbl", "odc-by-1.0": "odc-by", "pddl-1.0": "pddl",
}

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (10**9, "100M<n<1B"),
                   (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))

_TASK_CATEGORIES = {
    "detection": "object-detection", "segmentation": "image-segmentation", "classification": "image-classification",
    "attributes": "image-classification", "vqa": "visual-question-answering", "mlm": "fill-mask",
    "caption": "image-to-text",
}

UNIHEMA_BIBTEX = """@inproceedings{rehman2026unihema,
  title     = {Uni-Hema: Unified Model for Digital Hematopathology},
  author    = {Rehman, Abdul and Rasool, Iqra and Imran, Ayisha and Ali, Mohsen and Sultani, Waqas},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2026},
  eprint    = {2511.13889},
  archivePrefix = {arXiv},
  doi       = {10.48550/arXiv.2511.13889}
}"""


def hub_license(spdx: str) -> str:
    """Hub license id of a catalog license (SPDX id, ``other`` or ``unknown``): the lowercased id when
    the Hub lists it, a known alias (``GPL-3.0-only`` -> ``gpl-3.0``), else ``other``."""
    s = (spdx or "unknown").strip().lower()
    s = _SPDX_TO_HUB.get(s, s)
    return s if s in HUB_LICENSES else "other"


def size_category(n: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if n < limit:
            return name
    return "n>1T"


# ----------------------------------------------------------------------------------------- configs


def _members(manifest: dict, name: str, sources: Sequence[str]) -> list[str]:
    if name == "all":
        return [s for s in sources if manifest["sources"][s].get("kind", "source") == "source"]
    return [name]


def build_configs(out: Path, sources: Optional[Sequence[str]] = None) -> list[dict]:
    """``configs`` entries: one per source with shards (restricted to ``sources``), plus ``all``."""
    manifest = read_manifest(out)
    configs: list[dict] = []
    all_splits: dict[str, list[str]] = {}
    for source in _card_sources(out, manifest, sources):
        files = source_files(out, source)
        data_files = [{"split": s, "path": f"data/{source}/{s}-*.parquet"} for s in SPLITS if s in files]
        configs.append({"config_name": source, "data_files": data_files})
        if manifest["sources"][source].get("kind", "source") == "source":
            for s in files:
                all_splits.setdefault(s, []).append(f"data/{source}/{s}-*.parquet")
    if all_splits:
        configs.insert(0, {"config_name": "all", "default": True,
                           "data_files": [{"split": s, "path": all_splits[s]} for s in SPLITS if s in all_splits]})
    return configs


def _card_sources(out: Path, manifest: dict, sources: Optional[Sequence[str]]) -> list[str]:
    present = sorted(s for s in manifest["sources"] if source_files(out, s))
    return [s for s in present if sources is None or s in set(sources)]


def features_yaml(features: dict) -> list[dict]:
    """The schema's features (their serialised form, :data:`unihema_data.schema.FEATURES_DICT`, i.e.
    ``datasets.Features.to_dict()``) in the card's ``dataset_info.features`` notation (the Hub's
    documented YAML form: ``dtype`` / ``list`` / ``struct`` / ``class_label``), written here rather
    than with ``datasets``' private serializer (and without importing ``datasets``, which a
    conversion does not otherwise need); ``tests/test_publish.py`` checks ``datasets`` reads it
    back as the schema's features."""
    return [{"name": k, **_feature_yaml(v)} for k, v in features.items()]


def _feature_yaml(feat: dict) -> dict:
    kind = feat.get("_type")
    if kind is None:  # a dict of features
        return {"struct": features_yaml(feat)}
    if kind == "Value":
        return {"dtype": feat["dtype"]}
    if kind == "Image":
        return {"dtype": "image"}
    if kind == "ClassLabel":
        return {"class_label": {"names": {str(i): n for i, n in enumerate(feat["names"])}}}
    if kind == "List":
        inner = _feature_yaml(feat["feature"])
        if set(inner) == {"dtype"}:
            res = {"list": inner["dtype"]}
        elif set(inner) == {"struct"}:
            res = {"list": inner["struct"]}
        else:
            res = {"list": inner}
        if feat.get("length", -1) != -1:
            res["length"] = feat["length"]
        return res
    raise TypeError(f"feature type {kind!r} has no card notation here")


def build_dataset_info(out: Path, configs: list[dict]) -> list[dict]:
    """``dataset_info`` per config: split sizes (rows, Parquet bytes) and total size; the features
    only on the first (default) config."""
    from .schema import FEATURES_DICT

    manifest = read_manifest(out)
    sources = [c["config_name"] for c in configs if c["config_name"] != "all"]
    infos = []
    for i, cfg in enumerate(configs):
        name = cfg["config_name"]
        info: dict = {"config_name": name}
        if i == 0:
            info["features"] = features_yaml(FEATURES_DICT)
        splits = []
        total = 0
        for split in SPLITS:
            rows = nbytes = 0
            for s in _members(manifest, name, sources):
                files = source_files(out, s).get(split, [])
                nbytes += sum(f.stat().st_size for f in files)
                rows += manifest["sources"][s].get("counts", {}).get(split, 0) if files else 0
            if rows:
                splits.append({"name": split, "num_bytes": nbytes, "num_examples": rows})
                total += nbytes
        info.update({"splits": splits, "download_size": total, "dataset_size": total})
        infos.append(info)
    return infos


def _task_categories(manifest: dict, sources: Sequence[str]) -> list[str]:
    catalog = load_catalog()
    tasks: list[str] = []
    for sid in sources:
        m = manifest["sources"][sid]
        if m.get("task"):
            tasks.append(m["task"])
        elif sid in catalog.ids():
            tasks.extend(catalog.get(sid).tasks)
    return sorted({_TASK_CATEGORIES[t] for t in tasks if t in _TASK_CATEGORIES})


def _license_of(manifest: dict, sid: str) -> str:
    catalog = load_catalog()
    if sid in catalog.ids():
        return catalog.get(sid).license
    return manifest["sources"][sid].get("license", "unknown")


def build_card_data(out: Path, sources: Optional[Sequence[str]] = None) -> "DatasetCardData":
    """The card's metadata (:class:`DatasetCardData`) for the sources of ``OUT`` (all, or ``sources``)."""
    from huggingface_hub import DatasetCardData

    out = Path(out)
    manifest = read_manifest(out)
    srcs = _card_sources(out, manifest, sources)
    configs = build_configs(out, srcs)
    hub = sorted({hub_license(_license_of(manifest, s)) for s in srcs}) or ["unknown"]
    total = sum(sum(manifest["sources"][s].get("counts", {}).values()) for s in srcs)
    kinds = {manifest["sources"][s].get("kind", "source") for s in srcs}
    catalog = load_catalog()
    extra: dict = {}
    if "other" in hub:
        extra = {"license_name": "unihema-per-source-licenses", "license_link": LICENSE_FILE}
    return DatasetCardData(
        pretty_name=PRETTY_NAME,
        license=hub[0] if len(hub) == 1 else hub,
        language=["en"],
        annotations_creators=["expert-generated"] + (["machine-generated"] if "textset" in kinds else []),
        language_creators=["machine-generated"],
        multilinguality=["monolingual"],
        size_categories=[size_category(total)],
        source_datasets=[f"extended|other-{s.replace('_', '-')}" for s in srcs
                         if manifest["sources"][s].get("kind", "source") == "source" or s not in catalog.ids()]
        or ["original"],
        task_categories=_task_categories(manifest, srcs),
        tags=["hematology", "microscopy", "blood-cells", "medical", "biology", "unihema"],
        configs=configs,
        dataset_info=build_dataset_info(out, configs),
        **extra,
    )


# ------------------------------------------------------------------------------------------ body


_SUMMARY_CACHE = Path(".unihema") / "card-summary.json"


def corpus_summary(out: Path, sources: Sequence[str]) -> dict[str, dict]:
    """Per source: qc flag kinds, objects per ``bbox_source``, rows whose canonical label differs from
    the native one, from the ``qc_flags``/``label``/``source_label``/``objects.bbox_source`` columns
    (images are not read). Cached in ``OUT/.unihema/card-summary.json`` per source, keyed by the
    (name, size, mtime) of its shards, so rewriting the card after one conversion reads one source."""
    import json

    out = Path(out)
    cache_path = out / _SUMMARY_CACHE
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    except ValueError:
        cache = {}
    res: dict[str, dict] = {}
    for s in sources:
        files = [f for fs in source_files(out, s).values() for f in fs]
        key = ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
        hit = cache.get(s)
        if hit and hit.get("key") == key:
            res[s] = hit["summary"]
            continue
        res[s] = _summarize(files)
        cache[s] = {"key": key, "summary": res[s]}
    if (out / ".unihema").is_dir():
        cache = {s: v for s, v in cache.items() if source_files(out, s)}
        atomic_write_text(cache_path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return res


def _summarize(files: Sequence[Path]) -> dict:
    import pyarrow.parquet as pq

    from .corpus import class_name

    flags: Counter = Counter()
    bbox_src: Counter = Counter()
    renamed = objects = 0
    for f in files:
        pf = pq.ParquetFile(f)
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i, columns=["qc_flags", "label", "source_label", "objects.bbox_source"])
            for qc in t.column("qc_flags").to_pylist():
                flags.update(q.split(":", 1)[0] for q in qc)
            for lab, src in zip(t.column("label").to_pylist(), t.column("source_label").to_pylist()):
                name = class_name(lab)
                renamed += bool(name and src and name != src)
            for o in t.column("objects").to_pylist():  # a struct holding only bbox_source
                bs = o["bbox_source"] or []
                bbox_src.update(bs)
                objects += len(bs)
    return {"flags": dict(sorted(flags.items())), "bbox_source": dict(sorted(bbox_src.items())),
            "relabelled": renamed, "objects": objects}


def _changes(m: dict, summ: dict) -> str:
    parts = []
    if summ["relabelled"]:
        parts.append(f"{summ['relabelled']} image labels mapped to canonical names")
    derived = {k: v for k, v in summ["bbox_source"].items() if k != "annotated"}
    parts += [f"{v} boxes {k.replace('_', ' ')}" for k, v in derived.items()]
    if m.get("duplicates"):
        parts.append(f"in {m['duplicates']} duplicate groups that take one split")
    moved = m.get("moved")
    if isinstance(moved, dict) and moved:
        parts.append("moved by the split policy: " + ", ".join(f"{k}: {n}" for k, n in moved.items()))
    if m.get("kind") == "textset":
        parts.append(f"generated from `{m.get('parent', '?')}`")
    parts += [f"{k}: {v}" for k, v in summ["flags"].items() if not k.startswith("duplicate")]
    return "; ".join(parts) or "none beyond the schema's conventions"


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _bib_escape(s: str) -> str:
    s = " ".join(str(s).split())
    return re.sub(r"([&%$#_{}])", r"\\\1", s)


def bibtex(entry) -> str:
    """A BibTeX ``@misc`` entry of a catalog source: title, the catalog's citation as ``note``, DOI, homepage."""
    lines = [f"@misc{{{entry.id},", f"  title        = {{{_bib_escape(entry.name)}}},",
             f"  note         = {{{_bib_escape(entry.citation)}}},"]
    years = [y for y in re.findall(r"(?<![\w.:/-])((?:19|20)\d\d)(?![\w:/-])", entry.citation) if int(y) <= 2030]
    if "(" in entry.citation:  # a year in parentheses, as in "Journal 30:105474 (2020)", wins
        years = [y for y in years if f"({y})" in entry.citation] or years
    if years:
        lines.append(f"  year         = {{{years[-1]}}},")
    if entry.doi:
        lines.append(f"  doi          = {{{entry.doi}}},")
    lines.append(f"  howpublished = {{\\url{{{entry.homepage}}}}}")
    return "\n".join(lines) + "\n}"


def _feature_type(feat: dict) -> str:
    """Short human notation of a serialised feature (the card's schema table)."""
    kind = feat.get("_type")
    if kind is None:
        return "{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feat.items()) + "}"
    if kind == "Value":
        return feat["dtype"]
    if kind == "Image":
        return "image"
    if kind == "ClassLabel":
        return f"class label ({len(feat['names'])} classes)"
    if kind == "List":
        inner = _feature_type(feat["feature"])
        return f"list[{inner}]" + (f" (length {feat['length']})" if feat.get("length", -1) != -1 else "")
    return kind


def schema_section() -> list[str]:
    from . import schema, splits

    lines = ["## Schema", "", f"Schema version **{SCHEMA_VERSION}**. One row per image (text sets: one row per "
             "text), the same columns for every source and task:", "", "| column | type |", "|---|---|"]
    for name, feat in schema.FEATURES_DICT.items():
        if name == "objects":
            for k, v in feat.items():
                lines.append(f"| `objects.{k}` | {_cell(_feature_type(v))} |")
        else:
            lines.append(f"| `{name}` | {_cell(_feature_type(feat))} |")
    doc = (schema.__doc__ or "").split("Conventions", 1)[-1].strip().lstrip("-").strip()
    lines += ["", "Conventions (from `unihema_data/schema.py`):", "", "```text", doc, "```", "",
              "## Splits and de-duplication", "", "```text", (splits.__doc__ or "").strip(), "```", "",
              SPLIT_POLICY + " Text rows inherit the split of their image."]
    return lines


SPLIT_POLICY = (
    "Published splits are kept; sources without one get a seeded grouped split. Rows showing the same "
    "picture (byte-identical, or near-duplicates such as resized or re-encoded copies) across all sources "
    "form a group that takes one split: the strongest of its members (published test > validation > train > "
    "generated), so no image of a published test split is trained on. Such rows carry `duplicate_of:` / "
    "`near_duplicate_of:`, moved rows `split_moved:<from>-><to>:<why>:<sample_id>`, and identical images "
    "whose annotations disagree `label_conflict:<sample_id>:<its label>`; `source_split` is never changed. "
    "Splits do not depend on the order of conversion."
)


def render_card(out: Path, sources: Optional[Sequence[str]] = None,
                excluded: Optional[Mapping[str, str]] = None, repo_id: Optional[str] = None,
                previews: Optional[Sequence[str]] = None) -> str:
    """The card text (YAML header + body) for ``OUT`` (or the subset ``sources`` of it).

    ``excluded`` maps a source id left out of a publication to the reason; the card lists them with
    the commands that rebuild them locally. ``repo_id`` (``ORG/NAME``) is used in the loading example.
    ``previews``: sources whose ``previews/<source>.png`` the card shows (default: the fresh grids in OUT)."""
    out = Path(out)
    manifest = read_manifest(out)
    srcs = _card_sources(out, manifest, sources)
    data = build_card_data(out, srcs)
    catalog = load_catalog()
    known = set(catalog.ids())
    summary = corpus_summary(out, srcs)
    where = repo_id or str(out)
    first = "all" if any(c["config_name"] == "all" for c in data.configs) else (srcs[0] if srcs else "all")
    body = [f"# {PRETTY_NAME}", "",
            f"Public hematology microscopy datasets converted by [`unihema-data`](https://github.com/intelligentMachines-ITU/Uni-Hema) "
            f"into one schema (version {SCHEMA_VERSION}): {len(srcs)} configs, "
            f"{sum(sum(manifest['sources'][s].get('counts', {}).values()) for s in srcs):,} rows. "
            "Research use only: **not for clinical use**, diagnosis or treatment decisions.", "",
            "```python", "import datasets", f"ds = datasets.load_dataset({where!r}, {first!r})", "```", ""]
    if any(manifest["sources"][s].get("kind") == "textset" for s in srcs):
        ts = ", ".join(f"`{s}`" for s in srcs if manifest["sources"][s].get("kind") == "textset")
        body += ["> [!WARNING]", "> " + TEXTSET_NOTICE.format(textsets=ts), ""]
    body += ["## Sources", "",
             "| config | kind | license | redistributable | train | validation | test | what the conversion changed |",
             "|---|---|---|---|---|---|---|---|"]
    for s in srcs:
        m = manifest["sources"][s]
        c = m.get("counts", {})
        redis = catalog.get(s).redistributable if s in known else "unknown"
        body.append(f"| `{s}` | {m.get('kind', 'source')} | {_cell(_license_of(manifest, s))} | {redis} | "
                    + " | ".join(str(c.get(sp, 0)) for sp in SPLITS) + f" | {_cell(_changes(m, summary[s]))} |")
    if excluded:
        body += ["", "## Sources not included", "",
                 "These sources are part of UniHema but are not redistributed here (their terms do not clearly "
                 "allow it, or say nothing). Rebuild them locally from the original download:", "",
                 "| source | why | rebuild |", "|---|---|---|"]
        for s, why in sorted(excluded.items()):
            body.append(f"| `{s}` | {_cell(why)} | {_cell(rebuild_command(s))} |")
    from .preview import fresh_previews

    fresh = set(previews) if previews is not None else fresh_previews(out)
    previews = [(s, f"previews/{s}.png") for s in srcs if s in fresh]
    if previews:
        body += ["", "## Samples", "",
                 "Sample rows per source (chosen by a hash of their id), with boxes, masks and labels drawn (`unihema-data preview`)."]
        for s, p in previews:
            body += ["", f"### `{s}`", "", f"![{s} samples]({p})"]
    body += ["", "## Quality control", "",
             "`qc_flags` per source (a flag marks a row kept with a documented fix or remark; nothing is dropped "
             "silently):", ""]
    kinds = sorted({k for s in srcs for k in summary[s]["flags"]})
    if kinds:
        body += ["| source | " + " | ".join(f"`{k}`" for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
        for s in srcs:
            body.append(f"| `{s}` | " + " | ".join(str(summary[s]["flags"].get(k, 0)) for k in kinds) + " |")
    else:
        body.append("No row carries a QC flag.")
    body += [""] + schema_section()
    lic_lines = _license_lines(manifest, srcs)
    body += ["", "## Licenses", "", "Each row keeps its source's license in the `license` column; the terms of every "
             "source apply to its rows.", ""] + lic_lines
    body += ["", "## Citation", "", "Cite the sources you use and Uni-Hema:", "", "```bibtex", UNIHEMA_BIBTEX]
    for s in srcs:
        if s in known:
            body += ["", bibtex(catalog.get(s))]
    body += ["```", "", "## Schema changelog", ""]
    body += [f"- **{v}**: {text}" for v, text in SCHEMA_CHANGELOG.items() if _ver(v) <= _ver(SCHEMA_VERSION)]
    if SCHEMA_VERSION not in SCHEMA_CHANGELOG:
        body.append(f"- **{SCHEMA_VERSION}**: (no changelog entry recorded)")
    # the metadata block exactly as ``DatasetCard.from_template`` writes it (``DatasetCardData.to_yaml``),
    # without rendering the body as a Jinja template (where a "{{", "{%" or "{#" in a source's text
    # would be read as template code) nor importing ``huggingface_hub.repocard`` (~0.5 s: Jinja and
    # the Hub client); ``tests/test_publish.py`` parses the card back with ``DatasetCard``
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)


def _ver(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _license_lines(manifest: dict, srcs: Sequence[str]) -> list[str]:
    catalog = load_catalog()
    lines = []
    for s in srcs:
        lic = _license_of(manifest, s)
        note = catalog.get(s).license_note if s in catalog.ids() else None
        lines.append(f"- `{s}`: {lic} (Hub id `{hub_license(lic)}`)" + (f": {note}" if note else ""))
    return lines


def render_license_file(out: Path, sources: Optional[Sequence[str]] = None) -> str:
    manifest = read_manifest(out)
    srcs = _card_sources(Path(out), manifest, sources)
    return "\n".join([f"# Licenses of the {PRETTY_NAME}", "",
                      "This corpus combines several source datasets; each row's `license` column names its "
                      "source's license, and that source's terms apply to the row.", ""]
                     + _license_lines(manifest, srcs)) + "\n"


def rebuild_command(source: str) -> str:
    """Shell commands that rebuild one source locally (fetch, or derive for text sets, then convert)."""
    catalog = load_catalog()
    if source in catalog.ids() and catalog.get(source).access == "derived":
        kind = source.rsplit("_", 1)[-1]
        return f"`unihema-data generate {kind} --from OUT`"
    return f"`unihema-data fetch {source} --root W && unihema-data convert {source} --raw-dir W/raw --out OUT`"


def write_card(out: Path, *, previews: Optional[bool] = None, croissant: bool = True) -> None:
    """Write ``OUT/README.md``, ``LICENSE.md`` and ``croissant.json``.

    Sample grids (``OUT/previews/``) are opt-in for local corpora, since rendering them costs about a
    second per source: ``previews=None`` (the default, used by ``convert``/``generate``) re-renders the
    stale ones only when ``OUT/previews`` exists (the user ran ``unihema-data preview OUT`` once);
    ``True`` always refreshes them. The card shows only grids that match the current data. A failure
    to render one is logged; the card then simply has no picture of that source."""
    out = Path(out)
    if previews or (previews is None and (out / "previews").is_dir()):
        try:
            from .preview import refresh_previews

            refresh_previews(out)
        except Exception as e:  # a picture is never worth failing a finished conversion
            log.warning("sample grids of %s not rendered: %s", out, e)
    text = render_card(out)
    atomic_write_text(out / LICENSE_FILE, render_license_file(out))
    atomic_write_text(out / "README.md", text)
    if croissant:
        from .croissant import write_croissant

        write_croissant(out)


def card_metadata(text: str) -> dict:
    """The YAML metadata of a card text, parsed by ``huggingface_hub``."""
    from huggingface_hub import DatasetCard

    return DatasetCard(text).data.to_dict()


def dumps(obj) -> str:  # small helper for tests and the CLI
    return json.dumps(obj, indent=2, sort_keys=True)
