"""``unihema-data publish``: stage a converted corpus for the Hugging Face Hub and upload it.

License gate
    A source is published only when its catalog entry says ``redistributable: true``; a derived
    text set also needs every parent (``derived_from``) to pass, since its rows repeat the parents'
    images. Any other source (``false``, ``unknown``, or not in the catalog) is left out unless the
    user names it with ``--include SOURCE``, which states that they hold the rights to redistribute
    it. The card lists every excluded source with the commands that rebuild it locally.

Staging
    Exactly what is uploaded is assembled in a staging folder: ``data/<source>/*.parquet`` (hard
    links to OUT's shards, copies where links are impossible), ``README.md`` (the card, rendered for
    the included sources with the excluded ones listed), ``LICENSE.md``, ``croissant.json`` (URLs on
    the Hub repo) and ``previews/<source>.png``. Nothing of OUT's private state (``.unihema/``:
    manifest, staging, caches) is staged. The folder is built next to its destination and swapped
    in when complete; an upload's resume state (``.cache/huggingface``) survives restaging.

Dry run
    ``--dry-run`` stages (default ``OUT/.unihema/publish/<org>--<name>``, or ``--staging DIR``) and
    loads every config of the staged card with ``datasets.load_dataset(DIR, config)`` (into a
    temporary cache), checking split row counts against the manifest; nothing is sent anywhere.

Upload
    ``HfApi.create_repo(..., repo_type="dataset", exist_ok=True)`` then ``upload_large_folder`` (the
    resumable multi-commit upload) where the installed ``huggingface_hub`` has it, else
    ``upload_folder``, which in ``huggingface_hub`` 2.x with ``hf_xet`` is the same streamed,
    multi-commit, resumable upload with a live progress display (a rerun skips files already on the
    Hub). The token comes from the ``HF_TOKEN`` environment variable or the user's login
    (``hf auth login``), read by ``huggingface_hub.get_token``; it is passed to ``HfApi`` in memory
    only and never printed, logged or written; Hub error messages are scrubbed of it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .card import LICENSE_FILE, render_card, render_license_file
from .catalog import load_catalog
from .corpus import CorpusError, check_corpus, sources_of
from .croissant import CROISSANT_FILE, validate_croissant, write_croissant
from .outdir import atomic_write_text, read_manifest, source_files

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
#: top-level entries of a staged folder (anything else in an existing --staging DIR is refused)
STAGED_ENTRIES = {"README.md", LICENSE_FILE, CROISSANT_FILE, "data", "previews", ".cache"}


class PublishError(Exception):
    """Publishing cannot proceed; the message says why (never contains the token)."""


@dataclass
class PublishPlan:
    out: Path
    repo_id: str
    included: list[str]
    excluded: dict[str, str]                         # source -> reason
    rights_asserted: list[str] = field(default_factory=list)  # included only through --include


@dataclass
class StageReport:
    folder: Path
    files: list[str]                                  # staged paths, relative, POSIX
    bytes: int
    loaded: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows


def _gate(sid: str, catalog, seen: Optional[set] = None) -> Optional[str]:
    """Why ``sid`` may not be redistributed, or None when its catalog entry (and its parents) allow it."""
    if sid not in catalog.ids():
        return "not in the catalog: its terms are unknown"
    e = catalog.get(sid)
    if e.redistributable != "true":
        why = {"false": "the license does not allow redistribution",
               "unknown": "the terms do not clearly allow redistribution"}[e.redistributable]
        return f"{why} (license: {e.license}" + (f"; {e.license_note}" if e.license_note else "") + ")"
    for parent in e.derived_from:
        seen = (seen or set()) | {sid}
        if parent in seen:
            continue
        why = _gate(parent, catalog, seen)
        if why:
            return f"built from `{parent}`, whose {why[0].lower() + why[1:]}"
    return None


def plan_publication(out: Path, repo_id: str, include: Sequence[str] = ()) -> PublishPlan:
    """Which sources of ``OUT`` are published (license gate; ``include`` = rights asserted by the user)."""
    if not REPO_ID.match(repo_id or ""):
        raise PublishError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    try:
        check_corpus(out)
        present = sources_of(out)
    except CorpusError as e:
        raise PublishError(str(e)) from None
    unknown = [s for s in include if s not in present]
    if unknown:
        raise PublishError(f"--include names source(s) not in {out}: {', '.join(unknown)} "
                           f"(present: {', '.join(present)})")
    catalog = load_catalog()
    included, excluded, asserted = [], {}, []
    for s in present:
        why = _gate(s, catalog)
        if why is None:
            included.append(s)
        elif s in include:
            included.append(s)
            asserted.append(s)
        else:
            excluded[s] = why
    if not included:
        raise PublishError(f"nothing to publish: no source of {out} may be redistributed "
                           f"({', '.join(f'{s}: {w}' for s, w in excluded.items())}); name sources you hold the "
                           "rights to with --include")
    return PublishPlan(Path(out), repo_id, included, excluded, asserted)


def default_staging(out: Path, repo_id: str) -> Path:
    return Path(out) / ".unihema" / "publish" / repo_id.replace("/", "--")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stage(plan: PublishPlan, folder: Path, on_progress: Optional[Callable[[str], None]] = None) -> StageReport:
    """Assemble exactly what is uploaded into ``folder`` (atomically replaced; see the module doc)."""
    from .preview import fresh_previews, render_source, save_png

    folder = Path(folder).absolute()
    out = plan.out.absolute()
    if folder == out or out in folder.parents and ".unihema" not in folder.relative_to(out).parts:
        raise PublishError(f"--staging {folder} must not be inside the corpus {out} (except under .unihema/)")
    if folder.exists():
        if not folder.is_dir():
            raise PublishError(f"--staging {folder}: exists and is not a folder")
        extra = sorted(p.name for p in folder.iterdir() if p.name not in STAGED_ENTRIES)
        if extra:
            raise PublishError(f"--staging {folder}: not empty and not a previous staging "
                               f"(unexpected: {', '.join(extra[:5])}); choose another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        for s in plan.included:
            if on_progress:
                on_progress(f"link shards of {s}")
            for files in source_files(out, s).values():
                for f in files:
                    _link(f, tmp / "data" / s / f.name)
        if on_progress:
            on_progress("render sample grids")
        fresh = fresh_previews(out)  # grids the user already has in OUT/previews are reused, others drawn
        for s in plan.included:
            if s in fresh:
                _link(out / "previews" / f"{s}.png", tmp / "previews" / f"{s}.png")
            else:
                save_png(render_source(out, s)[0], tmp / "previews" / f"{s}.png")
        if on_progress:
            on_progress("render card and Croissant description")
        # the card is rendered against OUT (same relative layout), restricted to the included sources
        text = render_card(out, sources=plan.included, excluded=plan.excluded, repo_id=plan.repo_id,
                           previews=plan.included)
        if plan.rights_asserted:
            text += ("\n## Rights\n\nThe publisher states they hold the rights to redistribute: "
                     + ", ".join(f"`{s}`" for s in plan.rights_asserted) + ".\n")
        atomic_write_text(tmp / "README.md", text)
        atomic_write_text(tmp / LICENSE_FILE, render_license_file(out, plan.included))
        write_croissant(out, tmp / CROISSANT_FILE, sources=plan.included, repo_id=plan.repo_id)
        if importlib.util.find_spec("mlcroissant") is not None:
            if on_progress:
                on_progress("validate the Croissant description")
            problems = validate_croissant(tmp / CROISSANT_FILE)
            if problems:
                raise PublishError("the Croissant description is invalid (mlcroissant): " + "; ".join(problems)[:2000])
        if (folder / ".cache").is_dir():  # keep an interrupted upload's resume state
            os.replace(folder / ".cache", tmp / ".cache")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except OSError as e:  # disk full, permissions
        shutil.rmtree(tmp, ignore_errors=True)
        raise PublishError(f"cannot stage into {folder}: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and ".cache" not in p.relative_to(folder).parts)
    return StageReport(folder, files, sum((folder / f).stat().st_size for f in files))


#: staged data up to this size is loaded fully by --dry-run; larger staging is checked by streaming
FULL_LOAD_BYTES = 2 * 2**30


def verify_staged(folder: Path, plan: PublishPlan, on_progress: Optional[Callable[[str], None]] = None,
                  full: Optional[bool] = None) -> dict:
    """Load every config of the staged card with ``datasets.load_dataset(folder, config)`` and check
    its split sizes against the manifest. Returns config -> split -> rows.

    ``full`` (default: staged data <= :data:`FULL_LOAD_BYTES`) prepares each config into a temporary
    cache and counts its rows. Otherwise each config is opened with ``streaming=True``, the first
    row of every split is decoded, and the rows are counted from the Parquet footers of the files
    the config resolves to (no copy of a large corpus is made)."""
    import datasets
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    card = DatasetCard.load(folder / "README.md")
    configs = [c["config_name"] for c in card.data.to_dict().get("configs", [])]
    if full is None:
        full = sum(p.stat().st_size for p in (folder / "data").rglob("*.parquet")) <= FULL_LOAD_BYTES
    manifest = read_manifest(plan.out)
    kinds = {s: manifest["sources"][s].get("kind", "source") for s in plan.included}
    loaded: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="unihema-verify-") as cache:
        for c in configs:
            if on_progress:
                on_progress(f"load config {c}" + ("" if full else " (streaming)"))
            try:
                if full:
                    ds = datasets.load_dataset(str(folder), c, cache_dir=cache)
                    loaded[c] = {s: len(d) for s, d in ds.items()}
                else:
                    builder = datasets.load_dataset_builder(str(folder), c, cache_dir=cache)
                    ds = datasets.load_dataset(str(folder), c, streaming=True, cache_dir=cache)
                    loaded[c] = {}
                    for split, files in builder.config.data_files.items():
                        next(iter(ds[split]))  # the first row decodes
                        loaded[c][split] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            except Exception as e:
                raise PublishError(f"staged folder {folder}: config {c!r} does not load: {e}") from None
            members = [s for s in plan.included if kinds[s] == "source"] if c == "all" else [c]
            want: dict[str, int] = {}
            for s in members:
                for sp, n in manifest["sources"][s].get("counts", {}).items():
                    if n:
                        want[sp] = want.get(sp, 0) + n
            if loaded[c] != want:
                raise PublishError(f"staged config {c!r} loads {loaded[c]} rows per split, the manifest says {want}")
    return loaded


def resolve_token() -> str:
    """The user's token (``HF_TOKEN`` or the saved login); raises when there is none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN")
    return token


def upload(folder: Path, plan: PublishPlan, private: bool, endpoint: Optional[str] = None) -> str:
    """Create the dataset repo (if needed) and upload the staged folder; returns the repo URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = resolve_token()
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        # private=None when not asked: an existing repo keeps its visibility, a new one gets the Hub default
        url = api.create_repo(plan.repo_id, repo_type="dataset", private=private or None, exist_ok=True)
        large = getattr(api, "upload_large_folder", None)
        if large is not None:
            large(repo_id=plan.repo_id, folder_path=str(folder), repo_type="dataset", private=private or None,
                  ignore_patterns=[".cache/**"])
        else:
            api.upload_folder(repo_id=plan.repo_id, folder_path=str(folder), repo_type="dataset",
                              commit_message=f"UniHema corpus: {', '.join(plan.included)}",
                              ignore_patterns=[".cache/**"], delete_patterns=["data/**", "previews/**"])
    except HfHubHTTPError as e:
        raise PublishError(f"upload to {plan.repo_id} failed: {_scrub(str(e), token)}") from None
    except ValueError as e:  # the Hub rejected the card's metadata (validate-yaml)
        raise PublishError(f"the Hub rejected the dataset card of {folder}: {_scrub(str(e), token)}") from None
    except Exception as e:  # connection refused, timeouts, TLS...: a message, never a traceback
        raise PublishError(f"upload to {plan.repo_id} at {api.endpoint} failed: {type(e).__name__}: "
                           f"{_scrub(str(e), token)}; rerun the same command to resume") from None
    return str(url)


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
