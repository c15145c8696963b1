"""Croissant (https://mlcommons.org/croissant/, spec 1.1) JSON-LD of a converted corpus:
``croissant.json`` next to the dataset card, for local corpora and for published ones.

* ``distribution``: one ``cr:FileObject`` per Parquet shard (relative ``contentUrl``, size and sha256;
  with a ``repo_id`` the URL points at the file on the Hub) and one ``cr:FileSet`` per config
  (``data/<source>/*.parquet``; ``all`` includes every source config).
* ``recordSet``: one per config (``all`` and each source); every schema column is a field extracted
  from the Parquet column of the same name. ``objects`` is a field with sub-fields (``jsonPath``
  into the struct); list columns are arrays (``isArray``). Images are ``sc:ImageObject``.

sha256 of shards are cached in ``OUT/.unihema/sha256.json`` by (name, size, mtime), so rewriting
the description after a conversion only hashes the new shards.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

from .outdir import atomic_write_text, read_manifest, source_files
from .schema import SCHEMA_VERSION

CROISSANT_FILE = "croissant.json"
_SHA_CACHE = Path(".unihema") / "sha256.json"

CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs",
    "column": "cr:column", "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataBiases": "cr:dataBiases",
    "dataCollection": "cr:dataCollection", "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5",
    "parentField": "cr:parentField", "path": "cr:path", "personalSensitiveInformation": "cr:personalSensitiveInformation",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform", "rai": "http://mlcommons.org/croissant/RAI/",
    "prov": "http://www.w3.org/ns/prov#", "samplingRate": "cr:samplingRate",
    "equivalentProperty": "cr:equivalentProperty",
}


#: checksums of files hashed while they were written, not yet in the cache file: ``{(OUT, path
#: relative to OUT): ("size:mtime_ns", sha256)}``. Kept in memory, not written to ``OUT`` before the
#: commit (a conversion killed before its commit must leave ``OUT`` unchanged); the Croissant step
#: inside the commit moves what it uses into the cache file.
_WRITTEN: dict[tuple[str, str], tuple[str, str]] = {}


def remember_sha256(out: Path, hashes: dict[str, tuple[str, str]]) -> None:
    """Note ``{path relative to OUT: ("size:mtime_ns", sha256)}`` of files hashed while they were
    written (Parquet shards), so the Croissant file does not read them back. An entry is used
    only while the file's size and mtime still match its key."""
    root = str(Path(out).resolve())
    _WRITTEN.update({(root, rel): v for rel, v in hashes.items()})


def _sha256(out: Path, files: list[Path]) -> dict[str, str]:
    cache_path = out / _SHA_CACHE
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    except ValueError:
        cache = {}
    res, changed = {}, False
    for f in files:
        rel = f.relative_to(out).as_posix()
        st = f.stat()
        key = f"{st.st_size}:{st.st_mtime_ns}"
        hit = cache.get(rel)
        written = _WRITTEN.pop((str(out.resolve()), rel), None)
        if (not hit or hit[0] != key) and written and written[0] == key:
            cache[rel], changed = list(written), True
            hit = cache[rel]
        if not hit or hit[0] != key:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            cache[rel] = [key, h.hexdigest()]
            changed = True
        res[rel] = cache[rel][1]
    if changed and (out / ".unihema").is_dir():
        cache = {k: v for k, v in cache.items() if (out / k).exists()}
        atomic_write_text(cache_path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return res


def _data_type(feat: dict) -> tuple[str, bool]:
    """(Croissant dataType, isArray) of a serialised ``datasets`` feature
    (:data:`unihema_data.schema.FEATURES_DICT`)."""
    kind = feat.get("_type")
    if kind == "List":
        inner, _ = _data_type(feat["feature"])
        return inner, True
    if kind == "Image":
        return "sc:ImageObject", False
    if kind == "ClassLabel":
        return "sc:Integer", False
    if kind == "Value":
        d = feat["dtype"]
        if d.startswith("int") or d.startswith("uint"):
            return "sc:Integer", False
        if d.startswith("float"):
            return "sc:Float", False
        if d == "bool":
            return "sc:Boolean", False
        return "sc:Text", False
    return "sc:Text", False


def _fields(rs_id: str, fileset: str) -> list[dict]:
    from .schema import FEATURES_DICT

    fields = []
    for name, feat in FEATURES_DICT.items():
        fid = f"{rs_id}/{name}"
        src = {"fileSet": {"@id": fileset}, "extract": {"column": name}}
        if name == "objects":
            subs = []
            for k, v in feat.items():
                dt, arr = _data_type(v)
                sub = {"@type": "cr:Field", "@id": f"{fid}/{k}", "name": k, "dataType": dt,
                       "source": {**src, "transform": {"jsonPath": k}}}
                if arr:
                    sub["isArray"] = True
                subs.append(sub)
            fields.append({"@type": "cr:Field", "@id": fid, "name": name,
                           "description": "objects of the image, parallel lists (one entry per object)",
                           "subField": subs})
            continue
        if "_type" not in feat:  # pragma: no cover - no other struct column today
            continue
        dt, arr = _data_type(feat)
        if dt == "sc:ImageObject":  # the Parquet column is a struct {bytes, path}: the image is its bytes
            src = {**src, "transform": {"jsonPath": "bytes"}}
        field = {"@type": "cr:Field", "@id": fid, "name": name, "dataType": dt, "source": src}
        if arr:
            field["isArray"] = True
        fields.append(field)
    return fields


def build_croissant(out: Path, sources: Optional[Sequence[str]] = None, repo_id: Optional[str] = None) -> dict:
    """The Croissant JSON-LD (a dict) of ``OUT`` or its subset ``sources``."""
    from .card import PRETTY_NAME, UNIHEMA_BIBTEX, build_configs, hub_license, _license_of

    out = Path(out)
    manifest = read_manifest(out)
    configs = build_configs(out, sources)
    srcs = [c["config_name"] for c in configs if c["config_name"] != "all"]
    files = [f for s in srcs for fs in source_files(out, s).values() for f in fs]
    shas = _sha256(out, files)
    base = f"https://huggingface.co/datasets/{repo_id}/resolve/main/" if repo_id else ""
    distribution: list[dict] = []
    for f in files:
        rel = f.relative_to(out).as_posix()
        distribution.append({"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": base + rel,
                             "contentSize": f"{f.stat().st_size} B", "encodingFormat": "application/x-parquet",
                             "sha256": shas[rel]})
    record_sets = []
    for cfg in configs:
        name = cfg["config_name"]
        members = [s for s in srcs if manifest["sources"][s].get("kind", "source") == "source"] if name == "all" else [name]
        fs_id = f"parquet-files-for-config-{name}"
        distribution.append({"@type": "cr:FileSet", "@id": fs_id, "name": fs_id,
                             "description": f"Parquet shards of config {name}",
                             "encodingFormat": "application/x-parquet",
                             "includes": [f"data/{s}/*.parquet" for s in members]})
        record_sets.append({"@type": "cr:RecordSet", "@id": name, "name": name,
                            "description": f"UniHema rows of config {name} (one row per image)",
                            "field": _fields(name, fs_id)})
    licenses = sorted({hub_license(_license_of(manifest, s)) for s in srcs})
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.1",
        "name": (repo_id or PRETTY_NAME).replace("/", "_").replace(" ", "_"),
        "description": f"{PRETTY_NAME}: public hematology microscopy datasets converted into one schema "
                       f"(version {SCHEMA_VERSION}). Research use only, not for clinical use.",
        "url": f"https://huggingface.co/datasets/{repo_id}" if repo_id else "https://github.com/intelligentMachines-ITU/Uni-Hema",
        "license": [f"https://huggingface.co/docs/hub/repositories-licenses#{x}" for x in licenses],
        "version": SCHEMA_VERSION,
        "datePublished": max((m.get("converted_at") or m.get("generated_at") or "" for m in manifest["sources"].values()),
                             default="") or "1970-01-01T00:00:00Z",
        "citeAs": UNIHEMA_BIBTEX,
        "keywords": ["hematology", "microscopy", "blood cells", "medical imaging"],
        "inLanguage": ["en"],
        "isLiveDataset": False,
        "distribution": distribution,
        "recordSet": record_sets,
    }


def write_croissant(out: Path, target: Optional[Path] = None, sources: Optional[Sequence[str]] = None,
                    repo_id: Optional[str] = None) -> Path:
    """Write the Croissant description (default ``OUT/croissant.json``) atomically."""
    path = Path(target) if target else Path(out) / CROISSANT_FILE
    atomic_write_text(path, json.dumps(build_croissant(out, sources, repo_id), indent=1) + "\n")
    return path


def validate_croissant(path: Path) -> list[str]:
    """Errors ``mlcroissant`` finds in a Croissant file (empty when valid); warnings are not errors."""
    import mlcroissant as mlc

    try:
        ds = mlc.Dataset(jsonld=str(path))
    except mlc.ValidationError as e:
        return [str(e)]
    return [str(x) for x in ds.metadata.ctx.issues.errors]
