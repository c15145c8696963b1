"""The unified taxonomy: canonical labels, mask classes, morphology attributes and per-source aliases.

Everything lives in ``taxonomy.yaml`` next to this module and is validated on load
(:func:`load_taxonomy`); an invalid file fails with a :class:`TaxonomyError` naming the source,
table and offending key.

Conventions
-----------
* Canonical names (labels, mask classes, attribute names and values) are lowercase snake_case.
* Native strings are verbatim. Integer-coded natives are looked up by their decimal string:
  ``2``, ``np.int64(2)`` and ``2.0`` all become ``"2"``; booleans become ``"True"``/``"False"``.
* A lookup tries the exact native string first, then a case- and whitespace-insensitive match
  (strip, collapse runs of whitespace, lower-case). Underscores are *not* spaces.
* :data:`NOT_ANNOTATED` is a reserved attribute value any attribute may map to (e.g. the
  LeukemiaAttri code ``2``); downstream code ignores it. It is not part of
  :attr:`AttributeInfo.values`.
* A source entry may hold several label tables: ``labels`` (default), ``label_prefixes`` (PBC /
  WBCAtt / APL file-name prefixes), ``folders`` (RV-PBS), ``species_folders`` (MP-IDB)... Any
  mapping under a source key other than the reserved keys (:data:`RESERVED_SOURCE_KEYS`) is a
  label table whose targets must be canonical labels.
"""
from __future__ import annotations

import copy
import numbers
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

from . import _yaml

NOT_ANNOTATED = "not_annotated"
DEFAULT_PATH = Path(__file__).resolve().with_name("taxonomy.yaml")

GROUPS = ("wbc", "rbc", "platelet", "parasite", "other")
ROLLUP5 = ("neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte")
CL_STATUSES = ("confirmed", "recalled", "none")
LINEAGES = (
    "unknown_wbc", "granulocyte_mature", "granulocyte_immature", "blast_or_malignant", "monocytic",
    "lymphoid", "degenerate", "erythroid_precursor", "erythrocyte", "platelet", "parasite",
    "non_cell", "unknown", "microorganism",
)
ROLLUP_LEVELS = ("rollup5", "lineage", "group")
RESERVED_SOURCE_KEYS = ("mask_classes", "attributes", "attribute_columns", "ignore", "diagnosis", "species", "notes")
_LABEL_FIELDS = ("id", "description", "cl", "cl_status", "cl_parent", "group", "rollup5", "lineage")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_CL_ID = re.compile(r"^CL:\d{7}$")
_YAML_FILE = "unihema_data/taxonomy.yaml"


class TaxonomyError(ValueError):
    """Invalid taxonomy file, unknown source/table, or a native string that does not map."""


class UnmappedLabelError(TaxonomyError):
    """A native label (or mask class) has no alias in the source's table."""


@dataclass(frozen=True)
class LabelInfo:
    """One canonical label. ``cl``/``cl_parent`` are Cell Ontology ids or ``None``;
    ``cl_status`` is confirmed | recalled | none; ``rollup5`` is a 5-part differential class or
    ``None``."""

    name: str
    id: int
    description: str
    cl: Optional[str]
    cl_status: str
    cl_parent: Optional[str]
    group: str
    rollup5: Optional[str]
    lineage: str


@dataclass(frozen=True)
class AttributeInfo:
    """One canonical morphology attribute and its allowed values (``not_annotated`` excluded)."""

    name: str
    description: str
    values: tuple[str, ...]


def _norm(s: str) -> str:
    return " ".join(s.split()).lower()


def native_str(value: Any) -> str:
    """The lookup key of a native value: ints (incl. numpy) and integral floats as decimal
    strings, bools as ``True``/``False``, everything else ``str()``. ``None`` is refused (it
    would otherwise alias the native string ``"None"``, e.g. LeukemiaAttri class 0)."""
    if value is None:
        raise TaxonomyError("native value is None (missing label/attribute?)")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if f.is_integer():
            return str(int(f))
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars of other kinds
        return native_str(value.item())
    return str(value)


class _Table:
    """An alias table: exact lookup, then a normalised (case/whitespace-insensitive) one."""

    def __init__(self, mapping: dict[str, str], where: str):
        self.exact = dict(mapping)
        self.loose: dict[str, str] = {}
        for k, v in mapping.items():
            n = _norm(k)
            prev = self.loose.get(n)
            if prev is not None and prev != v:
                raise TaxonomyError(
                    f"{where}: keys differing only in case/whitespace map to different targets "
                    f"({n!r} -> {prev!r} and {v!r})"
                )
            self.loose[n] = v

    def get(self, key: str) -> Optional[str]:
        hit = self.exact.get(key)
        if hit is None:
            hit = self.loose.get(_norm(key))
        return hit


@dataclass(frozen=True)
class _AttrAlias:
    name: str
    values: _Table


class Taxonomy:
    """The loaded, validated taxonomy. Build it with :func:`load_taxonomy`."""

    def __init__(self, raw: Mapping[str, Any], path: Optional[Path] = None):
        self.path = path
        self.version: int = raw.get("version", 1)
        self.labels: dict[str, LabelInfo] = {}
        self.mask_classes: dict[str, str] = {}
        self.attributes: dict[str, AttributeInfo] = {}
        self._raw_sources: dict[str, dict] = {}
        self._tables: dict[str, dict[str, _Table]] = {}
        self._attr: dict[str, dict[str, _AttrAlias]] = {}
        self._attr_loose: dict[str, dict[str, str]] = {}
        self._ignore: dict[str, set[str]] = {}
        self._tables_mask: dict[str, _Table] = {}
        self._tables_dx: dict[str, _Table] = {}
        _Validator(self, raw).run()

    # ------------------------------------------------------------------ queries
    @property
    def sources(self) -> tuple[str, ...]:
        """Ids of every source with an alias entry, sorted."""
        return tuple(sorted(self._raw_sources))

    def has_source(self, source: str) -> bool:
        return source in self._raw_sources

    def source_aliases(self, source: str) -> dict:
        """A deep copy of the raw ``sources.<source>`` entry (keys as strings)."""
        self._need_source(source)
        return copy.deepcopy(self._raw_sources[source])

    def label_tables(self, source: str) -> tuple[str, ...]:
        """Names of the label tables of ``source`` (``labels`` first)."""
        self._need_source(source)
        return tuple(sorted(self._tables[source], key=lambda t: (t != "labels", t)))

    def class_names(self) -> tuple[str, ...]:
        """Canonical label names indexed by their stable id (``class_names()[i]`` has id ``i``).

        Ids are fixed in ``taxonomy.yaml`` and never renumbered (new labels append), so training,
        export and FiftyOne agree on them across corpora with different sources."""
        return tuple(sorted(self.labels, key=lambda n: self.labels[n].id))

    def class_id(self, label: str) -> int:
        """Stable id of a canonical label; ``KeyError`` naming the label when it is unknown."""
        try:
            return self.labels[label].id
        except KeyError:
            raise KeyError(f"{label!r} is not a canonical taxonomy label") from None

    def is_known_label(self, label: str) -> bool:
        return label in self.labels

    def is_ignored(self, source: str, native: Any) -> bool:
        """True when ``native`` is listed in ``sources.<source>.ignore`` (e.g. RV-PBS ``bg``,
        LMU ``nan``): not an object/label, to be skipped by the adapter."""
        self._need_source(source)
        key = native_str(native)
        return key in self._ignore[source] or _norm(key) in {_norm(k) for k in self._ignore[source]}

    def map_label(self, source: str, native: Any, *, file: Optional[str] = None, table: str = "labels") -> str:
        """Canonical label of a verbatim native label string of ``source``.

        Raises :class:`UnmappedLabelError` naming the source, file and label when no alias exists,
        and :class:`TaxonomyError` for an unknown source or table."""
        self._need_source(source)
        tables = self._tables[source]
        if table not in tables:
            raise TaxonomyError(
                f"{source}: no label table {table!r} in {_YAML_FILE} sources.{source} "
                f"(tables: {', '.join(self.label_tables(source)) or 'none'})"
            )
        key = native_str(native)
        hit = tables[table].get(key)
        if hit is not None:
            return hit
        where = f" in {file}" if file else ""
        hint = " (it is listed under 'ignore': skip it instead of mapping it)" if self.is_ignored(source, key) else ""
        raise UnmappedLabelError(
            f"{source}: unmapped label {key!r}{where}; add it to {_YAML_FILE} sources.{source}.{table}{hint}"
        )

    def is_refinement(self, coarse: str, fine: str) -> bool:
        """True when canonical ``fine`` is ``coarse`` or a finer kind of it: its 5-part class is
        ``coarse`` (``neutrophil_band`` of ``neutrophil``), its Cell Ontology parent is ``coarse``'s
        term, or ``coarse`` is an unspecified-stage label of the same lineage
        (``promyelocyte`` of ``immature_granulocyte``)."""
        if fine == coarse:
            return True
        f, c = self.labels[fine], self.labels[coarse]
        if f.rollup5 is not None and f.rollup5 == coarse:
            return True
        if c.cl and f.cl_parent == c.cl:
            return True
        return c.rollup5 is None and "unspecified" in c.description and c.lineage == f.lineage and c.group == f.group

    def refine_label(self, source: str, canonical: str, refiner: Any, *, table: str = "label_prefixes") -> tuple[str, list[str]]:
        """Refine a canonical label with a second native key of the same record (e.g. WBCAtt's
        ``Neutrophil`` with its file-name prefix ``BNE``, looked up in ``table``), as PBC's own
        labels are. Returns ``(label, qc_flags)``: the finer label and ``label_refined:<canonical>``
        when the key maps to a refinement (:meth:`is_refinement`); ``canonical`` unchanged and
        ``label_prefix_conflict:<key>=<its label>`` when it maps to an incompatible label;
        ``canonical`` and ``unknown_prefix:<key>`` when it does not map."""
        key = native_str(refiner) if refiner not in (None, "") else ""
        try:
            fine = self.map_label(source, key, table=table) if key else None
        except UnmappedLabelError:
            fine = None
        if fine is None:
            return canonical, [f"unknown_prefix:{key}"]
        if fine == canonical:
            return canonical, []
        if self.is_refinement(canonical, fine):
            return fine, [f"label_refined:{canonical}"]
        return canonical, [f"label_prefix_conflict:{key}={fine}"]

    def map_mask_class(self, source: str, native: Any, *, file: Optional[str] = None) -> str:
        """Canonical mask class of a native pixel value (``128``, ``"0,255,255"``) or class name."""
        self._need_source(source)
        table = self._tables_mask.get(source)
        key = native_str(native)
        where = f" in {file}" if file else ""
        if table is None:
            raise UnmappedLabelError(
                f"{source}: unmapped mask class {key!r}{where}; {_YAML_FILE} sources.{source} has no "
                f"mask_classes table, add one"
            )
        hit = table.get(key)
        if hit is None:
            raise UnmappedLabelError(
                f"{source}: unmapped mask class {key!r}{where}; add it to {_YAML_FILE} sources.{source}.mask_classes"
            )
        return hit

    def map_attribute(self, source: str, name: str, value: Any, *, file: Optional[str] = None) -> tuple[str, str]:
        """Canonical ``(attribute, value)`` of a native attribute name and value (ints allowed).
        The value may be :data:`NOT_ANNOTATED`. Raises :class:`TaxonomyError` for an unknown
        attribute name or value."""
        self._need_source(source)
        where = f" in {file}" if file else ""
        attrs = self._attr.get(source, {})
        key = native_str(name)
        alias = attrs.get(key)
        if alias is None:
            real = self._attr_loose.get(source, {}).get(_norm(key))
            alias = attrs.get(real) if real is not None else None
        if alias is None:
            raise TaxonomyError(
                f"{source}: unknown attribute {key!r}{where}; add it to {_YAML_FILE} "
                f"sources.{source}.attributes (known: {', '.join(sorted(attrs)) or 'none'})"
            )
        vkey = native_str(value)
        hit = alias.values.get(vkey)
        if hit is None:
            raise TaxonomyError(
                f"{source}: unknown value {vkey!r} of attribute {key!r}{where}; add it to {_YAML_FILE} "
                f"sources.{source}.attributes.{key}.values (known: {', '.join(sorted(alias.values.exact))})"
            )
        return alias.name, hit

    def attribute_columns(self, source: str, variant: Any) -> tuple[str, ...]:
        """Native attribute names in label-line column order for a variant (e.g. LeukemiaAttri
        ``6`` or ``7`` attribute values per line)."""
        self._need_source(source)
        cols = self._raw_sources[source].get("attribute_columns") or {}
        key = native_str(variant)
        if key not in cols:
            raise TaxonomyError(
                f"{source}: no attribute_columns variant {key!r} in {_YAML_FILE} sources.{source} "
                f"(variants: {', '.join(sorted(cols)) or 'none'})"
            )
        return tuple(cols[key])

    def map_diagnosis(self, source: str, native: Any, *, file: Optional[str] = None) -> str:
        """Patient/image-level diagnosis of a native string (``sources.<source>.diagnosis``)."""
        self._need_source(source)
        table = self._tables_dx.get(source)
        key = native_str(native)
        hit = table.get(key) if table else None
        if hit is None:
            where = f" in {file}" if file else ""
            raise UnmappedLabelError(
                f"{source}: unmapped diagnosis {key!r}{where}; add it to {_YAML_FILE} sources.{source}.diagnosis"
            )
        return hit

    def rollup(self, label: str, level: str = "rollup5") -> Optional[str]:
        """The label's 5-part differential class (``rollup5``, may be ``None``), ``lineage`` or
        ``group``."""
        if level not in ROLLUP_LEVELS:
            raise TaxonomyError(f"unknown rollup level {level!r}; use one of {', '.join(ROLLUP_LEVELS)}")
        info = self.labels.get(label)
        if info is None:
            raise TaxonomyError(f"unknown canonical label {label!r} (not in {_YAML_FILE} labels)")
        return getattr(info, level)

    def _need_source(self, source: str) -> None:
        if source not in self._raw_sources:
            raise TaxonomyError(f"{source}: unknown source; add sources.{source} to {_YAML_FILE}")


class _Validator:
    """Fills a :class:`Taxonomy` from the raw YAML, raising precise :class:`TaxonomyError`s."""

    def __init__(self, tax: Taxonomy, raw: Mapping[str, Any]):
        self.t = tax
        self.raw = raw

    @staticmethod
    def _keys(mapping: Any, where: str) -> dict[str, Any]:
        if not isinstance(mapping, Mapping):
            raise TaxonomyError(f"{where}: expected a mapping, got {type(mapping).__name__}")
        out: dict[str, Any] = {}
        for k, v in mapping.items():
            if isinstance(k, bool) or k is None:
                raise TaxonomyError(
                    f"{where}: key {k!r} was read as a YAML {'boolean' if isinstance(k, bool) else 'null'}; quote it"
                )
            if not isinstance(k, (str, int)):
                raise TaxonomyError(f"{where}: key {k!r} must be a string")
            out[str(k)] = v
        return out

    def run(self) -> None:
        raw = self._keys(self.raw, "taxonomy")
        for key in ("labels", "mask_classes", "attributes", "sources"):
            if key not in raw:
                raise TaxonomyError(f"taxonomy: missing top-level key {key!r}")
        self._labels(self._keys(raw["labels"], "labels"))
        self._mask_classes(self._keys(raw["mask_classes"], "mask_classes"))
        self._attributes(self._keys(raw["attributes"], "attributes"))
        for sid, entry in self._keys(raw["sources"], "sources").items():
            self._source(sid, entry)

    def _labels(self, labels: dict[str, Any]) -> None:
        for name, spec in labels.items():
            where = f"labels.{name}"
            if not _SNAKE.match(name):
                raise TaxonomyError(f"{where}: canonical label names must be lowercase snake_case")
            spec = self._keys(spec, where)
            missing = [f for f in _LABEL_FIELDS if f not in spec]
            extra = [f for f in spec if f not in _LABEL_FIELDS]
            if missing or extra:
                raise TaxonomyError(f"{where}: missing fields {missing} / unknown fields {extra}")
            if spec["group"] not in GROUPS:
                raise TaxonomyError(f"{where}: group {spec['group']!r} not one of {', '.join(GROUPS)}")
            if spec["rollup5"] is not None and spec["rollup5"] not in ROLLUP5:
                raise TaxonomyError(f"{where}: rollup5 {spec['rollup5']!r} not one of {', '.join(ROLLUP5)} or null")
            if spec["lineage"] not in LINEAGES:
                raise TaxonomyError(f"{where}: lineage {spec['lineage']!r} not one of {', '.join(LINEAGES)}")
            if spec["cl_status"] not in CL_STATUSES:
                raise TaxonomyError(f"{where}: cl_status {spec['cl_status']!r} not one of {', '.join(CL_STATUSES)}")
            for f in ("cl", "cl_parent"):
                if spec[f] is not None and not _CL_ID.match(str(spec[f])):
                    raise TaxonomyError(f"{where}: {f} {spec[f]!r} is not a Cell Ontology id (CL:NNNNNNN) or null")
            if (spec["cl"] is None) != (spec["cl_status"] == "none"):
                raise TaxonomyError(f"{where}: cl_status must be 'none' exactly when cl is null")
            if not isinstance(spec["id"], int) or isinstance(spec["id"], bool) or spec["id"] < 0:
                raise TaxonomyError(f"{where}: id must be a non-negative integer")
            self.t.labels[name] = LabelInfo(name=name, **{f: spec[f] for f in _LABEL_FIELDS})
        ids = sorted(info.id for info in self.t.labels.values())
        if ids != list(range(len(ids))):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise TaxonomyError(
                f"labels: ids must be unique and contiguous from 0 (duplicates {dup}); "
                "never renumber a label, give a new label the next free id")
        for name in ROLLUP5:
            if name not in self.t.labels:
                raise TaxonomyError(f"labels: the 5-part differential class {name!r} must itself be a label")

    def _mask_classes(self, classes: dict[str, Any]) -> None:
        for name, spec in classes.items():
            if not _SNAKE.match(name):
                raise TaxonomyError(f"mask_classes.{name}: names must be lowercase snake_case")
            spec = self._keys(spec or {}, f"mask_classes.{name}")
            self.t.mask_classes[name] = str(spec.get("description", ""))
        if "background" not in self.t.mask_classes:
            raise TaxonomyError("mask_classes: 'background' is required")

    def _attributes(self, attrs: dict[str, Any]) -> None:
        for name, spec in attrs.items():
            where = f"attributes.{name}"
            if not _SNAKE.match(name):
                raise TaxonomyError(f"{where}: names must be lowercase snake_case")
            spec = self._keys(spec, where)
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise TaxonomyError(f"{where}: 'values' must be a non-empty list")
            for v in values:
                if not isinstance(v, str) or not _SNAKE.match(v):
                    raise TaxonomyError(f"{where}: value {v!r} must be a lowercase snake_case string")
            if NOT_ANNOTATED in values:
                raise TaxonomyError(f"{where}: {NOT_ANNOTATED!r} is reserved and must not be listed in values")
            if len(set(values)) != len(values):
                raise TaxonomyError(f"{where}: duplicate values")
            self.t.attributes[name] = AttributeInfo(name, str(spec.get("description", "")).strip(), tuple(values))

    def _source(self, sid: str, entry: Any) -> None:
        where = f"sources.{sid}"
        if not _SNAKE.match(sid):
            raise TaxonomyError(f"{where}: source ids must be lowercase snake_case")
        entry = self._keys(entry, where)
        t = self.t
        tables: dict[str, _Table] = {}
        clean: dict[str, Any] = {}
        for key, val in entry.items():
            w = f"{where}.{key}"
            if key == "notes":
                clean[key] = str(val)
            elif key == "species":
                if not isinstance(val, str) or not _SNAKE.match(val):
                    raise TaxonomyError(f"{w}: must be a snake_case string")
                clean[key] = val
            elif key == "ignore":
                if not isinstance(val, list):
                    raise TaxonomyError(f"{w}: must be a list of native strings")
                clean[key] = [native_str(v) for v in val]
            elif key == "mask_classes":
                m = self._str_map(val, w)
                for nk, target in m.items():
                    if target not in t.mask_classes:
                        raise TaxonomyError(f"{w}: {nk!r} -> {target!r} is not a canonical mask class")
                t._tables_mask[sid] = _Table(m, w)
                clean[key] = m
            elif key == "diagnosis":
                m = self._str_map(val, w)
                for nk, target in m.items():
                    if not _SNAKE.match(target):
                        raise TaxonomyError(f"{w}: {nk!r} -> {target!r} must be a snake_case diagnosis")
                t._tables_dx[sid] = _Table(m, w)
                clean[key] = m
            elif key == "attributes":
                clean[key] = self._source_attrs(sid, val, w)
            elif key == "attribute_columns":
                clean[key] = val  # checked after attributes are known
            else:
                m = self._str_map(val, w)
                for nk, target in m.items():
                    if target not in t.labels:
                        raise TaxonomyError(f"{w}: {nk!r} -> {target!r} is not a canonical label")
                tables[key] = _Table(m, w)
                clean[key] = m
        if "attribute_columns" in clean:
            cols = self._keys(clean["attribute_columns"], f"{where}.attribute_columns")
            known = clean.get("attributes", {})
            for variant, names in cols.items():
                if not isinstance(names, list) or not names:
                    raise TaxonomyError(f"{where}.attribute_columns.{variant}: must be a non-empty list")
                for n in names:
                    if str(n) not in known:
                        raise TaxonomyError(
                            f"{where}.attribute_columns.{variant}: {n!r} is not in {where}.attributes"
                        )
                if variant.isdigit() and len(names) != int(variant):
                    raise TaxonomyError(f"{where}.attribute_columns.{variant}: has {len(names)} names")
            clean["attribute_columns"] = {k: [str(n) for n in v] for k, v in cols.items()}
        t._tables[sid] = tables
        t._ignore[sid] = set(clean.get("ignore", []))
        t._raw_sources[sid] = clean

    def _str_map(self, val: Any, where: str) -> dict[str, str]:
        m = self._keys(val if val is not None else {}, where)
        for k, v in m.items():
            if not isinstance(v, str):
                raise TaxonomyError(f"{where}: {k!r} -> {v!r} must map to a string")
        return m

    def _source_attrs(self, sid: str, val: Any, where: str) -> dict:
        t = self.t
        attrs = self._keys(val, where)
        aliases: dict[str, _AttrAlias] = {}
        loose: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for native, spec in attrs.items():
            w = f"{where}.{native}"
            spec = self._keys(spec, w)
            canon = spec.get("name")
            if canon not in t.attributes:
                raise TaxonomyError(f"{w}: name {canon!r} is not a canonical attribute")
            allowed = set(t.attributes[canon].values) | {NOT_ANNOTATED}
            values = self._str_map(spec.get("values"), f"{w}.values")
            if not values:
                raise TaxonomyError(f"{w}.values: empty")
            for nv, target in values.items():
                if target not in allowed:
                    raise TaxonomyError(
                        f"{w}.values: {nv!r} -> {target!r} is not a value of attribute {canon!r} "
                        f"({', '.join(t.attributes[canon].values)}) or {NOT_ANNOTATED!r}"
                    )
            aliases[native] = _AttrAlias(canon, _Table(values, f"{w}.values"))
            n = _norm(native)
            if n in loose and aliases[loose[n]].name != canon:
                raise TaxonomyError(f"{w}: attribute names differing only in case map to different attributes")
            loose.setdefault(n, native)
            clean[native] = {"name": canon, "values": values}
        t._attr[sid] = aliases
        t._attr_loose[sid] = loose
        return clean


def _read(path: Path) -> Taxonomy:
    try:
        raw = _yaml.safe_load(path.read_text(encoding="utf-8"))
    except _yaml.YAMLError as e:
        raise TaxonomyError(f"{path}: not valid YAML ({e})") from None
    except OSError as e:
        raise TaxonomyError(f"{path}: cannot read taxonomy ({e})") from None
    if not isinstance(raw, Mapping):
        raise TaxonomyError(f"{path}: top level must be a mapping")
    try:
        return Taxonomy(raw, path)
    except TaxonomyError as e:
        raise TaxonomyError(f"{path}: {e}") from None


@lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> Taxonomy:
    return _read(Path(path))


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate the taxonomy (default: ``taxonomy.yaml`` next to this module).

    Results are cached per (path, modification time, size), so calling this once per record is
    cheap and an edited file is re-read."""
    p = Path(path).resolve() if path is not None else DEFAULT_PATH
    try:
        st = p.stat()
    except OSError as e:
        raise TaxonomyError(f"{p}: cannot read taxonomy ({e})") from None
    return _cached(str(p), st.st_mtime_ns, st.st_size)


__all__ = [
    "AttributeInfo", "LabelInfo", "NOT_ANNOTATED", "Taxonomy", "TaxonomyError", "UnmappedLabelError",
    "load_taxonomy", "native_str", "DEFAULT_PATH", "GROUPS", "ROLLUP5", "ROLLUP_LEVELS",
]
