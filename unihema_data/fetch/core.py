"""The fetch ladder: resolve -> (manual copy | earlier download | download) -> verify -> extract -> mark.

Layout under ``ROOT``::

    ROOT/unihema-lock.json                 what was fetched (see :mod:`.lock`)
    ROOT/raw/<id>/<file name>              downloaded files (archives are kept)
    ROOT/raw/<id>/[<extract_to>/]...       extracted archive contents
    ROOT/raw/<id>/.unihema-complete.json   completion marker, written last
    ROOT/manual/<id>/<file name>           manual downloads (or ``--manual-dir``)

A source whose marker matches the current catalog entry is skipped without any
network access. A file found in the manual folder is used instead of downloading it,
for every access kind (handy behind firewalls). Files the catalog does not pin are
"registered" in the lock on first download (size + sha256) and enforced afterwards;
``register_checksums`` also writes them to ``ROOT/registered-checksums.yaml``, a
catalog file that can be passed with ``--catalog`` or copied into ``catalog.yaml``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import requests
import yaml

from ..catalog import Catalog, DatasetEntry
from .download import Target, download_file, file_hashes, make_progress, redact_url
from .errors import FetchError, ManualDownloadRequired, UnsafeArchiveError, VerificationError
from .extract import UNSUPPORTED, _safe_rel, archive_kind, extract_archive
from .lock import MARKER_NAME, LockFile, atomic_write_json, exclusive, now
from .manual import instructions, manual_folder
from .resolvers import Context, ResolvedFile, kaggle_credentials, resolve
from .settings import FetchSettings

REGISTERED_NAME = "registered-checksums.yaml"


@dataclass
class SourceResult:
    id: str
    state: str  # "complete" | "up-to-date" | "failed" | "manual" | "dry-run" | "derived"
    errors: list[str] = field(default_factory=list)
    manual_missing: list[str] = field(default_factory=list)
    registered: dict[str, dict] = field(default_factory=dict)


@dataclass
class StatusRow:
    id: str
    access: str
    state: str  # "complete" | "partial" | "missing" | "needs manual download"
    present: int
    total: Optional[int]
    detail: str = ""


def fingerprint(entry: DatasetEntry) -> str:
    """Hash of everything in the entry that decides what is fetched (a changed pin refetches)."""
    blob = {"access": entry.access, "record": entry.record,
            "files": [f.model_dump(mode="json", exclude={"note"}) for f in entry.files]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _check_name(sid: str, name: str) -> None:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith(".unihema"):
        raise FetchError(f"{sid}: refusing unsafe file name {name!r} from the host listing")


class Fetcher:
    """Runs the ladder for catalog sources; messages go to ``log`` (one line or block per call)."""

    def __init__(self, catalog: Catalog, root: Path, *, manual_dir: Optional[Path] = None,
                 settings: Optional[FetchSettings] = None, session: Optional[requests.Session] = None,
                 log: Callable[[str], None] = print, register_checksums: bool = False,
                 env: Optional[dict[str, str]] = None):
        self.catalog = catalog
        self.root = Path(root)
        self.manual_dir = Path(manual_dir) if manual_dir else self.root / "manual"
        self.settings = settings or FetchSettings.from_env()
        self.session = session or requests.Session()
        self.log = log
        self.register = register_checksums
        self.env = dict(os.environ) if env is None else dict(env)
        self.ctx = Context(self.settings, self.session, self.env, log)
        self._names: dict[str, list[str]] = {}  # file names of the source being fetched

    def raw_dir(self, sid: str) -> Path:
        return self.root / "raw" / sid

    # ------------------------------------------------------------------ fetch
    def fetch(self, ids: list[str], dry_run: bool = False) -> list[SourceResult]:
        entries = [self.catalog.get(i) for i in ids]  # KeyError names unknown ids before any work
        results: list[SourceResult] = []
        if dry_run:
            lock = LockFile(self.root)
            self.ctx.lookups = False
            try:
                return [self._dry_run(e, lock) for e in entries]
            finally:
                self.ctx.lookups = True
        with exclusive(self.root):
            lock = LockFile(self.root)
            for e in entries:
                results.append(self._fetch_one(e, lock))
                lock.save()
        registered = {r.id: r.registered for r in results if r.registered}
        if self.register and registered:
            self._write_registered(registered)
        return results

    def _expected(self, sid: str, f: ResolvedFile, lock: LockFile) -> tuple[Optional[int], Optional[str], Optional[dict]]:
        rec = lock.file(sid, f.name)
        size, sha = f.size, f.sha256
        if not f.pinned and rec:  # trust-on-first-use values registered earlier
            size = size if size is not None else rec.get("size")
            sha = sha or rec.get("sha256")
        return size, sha, rec

    def _derived(self, entry: DatasetEntry) -> SourceResult:
        parents = ", ".join(entry.derived_from)
        self.log(f"{entry.id}: nothing to fetch: built by `unihema-data generate` from {parents} "
                 f"(fetch and convert those: unihema-data fetch {' '.join(entry.derived_from)})")
        return SourceResult(entry.id, "derived")

    def _dry_run(self, entry: DatasetEntry, lock: LockFile) -> SourceResult:
        sid = entry.id
        if entry.access == "derived":
            return self._derived(entry)
        marker = _read_json(self.raw_dir(sid) / MARKER_NAME)
        if marker and marker.get("fingerprint") == fingerprint(entry):
            self.log(f"{sid}: complete, nothing would be fetched")
            return SourceResult(sid, "up-to-date")
        self.log(f"{sid}: would fetch into {self.raw_dir(sid)}/ ({entry.access})")
        try:
            files = resolve(entry, self.ctx)
        except ManualDownloadRequired as e:
            self.log(f"  manual download: {e}\n  {e.instructions}")
            return SourceResult(sid, "dry-run")
        except FetchError as e:
            self.log(f"  cannot resolve: {e}")
            return SourceResult(sid, "dry-run", errors=[str(e)])
        for f in files:
            size, sha, rec = self._expected(sid, f, lock)
            pins = (f"{size:,} bytes" if size is not None else "size ?") + ", " + (
                "sha256 pinned" if f.pinned else ("sha256 registered" if sha else "unpinned: registered on first download"))
            mpath = manual_folder(self.manual_dir, sid) / f.name
            if mpath.exists():
                where = f"from the manual folder {mpath}"
            elif f.manual:
                where = f"MANUAL: download it yourself into {mpath.parent}/ ({f.manual_reason})"
            else:
                where = "<- " + " | ".join(loc.display for loc in f.locations)
            have = " (already downloaded)" if (self.raw_dir(sid) / f.name).exists() and rec else ""
            self.log(f"  - {f.name}{have}  {where}  [{pins}]")
        return SourceResult(sid, "dry-run")

    def _fetch_one(self, entry: DatasetEntry, lock: LockFile) -> SourceResult:
        sid = entry.id
        if entry.access == "derived":
            return self._derived(entry)
        raw = self.raw_dir(sid)
        marker_path = raw / MARKER_NAME
        fp = fingerprint(entry)
        marker = _read_json(marker_path)
        if marker and marker.get("fingerprint") == fp:
            self.log(f"{sid}: complete, nothing to do")
            return SourceResult(sid, "up-to-date")
        self.log(f"{sid}: fetching ({entry.access}) into {raw}/")
        res = SourceResult(sid, "failed")
        try:
            files = resolve(entry, self.ctx)
            for f in files:
                _check_name(sid, f.name)
        except ManualDownloadRequired as e:
            self.log(f"{e}\n  {e.instructions}\n  Put the files in: {manual_folder(self.manual_dir, sid)}/")
            res.state = "manual"
            res.manual_missing = ["(see instructions)"]
            return res
        except FetchError as e:
            self.log(f"{sid}: FAILED: {e}")
            res.errors.append(str(e))
            return res
        self._names[sid] = [f.name for f in files]
        unpinned = [f.name for f in files if not f.pinned and not lock.file(sid, f.name)]
        if unpinned:
            self.log(f"  note: the catalog does not pin size+sha256 for {', '.join(unpinned)} yet; they will be "
                     f"registered in {lock.path.name} on first download"
                     + (" and written to " + REGISTERED_NAME if self.register else
                        " (use --register-checksums to also write them as a catalog file)"))
        previous = (marker or {}).get("files", {})
        if marker_path.exists():
            marker_path.unlink()  # the catalog changed: the source is no longer known complete
        done: dict[str, dict] = {}
        missing: list[ResolvedFile] = []
        for f in files:
            try:
                info = self._one_file(entry, f, raw, lock, previous)
            except FetchError as e:
                msg = str(e) + (f"\n  hint: {f.hint}" if f.hint and not isinstance(e, (VerificationError,
                                                                                          UnsafeArchiveError)) else "")
                if f.optional:
                    self.log(f"  warning: optional file {f.name} skipped: {msg}")
                    continue
                self.log(f"  FAILED {f.name}: {msg}")
                res.errors.append(f"{f.name}: {msg}")
                continue
            finally:
                lock.save()
            if info is None:
                if not f.optional:
                    missing.append(f)
                continue
            done[f.name] = info
            if not f.pinned:
                res.registered[f.name] = {"size": info["size"], "sha256": info["sha256"]}
        if missing:
            self.log(instructions(entry, missing, manual_folder(self.manual_dir, sid)))
            res.manual_missing = [f.name for f in missing]
        if res.errors or missing:
            lock.set_complete(sid, False)
            res.state = "failed" if res.errors else "manual"
            return res
        atomic_write_json(marker_path, {"id": sid, "fingerprint": fp, "completed_at": now(), "files": done})
        lock.set_complete(sid, True)
        self.log(f"{sid}: complete")
        res.state = "complete"
        return res

    def _verify_local(self, path: Path, name: str, size: Optional[int], sha: Optional[str],
                      host: dict[str, str]) -> str:
        """Hash a local file and check it; returns its sha256 or raises :class:`VerificationError`."""
        got = path.stat().st_size
        if size is not None and got != size:
            raise VerificationError(f"size mismatch for {path}:\n    expected size    {size:,} bytes\n"
                                    f"    got      size    {got:,} bytes")
        algos = ("sha256",) + tuple(a for a in host if a != "sha256")
        digests = file_hashes(path, algos)
        if sha and digests["sha256"] != sha:
            raise VerificationError(f"sha256 mismatch for {path}:\n    expected sha256  {sha}\n"
                                    f"    got      sha256  {digests['sha256']}")
        for a, want in host.items():
            if digests[a] != want.lower():
                raise VerificationError(f"{a} mismatch (host-published) for {path}:\n"
                                        f"    expected {a:<7} {want.lower()}\n    got      {a:<7} {digests[a]}")
        return digests["sha256"]

    def _one_file(self, entry: DatasetEntry, f: ResolvedFile, raw: Path, lock: LockFile,
                  previous: dict) -> Optional[dict]:
        sid = entry.id
        dest = raw / f.name
        mpath = manual_folder(self.manual_dir, sid) / f.name
        size, sha, rec = self._expected(sid, f, lock)
        registered_note = ("" if f.pinned or not rec else
                           f"\n  (expected values were registered in {lock.path} on {rec.get('fetched_at')}; "
                           f"if the upstream file changed on purpose, delete that entry)")
        if mpath.is_file():
            try:
                digest = self._verify_local(mpath, f.name, size, sha, f.host_checksums)
            except VerificationError as e:
                raise VerificationError(f"the file in the manual folder does not verify: {e}{registered_note}"
                                        f"\n  Nothing was extracted; replace the file and run again.") from None
            src, origin, url = mpath, "manual", str(mpath)
            self.log(f"  {f.name}: verified in the manual folder (sha256 {digest[:12]}…)")
        elif (dest.is_file() and rec and rec.get("size") == dest.stat().st_size
              and (sha is None or rec.get("sha256") == sha) and (size is None or size == rec.get("size"))):
            src, origin, url, digest = dest, rec.get("origin", "download"), rec.get("url", ""), rec["sha256"]
            self.log(f"  {f.name}: already downloaded and verified")
        elif f.manual:
            return None
        else:
            if dest.is_file():
                try:
                    digest = self._verify_local(dest, f.name, size, sha, f.host_checksums)
                    src, origin, url = dest, "download", "(found on disk)"
                except VerificationError:
                    self.log(f"  {f.name}: the copy on disk does not verify; downloading it again")
                    dest.unlink()
            if not dest.is_file():
                target = Target(f.name, f.locations, size=size, sha256=sha, host_checksums=f.host_checksums)
                self.log(f"  {f.name}: downloading from {f.locations[0].display if f.locations else '?'}"
                         + (f" ({size:,} bytes)" if size else ""))
                try:
                    r = download_file(target, dest, session=self.session, settings=self.settings,
                                      progress=make_progress(self.settings), log=self.log)
                except VerificationError as e:
                    raise VerificationError(str(e) + registered_note) from None
                src, origin, url, digest = dest, "download", r.url, r.sha256
                self.log(f"  {f.name}: verified ({r.size:,} bytes, sha256 {digest[:12]}…)"
                         + ("" if f.pinned else " — registered"))
        got_size = src.stat().st_size
        lock.record_file(sid, f.name, url=url, size=got_size, sha256=digest, origin=origin, pinned=f.pinned)
        kind = archive_kind(f.name, f.archive)
        info = {"size": got_size, "sha256": digest, "origin": origin, "extracted": None}
        target_dir = raw
        if f.extract_to:
            rel = _safe_rel(f.extract_to)
            target_dir = raw / rel if rel is not None else raw
        if kind == "none":
            if origin == "manual" and not (dest.is_file() and dest.stat().st_size == got_size):
                _link_or_copy(src, dest)
            return info
        if kind in UNSUPPORTED:
            self.log(f"  warning: {f.name} is a {kind} archive, which fetch does not extract; "
                     f"extract it yourself into {target_dir}/")
            return info
        prev = previous.get(f.name) or {}
        if prev.get("sha256") == digest and prev.get("extracted") == kind and target_dir.is_dir():
            info["extracted"] = kind
            return info
        # nothing extracted may land on the marker, a downloaded file or a partial download
        reserved = [MARKER_NAME] + [n + suf for n in self._names.get(sid, [f.name]) for suf in ("", ".part", ".part.json")]
        reserved = [r for r in (_rel_to(raw / r, target_dir) for r in reserved) if r]
        res = extract_archive(src, target_dir, kind, max_bytes=self.settings.max_extract_bytes,
                              max_members=self.settings.max_members, max_ratio=self.settings.max_extract_ratio,
                              reserved=reserved)
        self.log(f"  {f.name}: extracted {res.members:,} members ({res.bytes:,} bytes) into {target_dir}/")
        info["extracted"] = kind
        return info

    def _write_registered(self, registered: dict[str, dict[str, dict]]) -> None:
        """Write ``ROOT/registered-checksums.yaml``: the affected entries with sizes/sha256 filled in."""
        path = self.root / REGISTERED_NAME
        existing = {}
        old = path.exists() and yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for d in old.get("datasets", []) if isinstance(old, dict) else []:
            existing[d.get("id")] = _redact_entry(d)
        for sid, files in registered.items():
            entry = self.catalog.get(sid).model_dump(mode="json")
            have = {f["name"] for f in entry["files"]}
            for fd in entry["files"]:
                if fd["name"] in files:
                    fd["size"], fd["sha256"] = files[fd["name"]]["size"], files[fd["name"]]["sha256"]
            if not have:  # file list came from the host: record it
                entry["files"] = [{"name": n, **v} for n, v in files.items()]
            existing[sid] = _redact_entry(entry)
        text = ("# Sizes and sha256 registered by 'unihema-data fetch --register-checksums' on first download.\n"
                "# Review, then copy the values into catalog.yaml or pass this file with --catalog.\n"
                "# URLs are redacted like the logs (no user:password, no query values such as tokens):\n"
                "# copy the size/sha256 values, not the URLs.\n"
                + yaml.safe_dump({"version": 1, "datasets": list(existing.values())}, sort_keys=False,
                                 allow_unicode=True))
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        self.log(f"registered checksums written to {path}")

    # ------------------------------------------------------------------ status
    def _static_manual(self, entry: DatasetEntry) -> list[str]:
        """Names of files that need the user's hands, decided without network access."""
        if entry.access == "manual":
            return [f.name for f in entry.files]
        out = []
        for f in entry.files:
            if not f.url and not f.mirrors and entry.access in ("http", "tcia"):
                out.append(f.name)
            elif f.url and entry.access == "gdrive" and "/folders/" in f.url:
                out.append(f.name)
        if entry.access == "kaggle" and kaggle_credentials(self.env, self.settings.kaggle_config_dir) is None:
            out += [f.name for f in entry.files if not f.url or f.url.startswith(self.settings.kaggle_api)]
        return out

    def status(self, ids: list[str]) -> list[StatusRow]:
        lock = LockFile(self.root)
        rows = []
        for sid in ids:
            entry = self.catalog.get(sid)
            if entry.access == "derived":
                rows.append(StatusRow(sid, entry.access, "derived", 0, 0,
                                      f"built by unihema-data generate from {', '.join(entry.derived_from)}"))
                continue
            raw = self.raw_dir(sid)
            marker = _read_json(raw / MARKER_NAME)
            recorded = lock.data["sources"].get(sid, {}).get("files", {})
            names = [f.name for f in entry.files] or list(recorded)
            present = sum(1 for n in names if (raw / n).is_file() or n in recorded)
            total = len(entry.files) if entry.files else None
            if marker and marker.get("fingerprint") == fingerprint(entry):
                rows.append(StatusRow(sid, entry.access, "complete", len(marker.get("files", {})),
                                      len(marker.get("files", {})), f"since {marker.get('completed_at', '?')}"))
                continue
            man = [n for n in self._static_manual(entry) if n not in recorded
                   and not (manual_folder(self.manual_dir, sid) / n).is_file()
                   and not next((f for f in entry.files if f.name == n and f.optional), None)]
            if man:
                rows.append(StatusRow(sid, entry.access, "needs manual download", present, total,
                                      f"put {', '.join(man)} in {manual_folder(self.manual_dir, sid)}/"))
                continue
            parts = list(raw.glob("*.part")) if raw.is_dir() else []
            if marker:
                state, detail = "partial", "catalog entry changed since the last fetch"
            elif present or parts or (raw.is_dir() and any(raw.iterdir())):
                state, detail = "partial", (f"{len(parts)} interrupted download(s)" if parts else "")
            else:
                state, detail = "missing", ""
            rows.append(StatusRow(sid, entry.access, state, present, total, detail))
        return rows


def _redact_entry(entry: dict) -> dict:
    """A catalog entry (as a dict) with every URL redacted like the logs (:func:`redact_url`)."""
    out = dict(entry)
    for key in ("homepage",):
        if isinstance(out.get(key), str) and "://" in out[key]:
            out[key] = redact_url(out[key])
    files = []
    for f in out.get("files") or []:
        f = dict(f)
        if isinstance(f.get("url"), str):
            f["url"] = redact_url(f["url"])
        if isinstance(f.get("mirrors"), list):
            f["mirrors"] = [redact_url(m) if isinstance(m, str) else m for m in f["mirrors"]]
        files.append(f)
    if "files" in out:
        out["files"] = files
    return out


def _rel_to(path: Path, folder: Path) -> Optional[str]:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return None


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
