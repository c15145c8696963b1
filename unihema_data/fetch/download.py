"""Robust HTTP(S) download of one file: ``.part`` file, Range resume, retries, HTML rejection, verification.

Conventions
-----------
* A download is written to ``<dest>.part``; validators of the response (ETag,
  Last-Modified, URL) go to ``<dest>.part.json`` so that a resume sends ``If-Range``
  and a changed upstream file restarts from byte 0 instead of being spliced.
* Bytes are stored exactly as served (no transfer decoding), so the sha256 is that
  of the file the host publishes.
* Transient failures (HTTP 408/425/429/5xx, dropped connections, timeouts, truncated
  bodies) are retried ``settings.retries`` times per URL with exponential backoff
  ``settings.backoff * 2**(attempt-1)`` seconds (capped; ``Retry-After`` honoured).
  Permanent failures (other 4xx, HTML instead of a file) move on to the next mirror.
* Verification order: size, then sha256, then any host-published checksum (md5 or
  sha256 from the Zenodo/Figshare/Mendeley/GitHub API). Expected and got values are
  printed side by side. The ``.part`` file is renamed onto ``dest`` only when every
  check passes; on a mismatch it is deleted, so nothing unverified is left in place.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from .errors import (
    FetchError,
    HTMLInsteadOfFileError,
    PermanentHTTPError,
    TransientHTTPError,
    VerificationError,
)
from .neterr import network_cause
from .settings import USER_AGENT, FetchSettings

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_MAX_INTERSTITIAL_HOPS = 3
_SNIFF_BYTES = 1 << 16
# magic numbers of binary formats that are never HTML even when mislabelled text/html
_BINARY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!",
                 b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"\x93NUMPY")

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def redact_url(url: str) -> str:
    """``url`` without user:password and without query values (tokens, keys, signed-URL signatures)."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    query = "&".join(kv.split("=", 1)[0] + "=…" if "=" in kv else kv for kv in p.query.split("&")) if p.query else ""
    return urlunsplit((p.scheme, netloc, p.path, query, ""))


@dataclass
class Location:
    """One place a file can be downloaded from.

    ``auth`` is an HTTP basic-auth pair sent to this URL only (requests drops it on a
    redirect to another host); it is never printed. ``interstitial`` turns an HTML page
    (e.g. Google Drive's virus-scan warning) into the URL to request next, or ``None``.
    """

    url: str
    auth: Optional[tuple[str, str]] = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    interstitial: Optional[Callable[[str, str], Optional[str]]] = field(default=None, repr=False)

    @property
    def display(self) -> str:
        return redact_url(self.url)


@dataclass
class Target:
    """What to download and what it must verify against (``None`` = unknown, not checked)."""

    name: str
    locations: list[Location]
    size: Optional[int] = None
    sha256: Optional[str] = None
    host_checksums: dict[str, str] = field(default_factory=dict)  # {"md5": hex} / {"sha256": hex} from host APIs
    allow_html: bool = False


@dataclass
class DownloadResult:
    path: Path
    size: int
    sha256: str
    url: str  # redacted URL the file came from
    resumed: bool


class Progress:
    """Minimal progress interface; :class:`RichProgress` draws bars, the base class is silent."""

    def start(self, name: str, total: Optional[int], completed: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def stop(self) -> None: ...


class RichProgress(Progress):
    """One rich progress bar per file (only used on a terminal)."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, DownloadColumn, Progress as _P, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self._p = _P(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                     TimeRemainingColumn(), transient=True)
        self._task = None

    def start(self, name: str, total: Optional[int], completed: int) -> None:
        if self._task is None:
            self._p.start()
        else:  # a retry of the same file: replace its bar
            self._p.remove_task(self._task)
        self._task = self._p.add_task(name, total=total, completed=completed)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._p.advance(self._task, n)

    def stop(self) -> None:
        if self._task is not None:
            self._p.remove_task(self._task)
            self._p.stop()
            self._task = None


def make_progress(settings: FetchSettings) -> Progress:
    if settings.progress and sys.stderr.isatty():
        return RichProgress()
    return Progress()


class _Interstitial(Exception):
    def __init__(self, next_url: str):
        self.next_url = next_url


class _Restart(TransientHTTPError):
    """The partial file was unusable (range ignored / wrong range); start again from byte 0 at once."""


def looks_like_html(content_type: str, head: bytes) -> bool:
    """True when a response body is an HTML page (by content type or by its first bytes)."""
    if any(head.startswith(m) for m in _BINARY_MAGIC):
        return False
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()[:512]
    if h.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<script", b"<title")):
        return True
    if h.startswith(b"<!--") and b"<html" in h:
        return True
    return "text/html" in (content_type or "").lower() or "application/xhtml" in (content_type or "").lower()


def file_hashes(path: Path, algos: tuple[str, ...] = ("sha256",), chunk: int = 1 << 20) -> dict[str, str]:
    hs = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            for h in hs.values():
                h.update(b)
    return {a: h.hexdigest() for a, h in hs.items()}


def _discard(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _retry_after(resp: requests.Response) -> Optional[float]:
    v = resp.headers.get("Retry-After")
    if v and v.strip().isdigit():
        return float(v.strip())
    return None


def _parse_content_range(v: str) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """``bytes 10-99/100`` -> (10, 99, 100); ``bytes */100`` -> (None, None, 100)."""
    try:
        unit, rng = v.strip().split(" ", 1)
        span, total = rng.split("/", 1)
        tot = None if total.strip() == "*" else int(total)
        if span.strip() == "*":
            return None, None, tot
        a, b = span.split("-", 1)
        return int(a), int(b), tot
    except ValueError:
        return None, None, None


class _Transfer:
    """State of one file's transfer from one location (see :func:`download_file`)."""

    def __init__(self, target: Target, dest: Path, session: requests.Session, settings: FetchSettings,
                 progress: Progress, log: Log):
        self.t, self.dest, self.s, self.cfg, self.progress, self.log = target, dest, session, settings, progress, log
        self.part = dest.with_name(dest.name + ".part")
        self.meta = dest.with_name(dest.name + ".part.json")
        self.resumed = False

    # --- the partial file and its validators -------------------------------------------------
    def _validators(self, url: str) -> dict:
        try:
            m = json.loads(self.meta.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return m if m.get("url_sha256") == _url_key(url) else {}

    def _offset(self, url: str) -> int:
        if not self.part.exists():
            return 0
        off = self.part.stat().st_size
        v = self._validators(url)
        if off and not v:
            self.log(f"  {self.t.name}: discarding a partial file of unknown origin")
            _discard(self.part, self.meta)
            return 0
        if off and not (v.get("etag") or v.get("last_modified")) and not (self.t.sha256 or self.t.host_checksums):
            # without a validator (If-Range) nor a checksum, a resume could splice two versions of
            # a changed upstream file into one that nothing would catch
            self.log(f"  {self.t.name}: the server gave no ETag/Last-Modified and no checksum pins the file: "
                     "restarting from zero instead of resuming")
            _discard(self.part, self.meta)
            return 0
        if self.t.size is not None and off > self.t.size:
            self.log(f"  {self.t.name}: partial file is larger than expected; starting again")
            _discard(self.part, self.meta)
            return 0
        return off

    def _changed_upstream(self, url: str, r: requests.Response, total: Optional[int]) -> str:
        """Why a 206 answer cannot be appended to the ``.part`` ("" when it can): its validators
        or total size differ from those the partial download was started with, or (file pinned by
        no checksum) it carries no validator to compare at all."""
        v = self._validators(url)
        etag, lm = r.headers.get("ETag"), r.headers.get("Last-Modified")
        if v.get("etag") and etag and etag != v["etag"]:
            return f"ETag {v['etag']} -> {etag}"
        if v.get("last_modified") and lm and lm != v["last_modified"]:
            return f"Last-Modified {v['last_modified']} -> {lm}"
        if v.get("total") is not None and total is not None and total != v["total"]:
            return f"size {v['total']:,} -> {total:,} bytes"
        if not (etag or lm) and not (self.t.sha256 or self.t.host_checksums):
            return "the range answer has no ETag/Last-Modified and no checksum pins the file"
        return ""

    def _hash_existing(self, hs: dict) -> None:
        with open(self.part, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                for h in hs.values():
                    h.update(b)

    # --- one HTTP request ----------------------------------------------------------------------
    def once(self, loc: Location, url: str) -> dict[str, str]:
        """One request; returns the hex digests of the complete ``.part`` or raises."""
        algos = ["sha256"] + [a for a in self.t.host_checksums if a != "sha256"]
        offset = self._offset(url)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **loc.headers}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            v = self._validators(url)
            if v.get("etag") or v.get("last_modified"):
                headers["If-Range"] = v.get("etag") or v["last_modified"]
        try:
            r = self.s.get(url, headers=headers, stream=True, timeout=(self.cfg.timeout, self.cfg.timeout),
                           auth=loc.auth, allow_redirects=True)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise TransientHTTPError(f"connection failed ({network_cause(e)})") from None
        except requests.RequestException as e:
            raise PermanentHTTPError(f"request failed ({network_cause(e)})") from None
        with r:
            st = r.status_code
            if st == 416 and offset:
                _, _, total = _parse_content_range(r.headers.get("Content-Range", ""))
                if total == offset or (total is None and self.t.size == offset):
                    hs = {a: hashlib.new(a) for a in algos}
                    self._hash_existing(hs)
                    return {a: h.hexdigest() for a, h in hs.items()}
                _discard(self.part, self.meta)
                raise _Restart("server refused the resume range")
            if st in TRANSIENT_STATUS or st >= 500:
                err = TransientHTTPError(f"HTTP {st}{self._via(url, r)}")
                err.retry_after = _retry_after(r)  # type: ignore[attr-defined]
                raise err
            if st in (401, 403):
                raise PermanentHTTPError(
                    f"HTTP {st}{self._via(url, r)}: access denied (the host wants a login, a licence "
                    f"acceptance or valid credentials, or the link has expired)", st)
            if st >= 400:
                raise PermanentHTTPError(f"HTTP {st}{self._via(url, r)}", st)
            ctype = r.headers.get("Content-Type", "")
            if st == 206:
                start, _, total = _parse_content_range(r.headers.get("Content-Range", ""))
                if start != offset:
                    _discard(self.part, self.meta)
                    raise _Restart(f"server answered a different range (asked {offset}, got {start})")
                changed = self._changed_upstream(url, r, total)
                if changed:
                    # a server that ignores If-Range sends the rest of the *new* file: never splice
                    _discard(self.part, self.meta)
                    raise _Restart(f"the file changed upstream since the partial download ({changed})")
                mode = "ab"
                self.resumed = True
                expected_total = total
            else:
                if offset:
                    self.log(f"  {self.t.name}: server ignored the resume request (or the file changed); "
                             f"downloading from the start")
                offset = 0
                mode = "wb"
                expected_total = None
            clen = r.headers.get("Content-Length", "")
            if clen.isdigit():  # raw (undecoded) bytes are stored, so Content-Length is comparable
                expected_total = offset + int(clen)

            stream = r.raw.stream(self.cfg.chunk_size, decode_content=False)
            head = b""
            try:
                if not self.t.allow_html:
                    if offset == 0:
                        while len(head) < 512:
                            b = next(stream, b"")
                            if not b:
                                break
                            head += b
                        if looks_like_html(ctype, head):
                            page = head
                            for b in stream:
                                page += b
                                if len(page) > _SNIFF_BYTES:
                                    break
                            text = page.decode("utf-8", "replace")
                            if loc.interstitial is not None:
                                nxt = loc.interstitial(text, r.url)
                                if nxt:
                                    raise _Interstitial(nxt)
                            raise HTMLInsteadOfFileError(
                                f"answered with an HTML page{self._via(url, r)} (Content-Type {ctype or 'unknown'!r}), "
                                f"not the expected file: probably a login wall, an error page or a changed link. "
                                f"Nothing was saved.")
                    elif "text/html" in ctype.lower():
                        raise HTMLInsteadOfFileError(f"answered the resume with an HTML page{self._via(url, r)}")
                if st == 200:
                    # the URL may carry credentials or signed tokens: keep it redacted, match by hash
                    self.meta.write_text(json.dumps({"url": redact_url(url), "url_sha256": _url_key(url),
                                                     "etag": r.headers.get("ETag"),
                                                     "last_modified": r.headers.get("Last-Modified"),
                                                     "total": expected_total}))
                self._check_space(expected_total, offset)
                hs = {a: hashlib.new(a) for a in algos}
                if mode == "ab":
                    self._hash_existing(hs)
                got = offset
                self.progress.start(self.t.name, expected_total or self.t.size, offset)
                with open(self.part, mode) as f:
                    for b in ([head] if head else []):
                        f.write(b)
                        for h in hs.values():
                            h.update(b)
                        got += len(b)
                        self.progress.advance(len(b))
                    for b in stream:
                        f.write(b)
                        for h in hs.values():
                            h.update(b)
                        got += len(b)
                        self.progress.advance(len(b))
            except (urllib3.exceptions.HTTPError, requests.RequestException, ConnectionError, TimeoutError) as e:
                raise TransientHTTPError(f"connection dropped ({network_cause(e)}) after "
                                         f"{self.part.stat().st_size if self.part.exists() else 0} bytes") from None
            if expected_total is not None and got < expected_total:
                raise TransientHTTPError(f"body truncated: got {got} of {expected_total} bytes")
            return {a: h.hexdigest() for a, h in hs.items()}

    @staticmethod
    def _via(url: str, r: requests.Response) -> str:
        return "" if r.url == url else f" (via {redact_url(r.url)})"

    def _check_space(self, expected_total: Optional[int], offset: int) -> None:
        total = expected_total or self.t.size
        if not total:
            return
        free = shutil.disk_usage(self.part.parent).free
        need = total - offset
        if need > free:
            raise FetchError(f"not enough disk space for {self.t.name}: need {need:,} bytes, "
                             f"{free:,} free in {self.part.parent}")

    # --- retries for one location --------------------------------------------------------------
    def from_location(self, loc: Location) -> dict[str, str]:
        url, attempt, hops = loc.url, 0, 0
        while True:
            attempt += 1
            try:
                return self.once(loc, url)
            except _Interstitial as i:
                hops += 1
                if hops > _MAX_INTERSTITIAL_HOPS:
                    raise HTMLInsteadOfFileError(f"{loc.display}: too many confirmation pages") from None
                self.log(f"  {self.t.name}: confirmation page passed, following the download link")
                url, attempt = i.next_url, attempt - 1
            except _Restart as e:
                if attempt >= self.cfg.retries:
                    raise
                self.log(f"  {self.t.name}: {e}; restarting")
            except TransientHTTPError as e:
                if attempt >= self.cfg.retries:
                    raise TransientHTTPError(f"{e} (gave up after {attempt} attempts)") from None
                delay = min(self.cfg.backoff_cap, self.cfg.backoff * 2 ** (attempt - 1))
                ra = getattr(e, "retry_after", None)
                if ra is not None:
                    delay = min(self.cfg.backoff_cap, max(delay, ra))
                self.log(f"  {self.t.name}: {e}; retrying in {delay:.1f}s (attempt {attempt + 1}/{self.cfg.retries})")
                time.sleep(delay)

    # --- verification -------------------------------------------------------------------------
    def verify(self, digests: dict[str, str], source: str) -> list[str]:
        """Problems of the finished ``.part`` (empty list = verified), each with expected/got side by side."""
        size = self.part.stat().st_size
        if self.t.size is not None and size != self.t.size:
            return [f"size mismatch for {self.t.name} (from {source}):\n"
                    f"    expected size    {self.t.size:,} bytes\n"
                    f"    got      size    {size:,} bytes"]
        problems = []
        if self.t.sha256 and digests["sha256"] != self.t.sha256.lower():
            problems.append(f"sha256 mismatch for {self.t.name} (from {source}):\n"
                            f"    expected sha256  {self.t.sha256.lower()}\n"
                            f"    got      sha256  {digests['sha256']}")
        for algo, want in self.t.host_checksums.items():
            if digests.get(algo) and digests[algo] != want.lower():
                problems.append(f"{algo} mismatch with the checksum the host publishes for {self.t.name} "
                                f"(from {source}):\n    expected {algo:<7} {want.lower()}\n"
                                f"    got      {algo:<7} {digests[algo]}")
        return problems


def download_file(target: Target, dest: Path, *, session: Optional[requests.Session] = None,
                  settings: Optional[FetchSettings] = None, progress: Optional[Progress] = None,
                  log: Log = _stderr) -> DownloadResult:
    """Download ``target`` to ``dest`` (verified, atomically renamed), trying its locations in order.

    Raises :class:`VerificationError` when every location served a file that failed
    verification, :class:`FetchError` (subclasses) when no location worked.
    """
    settings = settings or FetchSettings.from_env()
    session = session or requests.Session()
    progress = progress or Progress()
    if not target.locations:
        raise FetchError(f"{target.name}: no download location")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tr = _Transfer(target, dest, session, settings, progress, log)
    failures: list[str] = []
    kinds: list[type] = []
    try:
        for loc in target.locations:
            fresh_retry = False
            while True:
                tr.resumed = False
                try:
                    digests = tr.from_location(loc)
                except (TransientHTTPError, PermanentHTTPError) as e:
                    failures.append(f"{loc.display}: {e}")
                    kinds.append(type(e))
                    break
                finally:
                    progress.stop()
                problems = tr.verify(digests, loc.display)
                if not problems:
                    os.replace(tr.part, dest)
                    _discard(tr.meta)
                    return DownloadResult(dest, dest.stat().st_size, digests["sha256"], loc.display, tr.resumed)
                _discard(tr.part, tr.meta)
                if tr.resumed and not fresh_retry:
                    log(f"  {target.name}: verification failed after a resumed download; "
                        f"downloading once more from the start")
                    fresh_retry = True
                    continue
                failures.append("\n".join(problems))
                kinds.append(VerificationError)
                break
    finally:
        progress.stop()
    if len(target.locations) > 1:
        head = f"could not get a verified copy of {target.name} from any of {len(target.locations)} locations:"
    else:
        head = f"could not get a verified copy of {target.name}:"
    msg = head + "\n" + "\n".join("  " + f.replace("\n", "\n  ") for f in failures)
    if VerificationError in kinds:
        msg += ("\n  The downloaded data was deleted; nothing was put in place. If the upstream file "
                "changed on purpose, check it and update the catalog's size/sha256.")
    cls = kinds[0] if len(set(kinds)) == 1 else FetchError
    raise cls(msg)
