"""The dataset catalog: ``unihema_data/catalog.yaml`` (package data), validated on load.

Every source dataset of the Uni-Hema corpus has one entry. The catalog is the single
source of truth for fetching (files with size + sha256, access kind), for the docs
tables and for dataset cards. Entries are validated with pydantic; an invalid catalog
fails loudly with the entry id and the offending field.

Conventions
-----------
* ``license`` is an SPDX identifier where one exists (``CC-BY-4.0``, ``MIT``...),
  otherwise ``other`` (see ``license_note``) or ``unknown``.
* ``files[].size`` is in bytes; ``files[].sha256`` is lowercase hex. Either may be
  ``null`` when it could not be verified yet (``unihema-data fetch --register-checksums``
  records them on first download).
* ``access`` says how the files are obtained: ``http`` (direct URL), ``zenodo``,
  ``figshare``, ``mendeley`` (resolved through the host's public API from ``record``),
  ``github`` (repository archive or release asset), ``gdrive`` (public Google Drive
  link), ``kaggle`` (user's own credentials), ``tcia`` and ``manual`` (behind a login,
  request form or licence click-through; ``manual_instructions`` says what to do) and ``derived``
  (built locally by ``unihema-data generate`` from the sources in ``derived_from``; nothing to fetch).
* ``images_from`` lists sources whose images this source's annotations refer to (WBCAtt's CSVs
  name PBC files): ``convert`` locates each of them and hands its root to the adapter.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import _yaml

#: the built-in catalog, shipped inside the package (so a wheel install finds it)
CATALOG_PATH = Path(__file__).resolve().with_name("catalog.yaml")

TASKS = ("detection", "segmentation", "classification", "attributes", "vqa", "mlm", "caption")
ACCESS_KINDS = ("http", "zenodo", "figshare", "mendeley", "github", "gdrive", "kaggle", "tcia", "manual", "derived")
ARCHIVE_KINDS = ("auto", "zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "gz", "rar", "7z", "none")
GRANULARITIES = ("single_cell", "field_of_view", "mixed")
ADAPTER_STATUS = ("implemented", "planned", "not_possible")


class CatalogError(ValueError):
    """Raised when ``catalog.yaml`` (or an extra catalog) is malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Strict):
    """One downloadable (or manually provided) file of a source dataset."""

    name: str = Field(description="file name on disk under raw/<id>/ (no directories)")
    url: Optional[str] = Field(default=None, description="primary download URL; null for manual-only")
    size: Optional[int] = Field(default=None, ge=0, description="bytes; null = not verified yet")
    sha256: Optional[str] = Field(default=None, description="lowercase hex; null = not verified yet")
    mirrors: list[str] = Field(default_factory=list)
    archive: str = Field(default="auto", description="archive kind, 'auto' guesses from the name")
    extract_to: Optional[str] = Field(default=None, description="sub-folder of raw/<id>/ to extract into")
    optional: bool = False
    note: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not v or "/" in v or "\\" in v or v in (".", ".."):
            raise ValueError(f"file name must be a plain file name, got {v!r}")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = v.lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {v!r}")
        return v

    @field_validator("archive")
    @classmethod
    def _archive(cls, v: str) -> str:
        if v not in ARCHIVE_KINDS:
            raise ValueError(f"archive must be one of {ARCHIVE_KINDS}, got {v!r}")
        return v

    @property
    def verified(self) -> bool:
        return self.size is not None and self.sha256 is not None


class ExpectedCounts(_Strict):
    """Counts as published (or as measured on the full download), used by tests and ``validate``."""

    images: Optional[int] = None
    objects: Optional[int] = None
    classes: Optional[int] = None
    splits: dict[str, int] = Field(default_factory=dict)
    note: Optional[str] = None


class DatasetEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    citation: str
    doi: Optional[str] = None
    homepage: str
    license: str
    license_note: Optional[str] = None
    redistributable: Literal["true", "false", "unknown"] | bool
    access: str
    record: Optional[str] = Field(default=None, description="host record id / DOI / owner/repo[@ref] / kaggle slug")
    manual_instructions: Optional[str] = None
    derived_from: list[str] = Field(default_factory=list, description="parent source ids of a derived set")
    images_from: list[str] = Field(
        default_factory=list,
        description="source ids whose located native roots this source's adapter reads images from "
                    "(the core locates them and hands them to the adapter, see Adapter.linked)")
    files: list[FileSpec] = Field(default_factory=list)
    tasks: list[str]
    disease: list[str]
    granularity: str
    magnification: Optional[str] = None
    microscope: Optional[str] = None
    stain: Optional[str] = None
    native_format: str
    expected_counts: ExpectedCounts = Field(default_factory=ExpectedCounts)
    known_issues: list[str] = Field(default_factory=list)
    adapter: str = "planned"
    in_paper: bool = True
    paper_table: Optional[str] = Field(default=None, description="which Uni-Hema list it comes from")
    notes: Optional[str] = None

    @field_validator("redistributable", mode="before")
    @classmethod
    def _redis(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v).lower()

    @field_validator("access")
    @classmethod
    def _access(cls, v: str) -> str:
        if v not in ACCESS_KINDS:
            raise ValueError(f"access must be one of {ACCESS_KINDS}, got {v!r}")
        return v

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in TASKS]
        if bad or not v:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {v!r}")
        return v

    @field_validator("granularity")
    @classmethod
    def _gran(cls, v: str) -> str:
        if v not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {v!r}")
        return v

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v: str) -> str:
        if v not in ADAPTER_STATUS:
            raise ValueError(f"adapter must be one of {ADAPTER_STATUS}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistency(self) -> "DatasetEntry":
        if self.access == "manual" and not self.manual_instructions:
            raise ValueError("access 'manual' needs manual_instructions")
        if (self.access == "derived") != bool(self.derived_from):
            raise ValueError("access 'derived' and derived_from (the parent source ids) go together")
        if self.access == "derived" and self.files:
            raise ValueError("a derived set has no files to fetch")
        names = [f.name for f in self.files]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate file names in files: {names}")
        if self.access not in ("manual", "kaggle", "tcia", "zenodo", "figshare", "mendeley"):
            missing = [f.name for f in self.files if not f.url]
            if missing:
                raise ValueError(f"files without url for access {self.access!r}: {missing}")
        return self

    @property
    def is_redistributable(self) -> bool:
        return self.redistributable == "true"

    @property
    def checksums_verified(self) -> bool:
        return bool(self.files) and all(f.verified for f in self.files)


class Catalog(_Strict):
    version: int = 1
    datasets: list[DatasetEntry]

    @model_validator(mode="after")
    def _unique(self) -> "Catalog":
        ids = [d.id for d in self.datasets]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate dataset ids: {dup}")
        known = set(ids)
        for d in self.datasets:
            missing = [p for p in d.derived_from if p not in known]
            if missing:
                raise ValueError(f"dataset {d.id!r}: derived_from names unknown ids {missing}")
            missing = [p for p in d.images_from if p not in known or p == d.id]
            if missing:
                raise ValueError(f"dataset {d.id!r}: images_from names unknown (or its own) ids {missing}")
        return self

    def get(self, dataset_id: str) -> DatasetEntry:
        for d in self.datasets:
            if d.id == dataset_id:
                return d
        known = ", ".join(sorted(d.id for d in self.datasets))
        raise KeyError(f"unknown dataset id {dataset_id!r}; known ids: {known}")

    def __iter__(self):  # type: ignore[override]
        return iter(self.datasets)

    def __len__(self) -> int:
        return len(self.datasets)

    def ids(self) -> list[str]:
        return [d.id for d in self.datasets]

    def filter(self, task: Optional[str] = None) -> list[DatasetEntry]:
        return [d for d in self.datasets if task is None or task in d.tasks]

    def merged(self, other: "Catalog") -> "Catalog":
        """Entries of ``other`` are added; an id present in both is replaced by ``other``'s."""
        by_id = {d.id: d for d in self.datasets}
        for d in other.datasets:
            by_id[d.id] = d
        return Catalog(version=self.version, datasets=list(by_id.values()))


def _format_validation_error(path: Path, raw: dict, err: ValidationError) -> str:
    lines = [f"{path}: invalid catalog"]
    datasets = raw.get("datasets") if isinstance(raw, dict) else None
    for e in err.errors():
        loc = list(e["loc"])
        where = ".".join(str(x) for x in loc)
        if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int) and isinstance(datasets, list):
            try:
                where = f"dataset {datasets[loc[1]].get('id', '#' + str(loc[1]))!r}: " + ".".join(str(x) for x in loc[2:])
            except Exception:  # pragma: no cover - defensive
                pass
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def load_catalog_file(path: Path | str) -> Catalog:
    """Load and validate one catalog file; raises :class:`CatalogError` naming the entry and field."""
    path = Path(path)
    try:
        raw = _yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CatalogError(f"{path}: catalog file not found") from e
    except _yaml.YAMLError as e:
        raise CatalogError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict) or "datasets" not in raw:
        raise CatalogError(f"{path}: expected a mapping with a 'datasets' list")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as e:
        raise CatalogError(_format_validation_error(path, raw, e)) from None


@lru_cache(maxsize=8)
def _load_cached(paths: tuple[str, ...]) -> Catalog:
    cat = load_catalog_file(paths[0])
    for p in paths[1:]:
        cat = cat.merged(load_catalog_file(p))
    return cat


def load_catalog(extra: Iterable[Path | str] = ()) -> Catalog:
    """The built-in catalog, plus entries of ``extra`` catalog files (a lab's in-house sources)."""
    return _load_cached(tuple([str(CATALOG_PATH)] + [str(Path(p).resolve()) for p in extra]))


def entry_as_json(entry: DatasetEntry) -> str:
    return json.dumps(entry.model_dump(mode="json"), indent=2)
